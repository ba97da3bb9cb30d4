// Channel pruning sensitivity (slim-train CONFIG --analyze prune with a ChannelPrune
// section): each group ChannelPrune would prune loses 10 ... 70 % of its channels alone
// (its least important ones by the section's criterion) and the model is evaluated over
// the ranks, its MACs counted and its latency measured (rank 0, one thread, the training
// batch, paired with the unpruned model so that a shared machine's drift cancels). A group's suggested ratio is the largest whose top-1 drop stays within
// kToleratedDropPoints. Per-group ratios for a MACs target (target_macs_ratio, else 0.5)
// are chosen twice, greedily: by the least top-1 lost per MAC removed, and by the least
// top-1 lost per millisecond saved (latency-aware: kernels run in blocks of channels, so
// MACs alone miss where time goes); each pick is then counted, evaluated and timed
// together. Writes prune_sensitivity.{md,json,png,svg}; trains nothing and writes no model.
#pragma once

#include <torch/script.h>

#include <functional>
#include <vector>

#include "runtime/comm/communicator.h"
#include "runtime/config/options.h"
#include "strategies/prune/channel_graph.h"
#include "strategies/prune/prune_options.h"
#include "strategies/prune/sensitivity_report.h"

namespace slim::prune {

// The ratios each group is pruned to.
const std::vector<double>& AnalysedChannelRatios();

// Evaluates `model`, then each group of `graph` with a ratio above 0 in `group_ratios`
// pruned alone to each of AnalysedChannelRatios() (restored afterwards). `evaluate` runs
// `model` and is collective when the ranks share the evaluation; `latency_ms` times
// `model` as it is (milliseconds, the same figure on every rank; collective likewise);
// `example` is a batch of one for counting MACs.
PruneSensitivityReport AnalyzeChannelSensitivity(
    torch::jit::Module& model, const ChannelGraph& graph, const std::vector<double>& group_ratios,
    const ChannelPruneOptions& options, const at::Tensor& example,
    const std::function<strategies::EvalMetrics()>& evaluate,
    const std::function<double()>& latency_ms);

// The whole job on `model` (unpruned) with `options`; rank 0 writes the outputs under
// Global.output_dir. Collective.
void RunChannelSensitivity(torch::jit::Module& model, const ChannelPruneOptions& options,
                           const config::Config& config, const at::Tensor& example,
                           const std::function<strategies::EvalMetrics()>& evaluate,
                           comm::Communicator& comm);

}  // namespace slim::prune
