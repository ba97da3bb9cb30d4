#include "strategies/quant/sensitivity.h"

#include <algorithm>

#include "runtime/base/text.h"
#include "strategies/quant/quantizer_modules.h"

namespace slim::quant {

namespace {

constexpr const char* kQuantSuffix = "_quant";

// Enables the quantizers of the groups for which `on` holds and disables the others.
void QuantizeOnly(const std::vector<QuantizerGroup>& groups,
                  const std::function<bool(const std::string&)>& on) {
  for (const auto& group : groups) {
    for (auto quantizer : group.quantizers) SetEnabled(quantizer, on(group.path));
  }
}

// The group a quantizer child belongs to: the layer for weight_quant and input_quant,
// "<module>.matmul<i>" for matmul<i>_input_quant and matmul<i>_other_quant.
std::string GroupPath(const std::string& module_path, const std::string& child) {
  if (child == "weight_quant" || child == "input_quant") return module_path;
  const std::string site = child.substr(0, child.find('_'));
  return module_path.empty() ? site : module_path + "." + site;
}

}  // namespace

std::vector<QuantizerGroup> EnabledQuantizerGroups(const torch::jit::Module& model) {
  std::vector<QuantizerGroup> groups;
  for (const auto& entry : model.named_modules()) {
    for (const auto& child : entry.value.named_children()) {
      if (!EndsWith(child.name, kQuantSuffix) || !child.value.hasattr("enabled") ||
          !child.value.attr("enabled").toBool()) {
        continue;
      }
      const auto path = GroupPath(entry.name, child.name);
      if (groups.empty() || groups.back().path != path) groups.push_back({path, {}});
      groups.back().quantizers.push_back(child.value);
    }
  }
  return groups;
}

SensitivityReport AnalyzeSensitivity(const std::vector<QuantizerGroup>& groups,
                                     const std::function<Metric()>& evaluate) {
  SensitivityReport report;
  QuantizeOnly(groups, [](const std::string&) { return false; });
  report.float_model = evaluate();
  for (const auto& group : groups) {
    QuantizeOnly(groups, [&](const std::string& path) { return path == group.path; });
    LayerSensitivity entry{group.path, evaluate()};
    entry.top1_drop_points = (report.float_model.top1 - entry.metric.top1) * 100;
    entry.loss_increase = entry.metric.loss - report.float_model.loss;
    report.layers.push_back(entry);
  }
  QuantizeOnly(groups, [](const std::string&) { return true; });
  report.all_quantized = evaluate();
  SortMostSensitiveFirst(report.layers);
  const double noise_points = 200.0 / std::max<int64_t>(report.float_model.samples, 1);
  report.suggested_patterns = SuggestNotQuantPattern(report.layers, noise_points);
  return report;
}

void SortMostSensitiveFirst(std::vector<LayerSensitivity>& layers) {
  std::stable_sort(layers.begin(), layers.end(), [](const auto& a, const auto& b) {
    if (a.top1_drop_points != b.top1_drop_points) return a.top1_drop_points > b.top1_drop_points;
    return a.loss_increase > b.loss_increase;
  });
}

std::vector<std::string> SuggestNotQuantPattern(const std::vector<LayerSensitivity>& sorted,
                                                double noise_points) {
  double total = 0;
  for (const auto& layer : sorted) total += std::max(layer.top1_drop_points, 0.0);
  std::vector<std::string> suggested;
  double covered = 0;
  for (const auto& layer : sorted) {
    if (layer.top1_drop_points <= noise_points || covered >= total / 2) break;
    suggested.push_back(layer.path);
    covered += layer.top1_drop_points;
  }
  return suggested;
}

}  // namespace slim::quant
