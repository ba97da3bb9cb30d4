// The job of `slim-train CONFIG --analyze quant`: with the post-training quantizers
// calibrated, evaluates the model with one layer quantized at a time and writes the table
// (sensitivity.json, sensitivity.md, sensitivity.png and .svg under the output directory)
// with the suggested not_quant_pattern. Trains nothing and writes no model.
#pragma once

#include <torch/script.h>

#include <functional>
#include <string>

#include "runtime/comm/communicator.h"
#include "runtime/config/options.h"
#include "strategies/quant/sensitivity.h"

namespace slim::quant {

// Makes `config` the analysis' configuration: its QuantPost section as it is, or the
// QuantAware section's shared keys with QuantPost's defaults; bias_correct off, so that a
// layer left unquantized computes with its float weights; distillation dropped (the
// analysis trains nothing). Throws ConfigError when there is no quantization section or
// no Global.eval_data.
void UseQuantPostForAnalysis(config::Config& config);

// REQUIRES: `model` prepared and calibrated by QuantPost. `evaluate` is collective, and so
// is this; the outputs are written by rank 0.
void AnalyzeQuantSensitivity(torch::jit::Module& model,
                             const std::function<Metric(torch::jit::Module&)>& evaluate,
                             comm::Communicator& comm, const std::string& output_dir);

}  // namespace slim::quant
