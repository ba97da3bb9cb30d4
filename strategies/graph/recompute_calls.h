// The graph pass of activation recompute: a copy of a model's forward graph in which every
// call into chosen submodules goes through one operator, slim::recompute, which the
// training loop implements (runtime/engine/activation_recompute.h). Calls into the chosen
// modules' ancestors are inlined so that calls nested anywhere below the model's forward
// are reached. The model, its classes and its methods are left as they are, so
// evaluation and exports never see the operator.
#pragma once

#include <torch/script.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace slim::graph {

// slim::recompute(int region, Any args) -> Any: `args` is the tuple of a call's arguments
// (without the module), the result is the call's own result.
inline constexpr const char* kRecomputeOperator = "slim::recompute";

// The paths of the outermost modules of `model` that `pattern` (a module path, shell
// wildcards allowed) names, in named_modules() order: `enc.layers.*` gives enc.layers.0,
// enc.layers.1, ... but none of their children. Empty when it names none.
std::vector<std::string> OutermostModulesMatching(const torch::jit::Module& model,
                                                  const std::string& pattern);

// One call site into a chosen module.
struct RecomputedCall {
  std::string path;  // the module's path in the model
  torch::jit::Module module;
  std::string method;  // the method called, usually forward
};

// Returns a copy of `model`'s forward graph (taking the model as its first input, like
// the original) where every call into a module at one of `paths` is replaced by
// slim::recompute with the region number `region_of` gives for that call site. Throws
// ModelError naming a path that no call of the forward reaches through attributes of the
// model (a module kept in a list the forward indexes at run time, one never called).
std::shared_ptr<torch::jit::Graph> RouteCallsThroughRecompute(
    const torch::jit::Module& model, const std::vector<std::string>& paths,
    const std::function<int64_t(const RecomputedCall&)>& region_of);

}  // namespace slim::graph
