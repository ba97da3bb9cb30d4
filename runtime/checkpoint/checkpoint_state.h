// Everything a checkpoint holds, in memory: CPU tensors and plain values, detached from
// the live model and optimizer so that a background thread can write it while training
// goes on. docs/checkpoints.md shows how each field lands in the HDF5 file.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace slim::checkpoint {

// The version of the file layout this code writes and reads.
constexpr int64_t kFormatVersion = 1;

// Named tensors, ordered by name.
using TensorMap = std::map<std::string, torch::Tensor>;

// Where training stood when the checkpoint was taken.
struct TrainingProgress {
  int64_t step = 0;                // optimizer steps done
  int64_t micro_batch = 0;         // micro-batches consumed per rank since the start
  int64_t batches_per_epoch = 0;   // micro-batches per epoch per rank
  int64_t global_micro_batch = 0;  // samples per micro-batch over all ranks (ranks x batch)
  int64_t accumulate_steps = 1;
  int64_t epoch = 0;               // epoch of the next micro-batch
  int64_t samples_seen = 0;        // training samples consumed over all ranks
  double learning_rate = 0;        // the rate of the last step (for readers; recomputed)
};

// The trainer's own running values.
struct TrainerValues {
  // Per rank: the summed loss and step count of the logging window in progress.
  std::vector<double> window_loss;
  int64_t window_steps = 0;
  double best_top1 = -1;
  int64_t best_step = -1;
  // Lines metrics.jsonl held when the checkpoint was taken; a resume keeps these.
  int64_t metrics_lines = 0;
  // The training loop had ended (all steps done or target_metric reached): a resume only
  // evaluates and exports.
  bool finished = false;
  // float16 autocast's loss scale and its good steps in a row; 0 without a loss scaler.
  double loss_scale = 0;
  int64_t loss_scale_growth = 0;
};

struct CheckpointState {
  // Provenance (root attributes).
  int64_t format_version = kFormatVersion;
  std::string libtorch_version;
  int64_t world_size = 1;
  std::string created;  // UTC, ISO 8601
  std::string model_reference;
  std::string config_yaml;  // the resolved config
  std::vector<std::string> strategies;  // names of the active strategies, sorted

  TrainingProgress progress;
  TrainerValues trainer;

  // Model state under the module paths of named_parameters() / named_buffers().
  TensorMap parameters;
  TensorMap buffers;  // floating-point buffers averaged over the ranks
  // Per floating-point buffer, every rank's own values stacked ([ranks, ...]): a resume on
  // the same ranks restores them exactly. Empty in checkpoints of older versions.
  TensorMap rank_buffers;

  // Optimizer: its type and, per parameter name, its state tensors (momentum_buffer;
  // step, exp_avg, exp_avg_sq, max_exp_avg_sq).
  std::string optimizer_type;
  std::map<std::string, TensorMap> optimizer_state;

  // Per rank (row r = rank r): the CPU generator state bytes (uint8, ranks x n).
  torch::Tensor cpu_rng_states;
  // Likewise for the default generator of each rank's CUDA device; undefined when the run
  // trained on the CPU.
  torch::Tensor cuda_rng_states;

  // Per strategy: the tensors it saved through its save_state.
  std::map<std::string, TensorMap> strategy_state;
};

}  // namespace slim::checkpoint
