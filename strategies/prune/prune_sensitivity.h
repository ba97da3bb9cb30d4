// Pruning sensitivity analysis of weights (slim-train CONFIG --analyze prune): each weight that
// UnstructurePrune would prune is pruned alone, by magnitude, to a few ratios, and the model
// evaluated over the ranks; a layer's suggested ratio is the largest whose top-1 drop stays
// within a tolerance. Writes prune_sensitivity.{md,json,png,svg} under the output
// directory; trains nothing and writes no model.
#pragma once

#include <torch/script.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "runtime/comm/communicator.h"
#include "runtime/config/options.h"
#include "strategies/prune/prunable_weights.h"
#include "strategies/prune/prune_options.h"
#include "strategies/prune/sensitivity_report.h"
#include "strategies/strategy.h"

namespace slim::prune {

// The ratios each weight is pruned to.
const std::vector<double>& AnalysedRatios();

// What --analyze prune analyses: ChannelPrune's groups (channel_sensitivity.h) when the
// config has that section, else the weights UnstructurePrune selects.
struct PruneAnalysis {
  std::shared_ptr<const ChannelPruneOptions> channels;  // null: weights
};

// Makes `config` the analysis' configuration and says which analysis runs. Every strategy
// is dropped (the analysis trains nothing) but, for the weights, the UnstructurePrune
// section's selection (or its defaults with prune_params_type null when there is none);
// ChannelPrune's options are returned, so that the model is analysed unpruned. Throws
// ConfigError without Global.eval_data.
PruneAnalysis UsePruningForAnalysis(config::Config& config);

// Evaluates the dense model, then each weight of `weights` pruned alone to each of `ratios`
// (restored afterwards). `evaluate` is collective when the ranks share the evaluation.
PruneSensitivityReport AnalyzePruneSensitivity(const std::vector<PrunableWeight>& weights,
                                               const std::vector<double>& ratios,
                                               const std::function<strategies::EvalMetrics()>& evaluate);

// The whole job: the analysis of `model` with `config`'s options, its outputs written by
// rank 0 under Global.output_dir. Collective.
void RunPruneSensitivity(torch::jit::Module& model, const config::Config& config,
                         const std::function<strategies::EvalMetrics()>& evaluate,
                         comm::Communicator& comm);

}  // namespace slim::prune
