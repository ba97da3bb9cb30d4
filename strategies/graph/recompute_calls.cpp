#include "strategies/graph/recompute_calls.h"

#include <fnmatch.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <optional>
#include <set>

#include "runtime/base/errors.h"
#include "strategies/graph/layer_finder.h"

namespace slim::graph {

namespace {

using torch::jit::Node;
using torch::jit::Value;

bool IsBelow(const std::string& path, const std::string& ancestor) {
  return ancestor.empty() || path.rfind(ancestor + ".", 0) == 0;
}

// The module path of `value` when it is the graph's `self` or reached from it through
// attribute reads; nullopt otherwise.
std::optional<std::string> ModulePathOf(Value* value, Value* self) {
  if (value == self) return std::string();
  const Node* node = value->node();
  if (node->kind() != c10::prim::GetAttr) return std::nullopt;
  const auto parent = ModulePathOf(node->input(0), self);
  if (!parent) return std::nullopt;
  const std::string& name = node->s(c10::attr::name);
  return parent->empty() ? name : *parent + "." + name;
}

// Replaces `call` (a prim::CallMethod) by slim::recompute(region, (args...)).
void ReplaceWithRecompute(Node* call, int64_t region) {
  auto* graph = call->owningGraph();
  torch::jit::WithInsertPoint insert_before(call);
  const std::vector<Value*> arguments(call->inputs().begin() + 1, call->inputs().end());
  Value* packed = graph->insertNode(graph->createTuple(arguments))->output();
  Value* region_value = graph->insertConstant(region);
  Node* recompute = graph->insertNode(graph->create(
      c10::Symbol::fromQualString(kRecomputeOperator), {region_value, packed}, 1));
  recompute->output()->setType(c10::AnyType::get());
  Value* result = graph->insertUncheckedCast(recompute->output(), call->output()->type());
  call->output()->replaceAllUsesWith(result);
  call->destroy();
}

}  // namespace

std::vector<std::string> OutermostModulesMatching(const torch::jit::Module& model,
                                                  const std::string& pattern) {
  std::vector<std::string> found;
  for (const auto& path : ModulePaths(model)) {
    if (fnmatch(pattern.c_str(), path.c_str(), 0) != 0) continue;
    if (!found.empty() && IsBelow(path, found.back())) continue;
    found.push_back(path);
  }
  return found;
}

std::shared_ptr<torch::jit::Graph> RouteCallsThroughRecompute(
    const torch::jit::Module& model, const std::vector<std::string>& paths,
    const std::function<int64_t(const RecomputedCall&)>& region_of) {
  const auto modules = ModulesByPath(model);
  auto graph = torch::jit::toGraphFunction(model.get_method("forward").function()).graph()->copy();
  Value* self = graph->inputs().at(0);
  const std::set<std::string> targets(paths.begin(), paths.end());
  const auto holds_target = [&](const std::string& path) {
    for (const auto& target : targets) {
      if (IsBelow(target, path)) return true;
    }
    return false;
  };
  std::set<std::string> reached;
  // One call at a time: a target's call is replaced, an ancestor's call (or a call into
  // another method of the model itself) is inlined and its body searched in turn.
  while (true) {
    Node* next = nullptr;
    std::string next_path;
    VisitNodes(graph->block(), [&](Node* node) {
      if (next || node->kind() != c10::prim::CallMethod) return;
      const auto path = ModulePathOf(node->input(0), self);
      if (!path || (!targets.count(*path) && !holds_target(*path))) return;
      next = node;
      next_path = *path;
    });
    if (!next) break;
    const std::string method = next->s(c10::attr::name);
    const torch::jit::Module& module = modules.at(next_path);
    if (targets.count(next_path)) {
      ReplaceWithRecompute(next, region_of({next_path, module, method}));
      reached.insert(next_path);
    } else {
      auto& callee = torch::jit::toGraphFunction(module.get_method(method).function());
      torch::jit::inlineCallTo(next, &callee, callee.graph().get());
    }
  }
  for (const auto& path : paths) {
    if (reached.count(path)) continue;
    throw ModelError(fmt::format(
        "module '{}' is never called by the model's forward through its attributes (it is "
        "unused, or called through a list indexed at run time), so it cannot be recomputed; "
        "recompute a module the forward calls by name. Recomputed modules reached: [{}]",
        path, fmt::join(reached, ", ")));
  }
  return graph;
}

}  // namespace slim::graph
