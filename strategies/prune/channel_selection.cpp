#include "strategies/prune/channel_selection.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <tuple>

namespace slim::prune {

namespace {

int64_t RoundedUp(int64_t kept, int64_t channels, int64_t round_to) {
  return std::min(channels, (kept + round_to - 1) / round_to * round_to);
}

// Per group, how many channels the global ranking removes.
std::vector<int64_t> GlobalCounts(const std::vector<std::vector<double>>& importance,
                                  const std::vector<double>& ratios) {
  std::vector<std::tuple<double, size_t, size_t>> ranked;  // score, group, channel
  double wanted = 0;
  for (size_t group = 0; group < importance.size(); ++group) {
    if (ratios[group] <= 0) continue;
    wanted += ratios[group] * static_cast<double>(importance[group].size());
    for (size_t channel = 0; channel < importance[group].size(); ++channel) {
      ranked.emplace_back(importance[group][channel], group, channel);
    }
  }
  std::sort(ranked.begin(), ranked.end());
  std::vector<int64_t> counts(importance.size(), 0);
  auto left = static_cast<int64_t>(std::floor(wanted));
  for (const auto& [score, group, channel] : ranked) {
    if (left == 0) break;
    if (counts[group] + 1 >= static_cast<int64_t>(importance[group].size())) continue;
    ++counts[group];
    --left;
  }
  return counts;
}

}  // namespace

int64_t ChannelsKept(int64_t channels, double ratio, int64_t round_to) {
  const auto removed = static_cast<int64_t>(std::floor(ratio * static_cast<double>(channels)));
  return RoundedUp(std::max<int64_t>(1, channels - removed), channels, round_to);
}

std::vector<int64_t> RemovedCounts(const std::vector<std::vector<double>>& importance,
                                   const std::vector<double>& ratios, int64_t round_to,
                                   bool global) {
  std::vector<int64_t> counts(importance.size(), 0);
  const auto global_counts = global ? GlobalCounts(importance, ratios) : counts;
  for (size_t group = 0; group < importance.size(); ++group) {
    const auto channels = static_cast<int64_t>(importance[group].size());
    const int64_t kept = global ? RoundedUp(channels - global_counts[group], channels, round_to)
                                : ChannelsKept(channels, ratios[group], round_to);
    counts[group] = channels - kept;
  }
  return counts;
}

std::vector<int64_t> LeastImportant(const std::vector<double>& scores, int64_t count) {
  std::vector<int64_t> order(scores.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    return scores[a] < scores[b] || (scores[a] == scores[b] && a > b);
  });
  order.resize(count);
  std::sort(order.begin(), order.end());
  return order;
}

}  // namespace slim::prune
