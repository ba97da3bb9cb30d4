// report.json, the one summary of a run, written by every kind of job (training,
// calibration): the fields every report has, every exported file with its measured
// figures (file size, parameters, MACs counted from its graph, latency at batch 1 and at
// the training batch, and the ratios to the input model measured in the same run), and
// the job's own figures.
#pragma once

#include <nlohmann/json.hpp>

#include "runtime/engine/trainer.h"

namespace slim::engine {

// Rank 0: saves the deployable model as OUTPUT_DIR/model.pt and the other formats of
// Global.export next to it (the strategies write their exports and add to the report),
// measures them all, then writes OUTPUT_DIR/report.json with `job_fields` merged in and
// logs the headline. Throws OutputError when a file cannot be written.
void ExportModelAndReport(const TrainingSetup& setup, nlohmann::json job_fields);

// Rank 0: saves the deployable model as OUTPUT_DIR/model_best.pt and the other formats
// of Global.export as model_best.*, without measuring them.
void ExportBestModel(const TrainingSetup& setup, const torch::jit::Module& model);

}  // namespace slim::engine
