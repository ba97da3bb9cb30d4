#include "strategies/quant/sensitivity.h"

#include <algorithm>
#include <map>

#include "strategies/graph/layer_finder.h"
#include "strategies/quant/quantizer_modules.h"

namespace slim::quant {

namespace {

// Enables the quantizers of the layers in `on` and disables those of the other `layers`.
void QuantizeOnly(const std::map<std::string, torch::jit::Module>& modules,
                  const std::vector<std::string>& layers,
                  const std::function<bool(const std::string&)>& on) {
  for (const auto& path : layers) {
    const auto& layer = modules.at(path);
    for (const char* child : {"weight_quant", "input_quant"}) {
      auto quantizer = layer.attr(child).toModule();
      SetEnabled(quantizer, on(path));
    }
  }
}

}  // namespace

std::vector<std::string> EnabledQuantizedLayers(const torch::jit::Module& model) {
  std::vector<std::string> paths;
  for (const auto& entry : model.named_modules()) {
    if (entry.value.hasattr("weight_quant") &&
        entry.value.attr("weight_quant").toModule().attr("enabled").toBool()) {
      paths.push_back(entry.name);
    }
  }
  return paths;
}

SensitivityReport AnalyzeSensitivity(torch::jit::Module& model,
                                     const std::vector<std::string>& layers,
                                     const std::function<Metric()>& evaluate) {
  const auto modules = graph::ModulesByPath(model);
  SensitivityReport report;
  QuantizeOnly(modules, layers, [](const std::string&) { return false; });
  report.float_model = evaluate();
  for (const auto& path : layers) {
    QuantizeOnly(modules, layers, [&](const std::string& layer) { return layer == path; });
    LayerSensitivity entry{path, evaluate()};
    entry.top1_drop_points = (report.float_model.top1 - entry.metric.top1) * 100;
    entry.loss_increase = entry.metric.loss - report.float_model.loss;
    report.layers.push_back(entry);
  }
  QuantizeOnly(modules, layers, [](const std::string&) { return true; });
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
