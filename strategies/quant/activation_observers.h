// The activation scales of quantization-aware training, kept identical on every rank:
// after each step the per-layer max|x| each rank observed is reduced with one allreduce
// (max), and every rank applies the same update rule to the same numbers, so all ranks
// hold bit-identical scales (no rank calibrates on its own shard only). The lowest values
// travel in the same allreduce: with the unsigned grid allowed, an activation stays on it
// until some rank sees it negative, and from then on is symmetric for good.
#pragma once

#include <torch/script.h>

#include <string>
#include <vector>

#include "runtime/checkpoint/checkpoint_state.h"
#include "runtime/comm/communicator.h"

namespace slim::quant {

// How the scale follows the reduced maxima (QuantAware.activation_quantize_type).
enum class ActivationRule {
  kMovingAverageAbsMax,  // accum = r*accum + max; state = r*state + 1; T = accum / state
  kRangeAbsMax,          // T = the largest max of the last window_size steps
  kAbsMax,               // T = the max of the last step
};

// Parses moving_average_abs_max, range_abs_max or abs_max.
ActivationRule ParseActivationRule(const std::string& name);

class ActivationObservers {
 public:
  // `quantizers` are the activation quantizers of `bits` bits, in the same order on every
  // rank; `unsigned_grid` allows the unsigned grid for activations never seen negative.
  ActivationObservers(std::vector<torch::jit::Module> quantizers, ActivationRule rule,
                      double moving_rate, int64_t window_size, int64_t bits, bool unsigned_grid,
                      comm::Communicator& comm);

  // Reduces this step's maxima over the ranks, updates the scales and clears the maxima;
  // from the first update on, the quantizers quantize. Collective.
  void Update();

  // Steps observed so far.
  int64_t Steps() const { return steps_; }

  // Observer state for checkpoints, and its restore (which also restores whether the
  // quantizers quantize, and their grids; a checkpoint without the negatives seen, from
  // before the unsigned grid, restores the symmetric one). Throws ModelError for a
  // checkpoint written with the unsigned grid allowed where this run disallows it, or the
  // other way round.
  checkpoint::TensorMap Save() const;
  void Load(const checkpoint::TensorMap& state);

 private:
  void ApplyThresholds(const torch::Tensor& thresholds);
  // Each quantizer's grid: unsigned where allowed and never seen negative, else symmetric.
  void ApplyGrids();

  std::vector<torch::jit::Module> quantizers_;
  ActivationRule rule_;
  double moving_rate_;
  int64_t window_size_;
  int64_t bits_;
  bool unsigned_grid_;
  comm::Communicator& comm_;
  int64_t steps_ = 0;
  torch::Tensor accum_;   // moving average numerators, float32 [layers]
  torch::Tensor state_;   // moving average denominators, float32 [layers]
  torch::Tensor window_;  // range_abs_max: maxima of the last steps, float32 [window, layers]
  torch::Tensor negative_seen_;  // 1 where a rank saw a negative value, float32 [layers]
};

}  // namespace slim::quant
