#include "strategies/prune/channel_sensitivity.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <optional>
#include <string>
#include <utility>

#include "export/model_measure.h"
#include "runtime/base/logging.h"
#include "strategies/prune/channel_importance.h"
#include "strategies/prune/channel_prune.h"
#include "strategies/prune/channel_removal.h"
#include "strategies/prune/channel_selection.h"
#include "strategies/prune/ratio_search.h"

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

// A model is timed in rounds, each timing the unpruned model and then it: drift on a shared
// machine (10 to 30 % between single timings) moves both alike and cancels in their ratio.
constexpr int kPairedRounds = 5;
const exporting::TimingPlan kRoundTiming{/*warmup=*/1, /*min_iterations=*/3,
                                         /*max_iterations=*/3, /*budget_s=*/0.0};
const exporting::TimingPlan kReferenceTiming{/*warmup=*/3, /*min_iterations=*/10,
                                             /*max_iterations=*/30, /*budget_s=*/1.0};

// Times models against the unpruned one, paired (kPairedRounds).
class PairedTimer {
 public:
  // `dense`: the unpruned model, timed here once for the reference figure.
  PairedTimer(const torch::jit::Module& dense, at::Tensor example, int64_t batch)
      : dense_(exporting::FrozenCpuCopy(dense)), example_(std::move(example)), batch_(batch) {
    exporting::IntraOpThreads one_thread(exporting::kLatencyThreads);
    reference_ms_ =
        exporting::TimeTorchScript(dense_, example_, batch_, kReferenceTiming).median_ms;
  }

  // Milliseconds of `model`: the reference times the median over the rounds of its
  // median over the unpruned model's in the same round.
  double LatencyMs(const torch::jit::Module& model) {
    exporting::IntraOpThreads one_thread(exporting::kLatencyThreads);
    auto frozen = exporting::FrozenCpuCopy(model);
    std::vector<double> ratios;
    for (int round = 0; round < kPairedRounds; ++round) {
      const double dense_ms =
          exporting::TimeTorchScript(dense_, example_, batch_, kRoundTiming).median_ms;
      const double model_ms =
          exporting::TimeTorchScript(frozen, example_, batch_, kRoundTiming).median_ms;
      ratios.push_back(model_ms / dense_ms);
    }
    std::nth_element(ratios.begin(), ratios.begin() + kPairedRounds / 2, ratios.end());
    return reference_ms_ * ratios[kPairedRounds / 2];
  }

 private:
  torch::jit::Module dense_;
  const at::Tensor example_;
  const int64_t batch_;
  double reference_ms_ = 0;
};

// The analysed groups of a model, pruned together to per-group ratios and restored.
class AnalysedGroups {
 public:
  AnalysedGroups(torch::jit::Module& model, const ChannelGraph& graph, std::vector<size_t> analysed,
                 const ChannelPruneOptions& options)
      : model_(model),
        graph_(graph),
        analysed_(std::move(analysed)),
        round_to_(options.round_to),
        originals_(AxisTensors(model, graph)),
        importance_(graph.groups.size()) {
    for (const auto g : analysed_) {
      importance_[g] = ChannelImportance(originals_, graph, graph.groups[g], options.criterion);
    }
  }

  // `ratios`: one per analysed group, in order.
  void Prune(const std::vector<double>& ratios) {
    std::vector<int64_t> counts(graph_.groups.size(), 0);
    for (size_t i = 0; i < analysed_.size(); ++i) {
      counts[analysed_[i]] = RemovedAt(
          static_cast<int64_t>(graph_.groups[analysed_[i]].channels.size()), ratios[i], round_to_);
    }
    RemoveChannels(model_, originals_,
                   KeptIndices(graph_, originals_, LeastImportantOf(importance_, counts)),
                   graph_.depthwise_weights);
  }

  void Restore() { RemoveChannels(model_, originals_, {}, graph_.depthwise_weights); }

  // The first producing weight of each analysed group: its name in a pruned_ratio map.
  std::vector<std::string> Producers() const {
    std::vector<std::string> names;
    for (const auto g : analysed_) names.push_back(graph_.groups[g].producers.front());
    return names;
  }

