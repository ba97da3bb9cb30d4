#include "runtime/engine/activation_recompute.h"

#include <torch/csrc/jit/api/function_impl.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <set>

#include "runtime/base/errors.h"
#include "runtime/config/config_section.h"
#include "runtime/engine/recompute_region.h"
#include "strategies/graph/layer_finder.h"
#include "strategies/graph/recompute_calls.h"

namespace slim::engine {

namespace {

constexpr const char* kKey = "TrainConfig.recompute_config.modules";

bool IsSameOrBelow(const std::string& path, const std::string& module) {
  return path == module || path.rfind(module + ".", 0) == 0;
}

// The outermost modules `patterns` name, in model order, each once.
std::vector<std::string> ChosenModules(const torch::jit::Module& model,
                                       const std::vector<std::string>& patterns,
                                       const std::string& config_file) {
  const auto all_paths = graph::ModulePaths(model);
  std::vector<std::string> chosen;
  for (const auto& pattern : patterns) {
    const auto found = graph::OutermostModulesMatching(model, pattern);
    if (found.empty()) {
      const std::string nearest = config::NearestWord(pattern, all_paths);
      throw ConfigError(fmt::format(
          "{}: {}: '{}' names no module of the model{}; write module paths as named_modules() "
          "gives them (shell wildcards allowed, e.g. layer2 or enc.layers.*)",
          config_file, kKey, pattern,
          nearest.empty() ? "" : fmt::format("; did you mean '{}'?", nearest)));
    }
    chosen.insert(chosen.end(), found.begin(), found.end());
  }
  const std::set<std::string> picked(chosen.begin(), chosen.end());
  std::vector<std::string> outermost;
  for (const auto& path : all_paths) {
    if (!picked.count(path)) continue;
    if (!outermost.empty() && IsSameOrBelow(path, outermost.back())) continue;
    outermost.push_back(path);
  }
  return outermost;
}

void RefuseTappedModules(const std::vector<std::string>& chosen,
                         const std::vector<std::string>& tapped_paths,
                         const std::string& config_file) {
  for (const auto& module : chosen) {
    for (const auto& tapped : tapped_paths) {
      if (!IsSameOrBelow(tapped, module)) continue;
      throw ConfigError(fmt::format(
          "{}: {}: module '{}' holds '{}', whose output a distillation loss reads; a "
          "recomputed module's activations are not kept, so that loss would get no gradient. "
          "Recompute modules that hold no distilled node, or distil at another node",
          config_file, kKey, module, tapped));
    }
  }
}

}  // namespace

ActivationRecompute::ActivationRecompute(torch::jit::Module model,
                                         const std::vector<std::string>& patterns,
                                         const std::vector<std::string>& tapped_paths,
                                         const std::string& config_file)
    : model_(std::move(model)), paths_(ChosenModules(model_, patterns, config_file)) {
  RefuseTappedModules(paths_, tapped_paths, config_file);
  try {
    auto graph = graph::RouteCallsThroughRecompute(
        model_, paths_, [this](const graph::RecomputedCall& call) {
          regions_.push_back(RegisterRecomputeRegion(call));
          return regions_.back();
        });
    forward_ = std::make_unique<torch::jit::GraphFunction>("slim.recomputed_forward",
                                                           std::move(graph), nullptr);
  } catch (...) {
    for (const int64_t region : regions_) ForgetRecomputeRegion(region);
    throw;
  }
}

ActivationRecompute::~ActivationRecompute() {
  for (const int64_t region : regions_) ForgetRecomputeRegion(region);
}

torch::jit::IValue ActivationRecompute::Forward(const torch::Tensor& inputs) {
  return (*forward_)({model_._ivalue(), inputs});
}

}  // namespace slim::engine
