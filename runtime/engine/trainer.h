// The training loop: data-parallel steps with gradient accumulation, LR schedule,
// logging, periodic evaluation, early stop, best-model keeping and the run's outputs.
#pragma once

#include <torch/script.h>

#include <memory>
#include <optional>
#include <string>

#include "data/hdf5_dataset.h"
#include "runtime/checkpoint/checkpoint_state.h"
#include "runtime/comm/communicator.h"
#include "runtime/config/options.h"
#include "strategies/compressor.h"

namespace slim::engine {

// What the trainer works on. `eval_data` may be null (no evaluation).
struct TrainingSetup {
  const config::Config* config = nullptr;
  comm::Communicator* comm = nullptr;
  torch::Device device = torch::kCPU;
  torch::jit::Module model;
  std::string model_reference;
  // The model as loaded, before the strategies changed it: report.json measures the
  // exports against it. Unset (tests that build their own setup): not measured.
  std::optional<torch::jit::Module> input_model;
  std::shared_ptr<const data::Hdf5Dataset> train_data;
  std::shared_ptr<const data::Hdf5Dataset> eval_data;
  // The checkpoint to continue from (its model state is already in `model`), or null.
  std::shared_ptr<const checkpoint::CheckpointState> resume;
  std::string resume_path;
  // The compression strategies; `model` is already prepared by them. Never null.
  strategies::Compressor* compressor = nullptr;
};

// Steps and batches a run will take, computed the same way by --dry-run and training.
struct TrainingPlan {
  int64_t batches_per_epoch = 0;  // micro-batches per epoch per rank
  int64_t total_steps = 0;        // optimizer steps
  int64_t global_batch = 0;       // samples per optimizer step over all ranks
};

// REQUIRES: setup.config and setup.train_data set. Throws ConfigError when the data is
// too small for one global batch.
TrainingPlan PlanTraining(const config::Config& config, int64_t train_size, int world_size);

// How a training run ended.
enum class TrainingOutcome {
  kCompleted,  // all steps done (or target_metric reached); outputs written
  kStopped,    // a stop signal arrived; a checkpoint was written; exit for requeue
};

// Trains setup.model in place and writes metrics.jsonl, model.pt, model_best.pt,
// report.json and checkpoints/ under Global.output_dir (rank 0). Continues from
// setup.resume when set. Collective over setup.comm.
TrainingOutcome Train(TrainingSetup setup);

}  // namespace slim::engine
