#include "strategies/prune/channel_importance.h"

#include <algorithm>

namespace slim::prune {

namespace {

// The rows of `tensor` (dim 0) that channel `channel` owns on axis `axis`, flattened.
torch::Tensor ChannelRows(const torch::Tensor& tensor, const CoupledChannel& channel, size_t axis) {
  std::vector<torch::Tensor> rows;
  for (const auto& slice : channel.slices) {
    if (slice.axis == axis) rows.push_back(tensor.narrow(0, slice.begin, slice.end - slice.begin).flatten());
  }
  return torch::cat(rows);
}

// The scores of `rows` (one flattened filter per channel) by `criterion`.
torch::Tensor ScoresOf(const torch::Tensor& rows, const std::string& criterion) {
  if (criterion == "geometry_median") return torch::cdist(rows.unsqueeze(0), rows.unsqueeze(0))[0].sum(1);
  return rows.abs().sum(1);
}

// The axes of `group` that `criterion` reads.
std::vector<size_t> ScoredAxes(const ChannelGraph& graph, const ChannelGroup& group,
                               const std::string& criterion) {
  const auto with_role = [&](AxisRole role) {
    std::vector<size_t> axes;
    for (const auto axis : group.axes) {
      if (graph.axes[axis].role == role) axes.push_back(axis);
    }
    return axes;
  };
  if (criterion == "bn_scale") {
    auto scales = with_role(AxisRole::kNormScale);
    if (!scales.empty()) return scales;
  }
  return with_role(AxisRole::kProducer);
}

}  // namespace

const std::vector<std::string>& ChannelCriteria() {
  static const std::vector<std::string> criteria = {"l1_norm", "bn_scale", "geometry_median"};
  return criteria;
}

std::vector<double> ChannelImportance(const std::map<std::string, torch::Tensor>& tensors,
                                      const ChannelGraph& graph, const ChannelGroup& group,
                                      const std::string& criterion) {
  torch::NoGradGuard no_grad;
  const auto channels = static_cast<int64_t>(group.channels.size());
  auto total = torch::zeros({channels}, torch::kFloat64);
  const auto axes = ScoredAxes(graph, group, criterion);
  for (const auto axis : axes) {
    const auto tensor = tensors.at(graph.axes[axis].tensor).detach().to(torch::kFloat64).cpu();
    std::vector<torch::Tensor> rows;
    for (const auto& channel : group.channels) rows.push_back(ChannelRows(tensor, channel, axis));
    const auto scores = ScoresOf(torch::stack(rows), criterion);
    const auto mean = scores.mean().item<double>();
    total += mean > 0 ? scores / mean : scores;
  }
  if (!axes.empty()) total /= static_cast<double>(axes.size());
  return std::vector<double>(total.data_ptr<double>(), total.data_ptr<double>() + channels);
}

}  // namespace slim::prune
