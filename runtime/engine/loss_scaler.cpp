#include "runtime/engine/loss_scaler.h"

namespace slim::engine {

LossScaler::LossScaler(const config::AmpOptions& options)
    : options_(options), scale_(options.init_loss_scaling) {}

torch::Tensor LossScaler::Scale(const torch::Tensor& loss) const { return loss * scale_; }

bool LossScaler::UnscaleAndUpdate(const std::vector<torch::Tensor>& parameters,
                                  comm::Communicator& comm) {
  torch::NoGradGuard no_grad;
  // 1 when a gradient of this rank holds Inf or NaN; checked before unscaling so that a
  // huge finite gradient does not overflow in the division.
  auto found = torch::zeros({1}, torch::kFloat32);
  for (const auto& parameter : parameters) {
    const auto& gradient = parameter.grad();
    if (!gradient.defined()) continue;
    found.add_(torch::logical_not(torch::isfinite(gradient)).any().to(found.options()));
    gradient.mul_(1.0 / scale_);
  }
  comm.AllReduceSync(found, comm::ReduceOp::kMax);
  const bool skip = found.item<float>() > 0;
  if (!options_.dynamic_loss_scaling) return skip;
  if (skip) {
    scale_ *= options_.decr_ratio;
    growth_tracker_ = 0;
  } else if (++growth_tracker_ == options_.incr_every_n_steps) {
    scale_ *= options_.incr_ratio;
    growth_tracker_ = 0;
  }
  return skip;
}

void LossScaler::Restore(double scale, int64_t growth_tracker) {
  scale_ = scale;
  growth_tracker_ = growth_tracker;
}

}  // namespace slim::engine
