#include "strategies/prune/channel_sensitivity.h"

#include <fmt/format.h>

#include <limits>

#include "export/model_measure.h"
#include "runtime/base/logging.h"
#include "strategies/prune/channel_importance.h"
#include "strategies/prune/channel_prune.h"
#include "strategies/prune/channel_removal.h"
#include "strategies/prune/channel_selection.h"

namespace slim::prune {

namespace {

constexpr double kDefaultMacsTarget = 0.5;
// Greedy searches for per-group ratios, each aiming lower by what the count missed.
constexpr int kTargetAttempts = 4;

// Removed channels per group: `counts[g]` least important of group g.
std::vector<std::vector<int64_t>> LeastImportantOf(const std::vector<std::vector<double>>& importance,
                                                   const std::vector<int64_t>& counts) {
  std::vector<std::vector<int64_t>> removed;
  for (size_t g = 0; g < counts.size(); ++g) removed.push_back(LeastImportant(importance[g], counts[g]));
  return removed;
}

// How many channels of a group of `channels` go at `ratio`.
int64_t RemovedAt(int64_t channels, double ratio, int64_t round_to) {
  return channels - ChannelsKept(channels, ratio, round_to);
}

}  // namespace

const std::vector<double>& AnalysedChannelRatios() {
  static const std::vector<double> ratios = {0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7};
  return ratios;
}

PruneSensitivityReport AnalyzeChannelSensitivity(
    torch::jit::Module& model, const ChannelGraph& graph, const std::vector<double>& group_ratios,
    const ChannelPruneOptions& options, const at::Tensor& example,
    const std::function<strategies::EvalMetrics()>& evaluate) {
  PruneSensitivityReport report;
  report.dense = evaluate();
  report.dense_macs = exporting::CountModelMacs(model, example).total;
  const auto originals = AxisTensors(model, graph);
  for (size_t g = 0; g < graph.groups.size(); ++g) {
    if (group_ratios[g] <= 0) continue;
    const auto& group = graph.groups[g];
    const auto importance = ChannelImportance(originals, graph, group, options.criterion);
    const auto channels = static_cast<int64_t>(group.channels.size());
    WeightSensitivity sensitivity{group.name, {}, 0};
    for (const double ratio : AnalysedChannelRatios()) {
      std::vector<std::vector<int64_t>> removed(graph.groups.size());
      removed[g] = LeastImportant(importance, RemovedAt(channels, ratio, options.round_to));
      RemoveChannels(model, originals, KeptIndices(graph, originals, removed), graph.depthwise_weights);
      sensitivity.results.push_back(
          {ratio, evaluate(), exporting::CountModelMacs(model, example).total});
    }
    RemoveChannels(model, originals, {}, graph.depthwise_weights);
    sensitivity.suggested_ratio = SuggestedRatio(sensitivity.results, report.dense);
    logging::Info(fmt::format("group {}: suggested ratio {:.2f}", group.name, sensitivity.suggested_ratio));
    report.weights.push_back(std::move(sensitivity));
  }
  return report;
}

std::vector<double> GreedyRatiosForMacs(const PruneSensitivityReport& report, double target) {
  const auto& units = report.weights;
  std::vector<int> step(units.size(), -1);  // index of the chosen result, -1: unpruned
  const auto drop = [&](size_t u, int at) {
    return at < 0 ? 0.0 : DropPoints(report.dense, units[u].results[at].metric);
  };
  const auto macs = [&](size_t u, int at) {
    return at < 0 ? report.dense_macs : units[u].results[at].macs;
  };
  double estimated = static_cast<double>(report.dense_macs);
  while (estimated > target * static_cast<double>(report.dense_macs)) {
    int best = -1;
    double best_cost = std::numeric_limits<double>::infinity();
    double best_saving = 0;
    for (size_t u = 0; u < units.size(); ++u) {
      const int next = step[u] + 1;
      if (next >= static_cast<int>(units[u].results.size())) continue;
      const double saving = static_cast<double>(macs(u, step[u]) - macs(u, next));
      if (saving <= 0) continue;
      const double cost = std::max(0.0, drop(u, next) - drop(u, step[u])) / saving;
      if (cost < best_cost || (cost == best_cost && saving > best_saving)) {
        best = static_cast<int>(u);
        best_cost = cost;
        best_saving = saving;
      }
    }
    if (best < 0) break;
    ++step[best];
    estimated -= best_saving;
  }
  std::vector<double> ratios;
  for (size_t u = 0; u < units.size(); ++u) ratios.push_back(step[u] < 0 ? 0 : units[u].results[step[u]].ratio);
  return ratios;
}

void RunChannelSensitivity(torch::jit::Module& model, const ChannelPruneOptions& options,
                           const config::Config& config, const at::Tensor& example,
                           const std::function<strategies::EvalMetrics()>& evaluate,
                           comm::Communicator& comm) {
  const auto graph = BuildChannelGraph(model, example);
  const auto group_ratios = GroupRatios(graph, options);
  std::vector<size_t> analysed;
  for (size_t g = 0; g < graph.groups.size(); ++g) {
    if (group_ratios[g] > 0) analysed.push_back(g);
  }
  logging::Info(fmt::format("evaluating {} times: unpruned, and each of {} channel groups pruned "
                            "alone to {} ratios",
                            1 + analysed.size() * AnalysedChannelRatios().size(), analysed.size(),
                            AnalysedChannelRatios().size()));
  const auto report = AnalyzeChannelSensitivity(model, graph, group_ratios, options, example, evaluate);

  const double target = options.target_macs_ratio > 0 ? options.target_macs_ratio : kDefaultMacsTarget;
  const auto originals = AxisTensors(model, graph);
  std::vector<std::vector<double>> importance(graph.groups.size());
  for (const auto g : analysed) {
    importance[g] = ChannelImportance(originals, graph, graph.groups[g], options.criterion);
  }
  // The estimate ignores couplings between groups: aim lower until the count meets it.
  std::vector<double> suggested;
  strategies::EvalMetrics together;
  int64_t macs = 0;
  double aim = target;
  for (int attempt = 0; attempt < kTargetAttempts; ++attempt) {
    suggested = GreedyRatiosForMacs(report, aim);
    std::vector<int64_t> counts(graph.groups.size(), 0);
    for (size_t i = 0; i < analysed.size(); ++i) {
      counts[analysed[i]] = RemovedAt(static_cast<int64_t>(graph.groups[analysed[i]].channels.size()),
                                      suggested[i], options.round_to);
    }
    RemoveChannels(model, originals, KeptIndices(graph, originals, LeastImportantOf(importance, counts)),
                   graph.depthwise_weights);
    macs = exporting::CountModelMacs(model, example).total;
    if (macs <= target * static_cast<double>(report.dense_macs) || attempt + 1 == kTargetAttempts) {
      together = evaluate();
    }
    RemoveChannels(model, originals, {}, graph.depthwise_weights);
    if (together.samples > 0) break;
    aim *= target * static_cast<double>(report.dense_macs) / static_cast<double>(macs);
  }
  std::string yaml = "ChannelPrune:\n  pruned_ratio:\n";
  nlohmann::json per_group = nlohmann::json::object();
  for (size_t i = 0; i < analysed.size(); ++i) {
    if (suggested[i] <= 0) continue;
    const auto& producer = graph.groups[analysed[i]].producers.front();
    yaml += fmt::format("    {}: {}\n", producer, suggested[i]);
    per_group[producer] = suggested[i];
  }
  const double kept = static_cast<double>(macs) / static_cast<double>(report.dense_macs);
  const auto markdown = fmt::format(
      "\n## Per-group ratios for {:.2f} of the MACs\n\nChosen greedily by the least top-1 lost "
      "per MAC removed; all together they keep {:.3f} of the MACs (counted) at top-1 {:.2f} % "
      "(unpruned {:.2f} %), before fine-tuning.\n\n```yaml\n{}```\n",
      target, kept, 100 * together.top1, 100 * report.dense.top1, yaml);
  const nlohmann::json extra = {
      {"macs_target",
       {{"target_macs_ratio", target},
        {"pruned_ratio", per_group},
        {"macs_ratio", kept},
        {"top1", together.top1}}}};
  if (comm.Rank() == 0) {
    WriteSensitivityOutputs(report, AnalysedChannelRatios(),
                            {"group", "each channel group pruned alone by " + options.criterion,
                             fmt::format("suggested channel ratio (top-1 drop <= {:.1f} point)",
                                         kToleratedDropPoints)},
                            markdown, extra, config.global.output_dir);
  }
  comm.Barrier()->Wait(comm.DefaultTimeout());
}

}  // namespace slim::prune
