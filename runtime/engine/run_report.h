// report.json, the one summary of a run, written by every kind of job (training,
// calibration): the fields every report has, the figures of the exported model itself
// (its own parameter count, state size and file size, measured after the strategies
// finalized it) and the job's own figures.
#pragma once

#include <nlohmann/json.hpp>

#include "runtime/engine/trainer.h"

namespace slim::engine {

// Rank 0: saves the deployable model as OUTPUT_DIR/model.pt (the strategies write their
// exports and add to the report), then writes OUTPUT_DIR/report.json with `job_fields`
// merged in. Throws OutputError when a file cannot be written.
void ExportModelAndReport(const TrainingSetup& setup, nlohmann::json job_fields);

}  // namespace slim::engine
