#include "strategies/graph/conv_bn_pairs.h"

#include <torch/csrc/jit/passes/inliner.h>

#include <map>
#include <optional>

#include "strategies/graph/layer_finder.h"

namespace slim::graph {

namespace {

using torch::jit::Node;
using torch::jit::Value;

// Position of eps among aten::batch_norm's arguments.
constexpr size_t kBatchNormEps = 7;

// The path, relative to the graph's module, of a module value reached from `self` through
// attribute reads; nullopt for any other value.
std::optional<std::string> ChildPath(const Value* value, const Value* self) {
  std::string path;
  while (value != self) {
    const Node* node = value->node();
    if (node->kind() != c10::prim::GetAttr) return std::nullopt;
    const std::string& name = node->s(c10::attr::name);
    path = path.empty() ? name : name + "." + path;
    value = node->input();
  }
  return path;
}

bool IsForwardCall(const Node* node) {
  return node->kind() == c10::prim::CallMethod && node->s(c10::attr::name) == "forward";
}

bool HasVector(const torch::jit::Module& module, const std::string& name, int64_t size) {
  if (!module.hasattr(name) || !module.attr(name).isTensor()) return false;
  const auto tensor = module.attr(name).toTensor();
  return tensor.defined() && tensor.dim() == 1 && tensor.size(0) == size;
}

// The epsilon of a BatchNorm over `channels` channels; nullopt when `module` is not one.
std::optional<double> BatchNormEps(const torch::jit::Module& module, int64_t channels) {
  for (const char* name : {"weight", "bias", "running_mean", "running_var"}) {
    if (!HasVector(module, name, channels)) return std::nullopt;
  }
  const auto forward = module.find_method("forward");
  if (!forward) return std::nullopt;
  auto graph = forward->graph()->copy();
  torch::jit::Inline(*graph);
  const Value* self = graph->inputs()[0];
  std::optional<double> eps;
  VisitNodes(graph->block(), [&](Node* node) {
    if (node->kind() != c10::aten::batch_norm) return;
    const Value* argument = node->input(kBatchNormEps);
    if (auto constant = torch::jit::toIValue(argument); constant && constant->isDouble()) {
      eps = constant->toDouble();
    } else if (argument->node()->kind() == c10::prim::GetAttr &&
               argument->node()->input() == self) {
      const auto attribute = module.attr(argument->node()->s(c10::attr::name));
      if (attribute.isDouble()) eps = attribute.toDouble();
    }
  });
  return eps;
}

std::string Join(const std::string& prefix, const std::string& path) {
  return prefix.empty() ? path : prefix + "." + path;
}

}  // namespace

std::vector<ConvBatchNorm> FindConvBatchNorms(const torch::jit::Module& model) {
  const auto modules = ModulesByPath(model);
  std::map<std::string, int> calls;  // forward calls per module path
  std::vector<std::pair<std::string, std::string>> candidates;
  for (const auto& entry : model.named_modules()) {
    // All methods: torchvision's ResNet.forward calls self._forward_impl, which calls conv1.
    for (const auto& method : entry.value.get_methods()) {
      const auto graph = method.graph();
      const Value* self = graph->inputs()[0];
      VisitNodes(graph->block(), [&](Node* node) {
        if (!IsForwardCall(node)) return;
        const auto callee = ChildPath(node->input(0), self);
        if (!callee || callee->empty()) return;
        ++calls[Join(entry.name, *callee)];
        const auto& uses = node->output()->uses();
        if (uses.size() != 1 || !IsForwardCall(uses[0].user) || uses[0].offset != 1) return;
        if (const auto next = ChildPath(uses[0].user->input(0), self); next && !next->empty()) {
          candidates.emplace_back(Join(entry.name, *callee), Join(entry.name, *next));
        }
      });
    }
  }
  std::vector<ConvBatchNorm> pairs;
  for (const auto& [conv_path, bn_path] : candidates) {
    const auto& conv = modules.at(conv_path);
    if (calls[conv_path] != 1 || !conv.hasattr("weight") || !conv.attr("weight").isTensor()) {
      continue;
    }
    const auto weight = conv.attr("weight").toTensor();
    if (weight.dim() != 4) continue;
    if (const auto eps = BatchNormEps(modules.at(bn_path), weight.size(0))) {
      pairs.push_back({conv_path, bn_path, *eps});
    }
  }
  return pairs;
}

}  // namespace slim::graph
