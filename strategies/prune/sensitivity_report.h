// What the pruning sensitivity analyses (--analyze prune: weights for UnstructurePrune,
// channel groups for ChannelPrune) measure, how a ratio is suggested from it, and the
// files they write: prune_sensitivity.{md,json,png,svg}.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "strategies/strategy.h"

namespace slim::prune {

// The top-1 drop a suggested ratio may cost.
constexpr double kToleratedDropPoints = 1.0;

struct RatioResult {
  double ratio = 0;
  strategies::EvalMetrics metric;
  int64_t macs = 0;  // of the pruned model, per sample; 0 when not counted
  double latency_ms = 0;  // of the pruned model at the training batch; 0 when not measured
};

// One pruned unit: a weight, or a channel group.
struct WeightSensitivity {
  std::string weight;                // parameter name, or the group's name
  std::vector<RatioResult> results;  // one per analysed ratio, in order
  // The largest ratio that, with every smaller one, costs at most kToleratedDropPoints; 0
  // when even the smallest costs more.
  double suggested_ratio = 0;
};

struct PruneSensitivityReport {
  strategies::EvalMetrics dense;
  int64_t dense_macs = 0;                  // 0 when not counted
  double dense_latency_ms = 0;             // 0 when not measured
  std::vector<WeightSensitivity> weights;  // in model order
};

// Top-1 points `pruned` lost against `dense`.
double DropPoints(const strategies::EvalMetrics& dense, const strategies::EvalMetrics& pruned);

// SuggestedRatio of `results` against `dense`: the largest ratio that, with every smaller
// one, costs at most kToleratedDropPoints; 0 when none does.
double SuggestedRatio(const std::vector<RatioResult>& results, const strategies::EvalMetrics& dense);

// How the files describe the analysis.
struct SensitivityText {
  std::string unit;         // table header of the pruned unit: "weight", "group"
  std::string method;       // "each weight pruned alone by magnitude"
  std::string chart_title;  // title of the bar chart of suggested ratios
};

// Writes prune_sensitivity.md (table, then `extra_markdown`), .json (the report, with
// `extra_json`'s keys added), .png and .svg (suggested ratios) under `output_dir` and
// prints the table. `ratios` are the analysed ratios, in the results' order.
void WriteSensitivityOutputs(const PruneSensitivityReport& report, const std::vector<double>& ratios,
                             const SensitivityText& text, const std::string& extra_markdown,
                             const nlohmann::json& extra_json, const std::string& output_dir);

}  // namespace slim::prune
