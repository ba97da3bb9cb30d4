#include "strategies/graph/conv_groups.h"

#include <torch/csrc/jit/api/function_impl.h>
#include <torch/csrc/jit/ir/constants.h>

#include <map>
#include <vector>

#include "strategies/graph/layer_finder.h"

namespace slim::graph {

namespace {

using torch::jit::Node;

// The index of the `groups` argument of a convolution node; -1 for other nodes.
int GroupsArgument(const Node* node) {
  switch (node->kind()) {
    case c10::aten::conv1d:
    case c10::aten::conv2d:
    case c10::aten::conv3d:
      return 6;
    case c10::aten::_convolution:
      return 8;
    default:
      return -1;
  }
}

// The convolutions in `type`'s methods whose groups argument is the literal `groups`.
std::vector<Node*> ConvolutionsWithLiteralGroups(const c10::ClassTypePtr& type, int64_t groups) {
  std::vector<Node*> found;
  for (auto* method : type->methods()) {
    auto* function = torch::jit::tryToGraphFunction(*method);
    if (!function) continue;
    VisitNodes(function->graph()->block(), [&](Node* node) {
      const int argument = GroupsArgument(node);
      if (argument < 0) return;
      const auto value = torch::jit::toIValue(node->input(argument));
      if (value && value->isInt() && value->toInt() == groups) found.push_back(node);
    });
  }
  return found;
}

}  // namespace

int64_t ReadConvolutionGroupsFromAttributes(torch::jit::Module& model) {
  std::map<c10::ClassTypePtr, std::vector<torch::jit::Module>> instances;
  for (const auto& entry : model.named_modules()) {
    const auto& type = entry.value.type();
    if (!type->hasConstant("groups")) continue;
    const auto groups = type->getConstant("groups");
    if (groups.isInt() && groups.toInt() > 1) instances[type].push_back(entry.value);
  }
  int64_t rewritten = 0;
  for (auto& [type, modules] : instances) {
    const int64_t groups = type->getConstant("groups").toInt();
    const auto convolutions = ConvolutionsWithLiteralGroups(type, groups);
    if (convolutions.empty()) continue;
    type->unsafeRemoveConstant("groups");
    for (auto& module : modules) module.register_attribute("groups", c10::IntType::get(), groups);
    for (Node* node : convolutions) {
      auto* graph = node->owningGraph();
      torch::jit::WithInsertPoint insert_before(node);
      node->replaceInput(GroupsArgument(node), graph->insertGetAttr(graph->inputs().at(0), "groups"));
    }
    ++rewritten;
  }
  return rewritten;
}

}  // namespace slim::graph