 private:
  torch::jit::Module& model_;
  const ChannelGraph& graph_;
  const std::vector<size_t> analysed_;
  const int64_t round_to_;
  const std::map<std::string, torch::Tensor> originals_;
  std::vector<std::vector<double>> importance_;
};

// Per-group ratios of one greedy search, as counted, evaluated and timed together.
struct Suggestion {
  std::vector<double> ratios;  // per analysed group
  int64_t macs = 0;
  strategies::EvalMetrics metrics;
  double latency_ms = 0;
};

// Checks a greedy search's pick with all its groups pruned together.
struct TogetherCheck {
  torch::jit::Module& model;
  AnalysedGroups& groups;
  const at::Tensor& example;
  const std::function<strategies::EvalMetrics()>& evaluate;
  const std::function<double()>& latency_ms;
  int64_t dense_macs;
  double target;

  // `greedy`'s ratios for an aim; the estimate ignores couplings between groups, so the
  // aim goes lower until the counted MACs meet the target (up to kTargetAttempts). The
  // pick is then evaluated and timed. Collective.
  Suggestion Suggest(const std::function<std::vector<double>(double)>& greedy) const {
    Suggestion suggestion;
    const double wanted = target * static_cast<double>(dense_macs);
    double aim = target;
    for (int attempt = 0; attempt < kTargetAttempts; ++attempt) {
      suggestion.ratios = greedy(aim);
      groups.Prune(suggestion.ratios);
      suggestion.macs = exporting::CountModelMacs(model, example).total;
      const bool done = suggestion.macs <= wanted || attempt + 1 == kTargetAttempts;
      if (done) {
        suggestion.metrics = evaluate();
        suggestion.latency_ms = latency_ms();
      }
      groups.Restore();
      if (done) break;
      aim *= wanted / static_cast<double>(suggestion.macs);
    }
    return suggestion;
  }
};

std::string RatiosYaml(const Suggestion& suggestion, const std::vector<std::string>& producers) {
  std::string yaml = "ChannelPrune:\n  pruned_ratio:\n";
  for (size_t i = 0; i < producers.size(); ++i) {
    if (suggestion.ratios[i] > 0)
      yaml += fmt::format("    {}: {}\n", producers[i], suggestion.ratios[i]);
  }
  return yaml;
}

std::string SuggestionMarkdown(const std::string& how, const Suggestion& suggestion,
                               const PruneSensitivityReport& report,
                               const std::vector<std::string>& producers) {
  return fmt::format(
      "\n{}: all together they keep {:.3f} of the MACs (counted) at top-1 {:.2f} % (unpruned "
      "{:.2f} %) before fine-tuning, and run in {:.1f} ms (unpruned {:.1f} ms: {:.2f}x).\n\n"
      "```yaml\n{}```\n",
      how, static_cast<double>(suggestion.macs) / static_cast<double>(report.dense_macs),
      100 * suggestion.metrics.top1, 100 * report.dense.top1, suggestion.latency_ms,
      report.dense_latency_ms, report.dense_latency_ms / suggestion.latency_ms,
      RatiosYaml(suggestion, producers));
}

nlohmann::json SuggestionJson(const Suggestion& suggestion, const PruneSensitivityReport& report,
                              const std::vector<std::string>& producers) {
  nlohmann::json per_group = nlohmann::json::object();
  for (size_t i = 0; i < producers.size(); ++i) {
    if (suggestion.ratios[i] > 0) per_group[producers[i]] = suggestion.ratios[i];
  }
  return {
      {"pruned_ratio", per_group},
      {"macs_ratio", static_cast<double>(suggestion.macs) / static_cast<double>(report.dense_macs)},
      {"top1", suggestion.metrics.top1},
      {"latency_ms", suggestion.latency_ms}};
}

