// The job when no strategy trains (QuantPost alone): evaluate the float model, calibrate
// on this rank's share of the calibration batches, evaluate the quantized model, write
// model.pt, the strategies' exports and report.json.
#pragma once

#include <string>
#include <vector>

#include "runtime/engine/trainer.h"

namespace slim::engine {

// This rank's calibration inputs on `device`, without augmentation: batch k (k <
// batch_num) is batch k of one pass over the training set shuffled with `seed`
// (Global.seed), so a file sorted by class still calibrates on every class, and rank r
// takes the batches with k % world_size == r, so their union never depends on the number
// of ranks. When the set holds fewer than batch_num x batch_size samples, all of them are
// taken, with a warning naming `requested_by` (the config key that asked).
std::vector<torch::Tensor> CalibrationBatches(const data::Hdf5Dataset& data, int64_t batch_num,
                                              int64_t batch_size, uint64_t seed, int rank,
                                              int world_size, torch::Device device,
                                              const std::string& requested_by);

// This rank's CalibrationBatches() of the amount the strategies ask for
// (Compressor::CalibrationData), drawn with Global.seed.
std::vector<torch::Tensor> StrategyCalibrationBatches(const TrainingSetup& setup);

// Calibrates on the StrategyCalibrationBatches().
// Collective over setup.comm.
void CalibrateAndExport(TrainingSetup setup);

}  // namespace slim::engine
