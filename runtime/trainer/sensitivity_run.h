// The job of `slim-train CONFIG --analyze quant`: calibrates the post-training quantizers,
// evaluates the model with one layer quantized at a time and writes the table
// (sensitivity.json, sensitivity.md, sensitivity.png under the output directory) with the
// suggested not_quant_pattern. Trains nothing and writes no model.
#pragma once

#include "runtime/trainer/trainer.h"

namespace slim::trainer {

// REQUIRES: setup.eval_data set; setup.model prepared by a QuantPost strategy.
// Collective over setup.comm.
void AnalyzeQuantSensitivity(TrainingSetup setup, int64_t batch_num, int64_t batch_size);

}  // namespace slim::trainer
