#include "strategies/prune/prunable_weights.h"

#include <fmt/format.h>
#include <fnmatch.h>

#include <algorithm>

#include "runtime/base/errors.h"
#include "runtime/base/logging.h"
#include "runtime/base/text.h"
#include "runtime/config/config_section.h"

namespace slim::prune {

namespace {

std::vector<std::string> NamesOf(const std::vector<PrunableWeight>& weights) {
  std::vector<std::string> names;
  for (const auto& weight : weights) names.push_back(weight.name);
  return names;
}

}  // namespace

std::vector<PrunableWeight> WeightsOf(const torch::jit::Module& model) {
  std::vector<PrunableWeight> weights;
  for (const auto& layer : graph::FindWeightLayers(model)) {
    const std::string name = layer.path.empty() ? "weight" : layer.path + ".weight";
    weights.push_back({name, layer.path, layer.kind, layer.module});
  }
  return weights;
}

bool MatchesWeight(const std::string& pattern, const PrunableWeight& weight) {
  return fnmatch(pattern.c_str(), weight.name.c_str(), 0) == 0 ||
         graph::MatchesModulePattern(pattern, weight.layer);
}

std::vector<PrunableWeight> WithoutSkipped(std::vector<PrunableWeight> weights,
                                           const std::vector<std::string>& patterns,
                                           const std::string& section) {
  for (const auto& pattern : patterns) {
    const bool matched = std::any_of(weights.begin(), weights.end(), [&](const auto& weight) {
      return MatchesWeight(pattern, weight);
    });
    if (!matched) {
      logging::Warning(fmt::format("{}.skip_params: '{}' matches no weight it would prune; "
                                   "they are: {}",
                                   section, pattern, JoinedList(NamesOf(weights))));
    }
  }
  weights.erase(std::remove_if(weights.begin(), weights.end(),
                               [&](const PrunableWeight& weight) {
                                 return std::any_of(patterns.begin(), patterns.end(),
                                                    [&](const std::string& pattern) {
                                                      return MatchesWeight(pattern, weight);
                                                    });
                               }),
                weights.end());
  return weights;
}

std::vector<PrunableWeight> NamedWeights(const std::vector<PrunableWeight>& weights,
                                         const std::vector<std::string>& names,
                                         const std::string& section) {
  const auto valid = NamesOf(weights);
  for (const auto& name : names) {
    if (std::find(valid.begin(), valid.end(), name) != valid.end()) continue;
    throw ConfigError(fmt::format(
        "{}.prune_params_name: '{}' is not the weight of a convolution or linear layer of "
        "the model; nearest: '{}' (every candidate: {})",
        section, name, config::NearestWord(name, valid), JoinedList(valid)));
  }
  std::vector<PrunableWeight> named;
  for (const auto& weight : weights) {
    if (std::find(names.begin(), names.end(), weight.name) != names.end()) {
      named.push_back(weight);
    }
  }
  return named;
}

bool IsPointwiseConv(const PrunableWeight& weight) {
  if (weight.kind == graph::LayerKind::kLinear) return false;
  const auto sizes = weight.Tensor().sizes();
  return sizes.size() == 4 && sizes[2] == 1 && sizes[3] == 1;
}

}  // namespace slim::prune
