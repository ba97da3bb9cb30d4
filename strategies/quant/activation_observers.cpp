#include "strategies/quant/activation_observers.h"

#include "runtime/base/errors.h"
#include "strategies/quant/quantizer_modules.h"

namespace slim::quant {

ActivationRule ParseActivationRule(const std::string& name) {
  if (name == "moving_average_abs_max") return ActivationRule::kMovingAverageAbsMax;
  if (name == "range_abs_max") return ActivationRule::kRangeAbsMax;
  if (name == "abs_max") return ActivationRule::kAbsMax;
  throw ConfigError("unknown activation_quantize_type '" + name + "'");
}

ActivationObservers::ActivationObservers(std::vector<torch::jit::Module> quantizers,
                                         ActivationRule rule, double moving_rate,
                                         int64_t window_size, int64_t bits, bool unsigned_grid,
                                         comm::Communicator& comm)
    : quantizers_(std::move(quantizers)),
      rule_(rule),
      moving_rate_(moving_rate),
      window_size_(window_size),
      bits_(bits),
      unsigned_grid_(unsigned_grid),
      comm_(comm) {
  const auto layers = static_cast<int64_t>(quantizers_.size());
  accum_ = torch::zeros({layers});
  state_ = torch::zeros({layers});
  negative_seen_ = torch::zeros({layers});
  window_ = torch::zeros({rule_ == ActivationRule::kRangeAbsMax ? window_size_ : 0, layers});
  for (auto& quantizer : quantizers_) SetObserve(quantizer, Observe::kMaxWhileTraining);
}

void ActivationObservers::Update() {
  torch::NoGradGuard no_grad;
  // The maxima, then minus the minima: one max-reduction for both.
  std::vector<torch::Tensor> extremes;
  for (auto& quantizer : quantizers_) extremes.push_back(quantizer.attr("batch_max").toTensor());
  for (auto& quantizer : quantizers_) {
    // batch_min is a plain attribute, which moving the model leaves behind until the
    // quantizer's first forward.
    const auto device = quantizer.attr("batch_max").toTensor().device();
    extremes.push_back(-quantizer.attr("batch_min").toTensor().to(device));
  }
  auto both = torch::stack(extremes).to(torch::kCPU, torch::kFloat32).contiguous();
  comm_.AllReduceSync(both, comm::ReduceOp::kMax);
  const auto layers = static_cast<int64_t>(quantizers_.size());
  const auto reduced = both.slice(0, 0, layers);
  const auto negative_seen =
      torch::maximum(negative_seen_, (both.slice(0, layers) > 0).to(torch::kFloat32));
  // The grids change only when the unsigned grid is allowed and a flag turns.
  const bool regrid =
      unsigned_grid_ && (steps_ == 0 || !torch::equal(negative_seen, negative_seen_));
  negative_seen_ = negative_seen;
  torch::Tensor thresholds;
  switch (rule_) {
    case ActivationRule::kMovingAverageAbsMax:
      accum_ = accum_ * moving_rate_ + reduced;
      state_ = state_ * moving_rate_ + 1;
      thresholds = accum_ / state_;
      break;
    case ActivationRule::kRangeAbsMax:
      window_[steps_ % window_size_].copy_(reduced);
      thresholds = std::get<0>(window_.max(0));
      break;
    case ActivationRule::kAbsMax:
      thresholds = reduced;
      break;
  }
  ++steps_;
  if (regrid) ApplyGrids();
  ApplyThresholds(thresholds);
}

void ActivationObservers::ApplyThresholds(const torch::Tensor& thresholds) {
  torch::NoGradGuard no_grad;
  const auto values = thresholds.clamp_min(1e-8);
  for (size_t i = 0; i < quantizers_.size(); ++i) {
    auto& quantizer = quantizers_[i];
    const double quant_max = static_cast<double>(quantizer.attr("quant_max").toInt());
    auto scale = quantizer.attr("scale").toTensor();
    scale.copy_(values[static_cast<int64_t>(i)] / quant_max);
    quantizer.attr("batch_max").toTensor().zero_();
    quantizer.attr("batch_min").toTensor().zero_();
    SetQuantize(quantizer, true);
  }
}

void ActivationObservers::ApplyGrids() {
  for (size_t i = 0; i < quantizers_.size(); ++i) {
    const bool non_negative =
        unsigned_grid_ && negative_seen_[static_cast<int64_t>(i)].item<float>() == 0;
    SetActivationGrid(quantizers_[i],
                      non_negative ? ActivationGrid::kUnsigned : ActivationGrid::kSymmetric, bits_);
  }
}

checkpoint::TensorMap ActivationObservers::Save() const {
  return {{"steps", torch::tensor(steps_, torch::kInt64)},
          {"accum", accum_.clone()},
          {"state", state_.clone()},
          {"window", window_.clone()},
          {"negative_seen", negative_seen_.clone()},
          {"unsigned_grid", torch::tensor(int64_t{unsigned_grid_})}};
}

void ActivationObservers::Load(const checkpoint::TensorMap& state) {
  const auto get = [&](const std::string& name, const torch::Tensor& like) {
    const auto found = state.find(name);
    if (found == state.end() || found->second.sizes() != like.sizes()) {
      throw ModelError("the checkpoint's quantization observer state '" + name +
                       "' does not fit this run (another activation_quantize_type, "
                       "window_size or set of quantized layers?)");
    }
    return found->second.to(like.dtype()).clone();
  };
  steps_ = get("steps", torch::tensor(int64_t{0})).item<int64_t>();
  accum_ = get("accum", accum_);
  state_ = get("state", state_);
  window_ = get("window", window_);
  const auto written_unsigned = state.find("unsigned_grid");
  if (written_unsigned != state.end() &&
      (written_unsigned->second.item<int64_t>() != 0) != unsigned_grid_) {
    // The scales restored with the model are for the grids the run had.
    throw ModelError(
        std::string("the checkpoint was written with QuantAware.unsigned_activations: ") +
        (unsigned_grid_ ? "false" : "true") +
        ", and its activation scales are for those grids; resume with the same value");
  }
  negative_seen_ = state.count("negative_seen") > 0 ? get("negative_seen", negative_seen_)
                                                    : torch::ones_like(negative_seen_);
  ApplyGrids();
  for (auto& quantizer : quantizers_) SetQuantize(quantizer, steps_ > 0);
}

}  // namespace slim::quant
