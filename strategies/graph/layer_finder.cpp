#include "strategies/graph/layer_finder.h"

#include <fnmatch.h>

#include <torch/csrc/jit/passes/inliner.h>

#include <optional>

namespace slim::graph {

namespace {

using torch::jit::Node;
using torch::jit::Value;

// Position of the `groups` argument of the convolution ops.
constexpr size_t kConv2dGroups = 6;
constexpr size_t kConvolutionGroups = 8;

bool IsSelfAttribute(const Value* value, const Value* self, const std::string& name) {
  const Node* node = value->node();
  return node->kind() == c10::prim::GetAttr && node->input() == self &&
         node->s(c10::attr::name) == name;
}

// The value of an int argument: a constant, or an int attribute of the module itself.
std::optional<int64_t> IntArgument(const Value* value, const Value* self,
                                   const torch::jit::Module& module) {
  if (auto constant = torch::jit::toIValue(value)) {
    if (constant->isInt()) return constant->toInt();
  }
  const Node* node = value->node();
  if (node->kind() == c10::prim::GetAttr && node->input() == self) {
    const auto attribute = module.attr(node->s(c10::attr::name));
    if (attribute.isInt()) return attribute.toInt();
  }
  return std::nullopt;
}

// The kind of `module` when its forward computes with its own weight.
std::optional<LayerKind> KindOf(const torch::jit::Module& module) {
  if (!module.hasattr("weight") || !module.attr("weight").isTensor()) return std::nullopt;
  const auto forward = module.find_method("forward");
  if (!forward) return std::nullopt;
  auto graph = forward->graph()->copy();
  torch::jit::Inline(*graph);
  const Value* self = graph->inputs()[0];
  const auto weight = module.attr("weight").toTensor();
  std::optional<LayerKind> kind;
  VisitNodes(graph->block(), [&](Node* node) {
    const auto op = node->kind();
    const bool conv = op == c10::aten::conv2d || op == c10::aten::_convolution;
    if ((!conv && op != c10::aten::linear) || node->inputs().size() < 2 ||
        !IsSelfAttribute(node->input(1), self, "weight")) {
      return;
    }
    if (!conv) {
      kind = LayerKind::kLinear;
      return;
    }
    const size_t groups_at = op == c10::aten::conv2d ? kConv2dGroups : kConvolutionGroups;
    const auto groups = IntArgument(node->input(groups_at), self, module);
    const bool depthwise = groups && *groups > 1 && weight.dim() == 4 && weight.size(1) == 1;
    kind = depthwise ? LayerKind::kDepthwiseConv2d : LayerKind::kConv2d;
  });
  return kind;
}

}  // namespace

std::string LayerKindName(LayerKind kind) {
  switch (kind) {
    case LayerKind::kConv2d:
      return "conv2d";
    case LayerKind::kDepthwiseConv2d:
      return "depthwise_conv2d";
    case LayerKind::kLinear:
      return "linear";
  }
  return "";
}

std::vector<WeightLayer> FindWeightLayers(const torch::jit::Module& model) {
  std::vector<WeightLayer> layers;
  for (const auto& entry : model.named_modules()) {
    if (auto kind = KindOf(entry.value)) layers.push_back({entry.name, entry.value, *kind});
  }
  return layers;
}

void VisitNodes(torch::jit::Block* block, const std::function<void(Node*)>& visit) {
  for (Node* node : block->nodes()) {
    visit(node);
    for (torch::jit::Block* inner : node->blocks()) VisitNodes(inner, visit);
  }
}

std::map<std::string, torch::jit::Module> ModulesByPath(const torch::jit::Module& model) {
  std::map<std::string, torch::jit::Module> modules;
  for (const auto& entry : model.named_modules()) modules.emplace(entry.name, entry.value);
  return modules;
}

std::vector<std::string> ModulePaths(const torch::jit::Module& model) {
  std::vector<std::string> paths;
  for (const auto& entry : model.named_modules()) {
    if (!entry.name.empty()) paths.push_back(entry.name);
  }
  return paths;
}

bool MatchesModulePattern(const std::string& pattern, const std::string& path) {
  return fnmatch(pattern.c_str(), path.c_str(), 0) == 0 ||
         fnmatch((pattern + ".*").c_str(), path.c_str(), 0) == 0;
}

}  // namespace slim::graph
