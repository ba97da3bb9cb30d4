#include "export/frozen_graph.h"

#include <torch/csrc/jit/ir/constants.h>
#include <torch/csrc/jit/passes/constant_propagation.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>
#include <torch/csrc/jit/passes/freeze_module.h>
#include <torch/csrc/jit/passes/frozen_conv_folding.h>
#include <torch/csrc/jit/passes/remove_dropout.h>
#include <torch/csrc/jit/passes/remove_mutation.h>

#include <unordered_map>

#include "runtime/base/errors.h"
#include "runtime/models/attention_forward.h"

namespace slim::exporting {

namespace {

using torch::jit::Node;
using torch::jit::Value;

void CollectNodes(torch::jit::Block* block, std::vector<Node*>& nodes) {
  for (Node* node : block->nodes()) {
    nodes.push_back(node);
    for (torch::jit::Block* nested : node->blocks()) CollectNodes(nested, nodes);
  }
}

// Replaces each read of a non-module attribute of the frozen module by a constant of its
// current value; with kAttributes, reads of tensors stay. Reads of values a constant cannot
// hold stay as they are.
void ResolveAttributes(const torch::jit::Module& frozen, torch::jit::Graph& graph,
                       FrozenTensors tensors) {
  std::unordered_map<const Value*, c10::IValue> objects{{graph.inputs()[0], frozen._ivalue()}};
  for (Node* node : AllNodes(graph)) {
    if (node->kind() != c10::prim::GetAttr) continue;
    const auto owner = objects.find(node->input());
    if (owner == objects.end()) continue;
    const auto value = owner->second.toObjectRef().getAttr(node->s(c10::attr::name));
    if (value.isObject()) {
      objects.emplace(node->output(), value);
      continue;
    }
    if (value.isTensor() && tensors == FrozenTensors::kAttributes) continue;
    torch::jit::WithInsertPoint here(node);
    const auto constant = torch::jit::tryInsertConstant(graph, value);
    if (constant) node->output()->replaceAllUsesWith(*constant);
  }
}

// "layers." when the module called `name` sits in `caller`'s container (an nn.ModuleList
// or nn.ModuleDict) `layers` rather than in `caller` itself, whose call stacks name only
// the item; "" otherwise.
std::string ContainerOf(const c10::ClassTypePtr& caller, const std::string& name) {
  if (!caller || caller->hasAttribute(name)) return "";
  for (size_t i = 0; i < caller->numAttributes(); ++i) {
    const auto container = caller->getAttribute(i)->cast<c10::ClassType>();
    if (container && container->is_module() && container->hasAttribute(name)) {
      return caller->getAttributeName(i) + ".";
    }
  }
  return "";
}

}  // namespace

std::vector<Node*> AllNodes(const torch::jit::Graph& graph) {
  std::vector<Node*> nodes;
  CollectNodes(const_cast<torch::jit::Block*>(graph.block()), nodes);
  return nodes;
}

std::string LayerOf(const Node* node) {
  const auto stack = node->callstack();
  if (!stack) return "";
  std::string path;
  c10::ClassTypePtr caller;  // the module whose forward made the call; unknown for the model
                             // itself, whose frozen type has lost its submodules
  for (const auto& frame : (*stack)->vec()) {
    const auto& instance = std::get<2>(frame);
    // "SELF" marks a call of a module's own method (nn.Conv2d's _conv_forward).
    if (!instance || instance->instance_name().empty() || instance->instance_name() == "SELF") {
      continue;
    }
    const auto& name = instance->instance_name();
    path += (path.empty() ? "" : ".") + ContainerOf(caller, name) + name;
    caller = instance->class_type();
  }
  return path;
}

c10::optional<c10::IValue> ConstantOf(const Value* value) {
  if (auto constant = torch::jit::toIValue(value)) return constant;
  const Node* node = value->node();
  if (node->kind() == c10::prim::Param || node->outputs().size() != 1) return c10::nullopt;
  auto stack = torch::jit::runNodeIfInputsAreConstant(node);
  if (!stack || stack->size() != 1) return c10::nullopt;
  return stack->at(0);
}

void FoldConstants(FrozenModel& frozen) {
  torch::jit::ConstantPropagation(frozen.graph);
  torch::jit::FoldFrozenConvBatchnorm(frozen.graph);
  torch::jit::EliminateDeadCode(frozen.graph);
}

FrozenModel FreezeForExport(const torch::jit::Module& model, FrozenTensors tensors) {
  if (!model.find_method("forward")) throw ModelError("the model has no forward method to export");
  auto copy = model.clone();
  if (tensors == FrozenTensors::kConstants) models::RunAttentionThroughItsLayers(copy);
  copy.eval();
  copy.to(torch::kCPU);
  torch::jit::Module frozen;
  try {
    frozen = torch::jit::freeze_module(copy, /*preservedAttrs=*/{}, /*freezeInterfaces=*/true,
                                       /*preserveParameters=*/tensors == FrozenTensors::kAttributes);
  } catch (const c10::Error& error) {
    throw ModelError(std::string("the model cannot be frozen for export: ") +
                     error.what_without_backtrace());
  }
  auto graph = frozen.get_method("forward").graph();
  ResolveAttributes(frozen, *graph, tensors);
  torch::jit::EliminateDeadCode(graph);
  torch::jit::ConstantPropagationImmutableTypes(graph);
  torch::jit::RemoveTensorMutation(graph);  // relu_, add_: values stay what they were made
  torch::jit::removeDropout(graph);
  torch::jit::EliminateDeadCode(graph);
  return {frozen, graph};
}

}  // namespace slim::exporting