// Each group's measured latency at each ratio: where a kernel's time steps.
std::string LatencyTable(const PruneSensitivityReport& report, int64_t batch) {
  std::string table = fmt::format(
      "\n## Latency of each group pruned alone (ms, batch {}, one thread; unpruned {:.1f} ms)\n\n"
      "| group |",
      batch, report.dense_latency_ms);
  for (const double ratio : AnalysedChannelRatios())
    table += fmt::format(" {:.0f} % |", 100 * ratio);
  table += "\n| --- |";
  for (size_t i = 0; i < AnalysedChannelRatios().size(); ++i) table += " --- |";
  table += "\n";
  for (const auto& unit : report.weights) {
    table += "| " + unit.weight + " |";
    for (const auto& result : unit.results) table += fmt::format(" {:.1f} |", result.latency_ms);
    table += "\n";
  }
  return table;
}

}  // namespace

const std::vector<double>& AnalysedChannelRatios() {
  static const std::vector<double> ratios = {0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7};
  return ratios;
}

PruneSensitivityReport AnalyzeChannelSensitivity(
    torch::jit::Module& model, const ChannelGraph& graph, const std::vector<double>& group_ratios,
    const ChannelPruneOptions& options, const at::Tensor& example,
    const std::function<strategies::EvalMetrics()>& evaluate,
    const std::function<double()>& latency_ms) {
  PruneSensitivityReport report;
  report.dense = evaluate();
  report.dense_macs = exporting::CountModelMacs(model, example).total;
  report.dense_latency_ms = latency_ms();
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
          {ratio, evaluate(), exporting::CountModelMacs(model, example).total, latency_ms()});
    }
    RemoveChannels(model, originals, {}, graph.depthwise_weights);
    sensitivity.suggested_ratio = SuggestedRatio(sensitivity.results, report.dense);
    logging::Info(fmt::format("group {}: suggested ratio {:.2f}", group.name, sensitivity.suggested_ratio));
    report.weights.push_back(std::move(sensitivity));
  }
  return report;
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
  const int64_t batch = config.global.batch_size;
  logging::Info(
      fmt::format("evaluating and timing (batch {}, one thread) {} times: unpruned, "
                  "and each of {} channel groups pruned alone to {} ratios",
                  batch, 1 + analysed.size() * AnalysedChannelRatios().size(), analysed.size(),
                  AnalysedChannelRatios().size()));
  std::optional<PairedTimer> timer;
  if (comm.Rank() == 0) timer.emplace(model, example, batch);
  const auto latency_ms = [&] {
    auto measured = torch::zeros({1}, torch::kDouble);
    if (timer) measured[0] = timer->LatencyMs(model);
    comm.BroadcastSync(measured, 0);
    return measured.item<double>();
  };
  const auto report =
      AnalyzeChannelSensitivity(model, graph, group_ratios, options, example, evaluate, latency_ms);

  const double target = options.target_macs_ratio > 0 ? options.target_macs_ratio : kDefaultMacsTarget;
  AnalysedGroups groups(model, graph, analysed, options);
  const TogetherCheck check{model, groups, example, evaluate, latency_ms, report.dense_macs,
                            target};
  const auto by_macs = check.Suggest([&](double aim) { return GreedyRatiosForMacs(report, aim); });
  const auto by_latency =
      check.Suggest([&](double aim) { return GreedyRatiosForLatency(report, aim); });

  const auto& producers = groups.Producers();
  const auto markdown =
      fmt::format("\n## Per-group ratios for {:.2f} of the MACs\n", target) +
      SuggestionMarkdown("By the least top-1 lost per MAC removed", by_macs, report, producers) +
      SuggestionMarkdown("Latency-aware, by the least top-1 lost per millisecond saved", by_latency,
                         report, producers) +
      LatencyTable(report, batch);
  auto macs_target = SuggestionJson(by_macs, report, producers);
  macs_target["target_macs_ratio"] = target;
  const nlohmann::json extra = {
      {"macs_target", macs_target},
      {"latency_aware", SuggestionJson(by_latency, report, producers)},
      {"latency", {{"batch", batch}, {"threads", exporting::kLatencyThreads}}}};
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
