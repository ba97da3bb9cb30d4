// Pruning sensitivity analysis (slim-train CONFIG --analyze prune): each weight that
// UnstructurePrune would prune is pruned alone, by magnitude, to a few ratios, and the model
// evaluated over the ranks; a layer's suggested ratio is the largest whose top-1 drop stays
// within a tolerance. Writes prune_sensitivity.{md,json,png,svg} under the output
// directory; trains nothing and writes no model.
#pragma once

#include <torch/script.h>

#include <functional>
#include <string>
#include <vector>

#include "runtime/comm/communicator.h"
#include "runtime/config/options.h"
#include "strategies/prune/prunable_weights.h"
#include "strategies/prune/prune_options.h"
#include "strategies/strategy.h"

namespace slim::prune {

// The ratios each weight is pruned to, and the top-1 drop a suggested ratio may cost.
const std::vector<double>& AnalysedRatios();
constexpr double kToleratedDropPoints = 1.0;

struct RatioResult {
  double ratio = 0;
  strategies::EvalMetrics metric;
};

struct WeightSensitivity {
  std::string weight;                // parameter name
  std::vector<RatioResult> results;  // one per analysed ratio, in order
  // The largest ratio that, with every smaller one, costs at most kToleratedDropPoints; 0
  // when even the smallest costs more.
  double suggested_ratio = 0;
};

struct PruneSensitivityReport {
  strategies::EvalMetrics dense;
  std::vector<WeightSensitivity> weights;  // in model order
};

// Makes `config` the analysis' configuration: the UnstructurePrune section's weight
// selection (or its defaults with prune_params_type null when there is none), every other
// strategy dropped (the analysis trains nothing). Throws ConfigError without
// Global.eval_data.
void UsePruningForAnalysis(config::Config& config);

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
