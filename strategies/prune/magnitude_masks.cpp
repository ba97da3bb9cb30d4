#include "strategies/prune/magnitude_masks.h"

#include <fmt/format.h>

#include <cmath>

namespace slim::prune {

namespace {

constexpr int64_t kGroup = 4;  // 2:4: of every four weights
constexpr int64_t kKept = 2;   // two are kept

// round(ratio x count), as torch.nn.utils.prune and PaddleSlim count.
int64_t PrunedCount(double ratio, int64_t count) {
  return std::llround(ratio * static_cast<double>(count));
}

// A flat mask over `magnitudes` (1-D) with its `pruned` smallest entries 0.
torch::Tensor SmallestPruned(const torch::Tensor& magnitudes, int64_t pruned) {
  auto mask = torch::ones_like(magnitudes);
  if (pruned <= 0) return mask;
  const auto order = std::get<1>(torch::sort(magnitudes, /*stable=*/true, 0, false));
  mask.index_fill_(0, order.slice(0, 0, pruned), 0);
  return mask;
}

// [out, in] or [out, in, kh, kw] as rows of the input dimension: [out (x kh x kw), in].
torch::Tensor InputChannelsInnermost(const torch::Tensor& weight) {
  if (weight.dim() == 2) return weight;
  return weight.permute({0, 2, 3, 1}).reshape({-1, weight.size(1)});
}

}  // namespace

std::vector<torch::Tensor> RatioMasks(const std::vector<torch::Tensor>& weights, double ratio,
                                      bool local) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> masks;
  if (local) {
    for (const auto& weight : weights) {
      const auto flat = weight.detach().abs().flatten();
      masks.push_back(SmallestPruned(flat, PrunedCount(ratio, flat.numel())).view_as(weight));
    }
    return masks;
  }
  std::vector<torch::Tensor> flats;
  for (const auto& weight : weights) flats.push_back(weight.detach().abs().flatten());
  const auto all = torch::cat(flats);
  const auto mask = SmallestPruned(all, PrunedCount(ratio, all.numel()));
  int64_t offset = 0;
  for (const auto& weight : weights) {
    masks.push_back(mask.slice(0, offset, offset + weight.numel()).view_as(weight).clone());
    offset += weight.numel();
  }
  return masks;
}

std::vector<torch::Tensor> ThresholdMasks(const std::vector<torch::Tensor>& weights,
                                          double threshold) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> masks;
  for (const auto& weight : weights) {
    masks.push_back((weight.detach().abs() >= threshold).to(weight.scalar_type()));
  }
  return masks;
}

torch::Tensor TwoFourMask(const torch::Tensor& weight) {
  torch::NoGradGuard no_grad;
  const auto rows = InputChannelsInnermost(weight.detach()).reshape({-1, kGroup});
  const auto order = std::get<1>(torch::sort(rows.abs(), /*stable=*/true, 1, true));
  auto mask = torch::zeros_like(rows);
  mask.scatter_(1, order.slice(1, 0, kKept), 1);
  if (weight.dim() == 2) return mask.view_as(weight);
  return mask.reshape({weight.size(0), weight.size(2), weight.size(3), weight.size(1)})
      .permute({0, 3, 1, 2})
      .contiguous();
}

std::string TwoFourRefusal(const torch::Tensor& weight) {
  if (weight.dim() != 2 && weight.dim() != 4) {
    return fmt::format("a {}-D weight is neither a linear nor a 2-D convolution weight",
                       weight.dim());
  }
  if (weight.size(1) % kGroup != 0) {
    return fmt::format("its {} input channel(s) per group are not a multiple of {}",
                       weight.size(1), kGroup);
  }
  return "";
}

}  // namespace slim::prune
