// The job when no strategy trains (QuantPost alone): evaluate the float model, calibrate
// on this rank's share of the calibration batches, evaluate the quantized model, write
// model.pt, the strategies' exports and report.json.
#pragma once

#include "runtime/trainer/trainer.h"

namespace slim::trainer {

// Calibration batch k (k < batch_num) holds training samples [k*batch_size,
// (k+1)*batch_size) in file order without augmentation; rank r takes the batches with
// k % world_size == r, so the union over the ranks never depends on their number.
// Collective over setup.comm.
void CalibrateAndExport(TrainingSetup setup, int64_t batch_num, int64_t batch_size);

}  // namespace slim::trainer
