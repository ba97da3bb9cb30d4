// Quantization sensitivity analysis (slim-train CONFIG --analyze quant): with every
// quantizer calibrated, the model is evaluated with one layer quantized at a time; the
// layers that cost the most accuracy are the candidates for not_quant_pattern.
#pragma once

#include <torch/script.h>

#include <functional>
#include <string>
#include <vector>

#include "strategies/strategy.h"

namespace slim::quant {

// Evaluation figures of one model state.
using Metric = strategies::EvalMetrics;

// One layer's effect when it alone is quantized.
struct LayerSensitivity {
  std::string path;
  Metric metric;
  double top1_drop_points = 0;  // (float top1 - top1) * 100
  double loss_increase = 0;     // loss - float loss
};

// Result of the analysis.
struct SensitivityReport {
  Metric float_model;
  Metric all_quantized;
  std::vector<LayerSensitivity> layers;         // most sensitive first
  std::vector<std::string> suggested_patterns;  // not_quant_pattern entries
};

// Quantizers the analysis switches together: a layer's weight and input quantizers
// (path: the layer), or a matmul's two operand quantizers (path: "<module>.matmul<i>").
struct QuantizerGroup {
  std::string path;
  std::vector<torch::jit::Module> quantizers;
};

// The groups of `model` whose quantizers are enabled, in named_modules() order.
std::vector<QuantizerGroup> EnabledQuantizerGroups(const torch::jit::Module& model);

// Evaluates the model the `groups` belong to (quantizers calibrated) in float, fully
// quantized and with each group alone quantized; leaves every quantizer of `groups`
// enabled. `evaluate` is collective when the ranks share the evaluation.
SensitivityReport AnalyzeSensitivity(const std::vector<QuantizerGroup>& groups,
                                     const std::function<Metric()>& evaluate);

// Sorts by top-1 drop, then by loss increase, largest first.
void SortMostSensitiveFirst(std::vector<LayerSensitivity>& layers);

// The fewest most sensitive layers whose top-1 drops add up to at least half of the sum of
// all positive drops, leaving out drops of at most `noise_points` (AnalyzeSensitivity uses
// two evaluation samples' worth); none when no layer costs more than that.
std::vector<std::string> SuggestNotQuantPattern(const std::vector<LayerSensitivity>& sorted,
                                                double noise_points);

}  // namespace slim::quant
