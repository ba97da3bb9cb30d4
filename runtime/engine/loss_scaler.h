// Dynamic loss scaling for float16 autocast (TrainConfig.amp_config), with the semantics of
// PyTorch's GradScaler, agreed over the ranks: the loss is multiplied by the scale before
// backward; before the optimizer step the averaged gradients are divided by it and
// checked, and a step whose gradients hold Inf or NaN on any rank is skipped on every
// rank while the scale shrinks by decr_ratio; after incr_every_n_steps good steps in a row
// it grows by incr_ratio.
//
// The unscale and the check are plain tensor ops rather than ATen's
// _amp_foreach_non_finite_check_and_unscale_, whose CPU kernel LibTorch 1.13 lacks: one
// code path for every device, tested on the CPU.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <vector>

#include "runtime/comm/communicator.h"
#include "runtime/config/options.h"

namespace slim::engine {

class LossScaler {
 public:
  explicit LossScaler(const config::AmpOptions& options);

  // `loss` times the current scale.
  torch::Tensor Scale(const torch::Tensor& loss) const;
  // Divides the gradients of `parameters` (those that have one) by the scale in place,
  // agrees over `comm` whether any rank found a non-finite value, and updates the scale.
  // Returns true when this step must be skipped (on every rank alike). Collective.
  bool UnscaleAndUpdate(const std::vector<torch::Tensor>& parameters, comm::Communicator& comm);

  double scale() const { return scale_; }
  // Good steps in a row since the scale last changed.
  int64_t growth_tracker() const { return growth_tracker_; }
  // Continues from a checkpoint's values.
  void Restore(double scale, int64_t growth_tracker);

 private:
  config::AmpOptions options_;
  double scale_;
  int64_t growth_tracker_ = 0;
};

}  // namespace slim::engine
