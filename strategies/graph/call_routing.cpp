#include "strategies/graph/call_routing.h"

#include <functional>

#include "runtime/base/errors.h"
#include "runtime/base/text.h"

namespace slim::graph {

namespace {

using torch::jit::Graph;
using torch::jit::Node;
using torch::jit::Value;

std::shared_ptr<Graph> ForwardGraph(const torch::jit::Module& module) {
  return module.get_method("forward").graph();
}

// Inserts self.<child>.forward(argument) at the graph's insert point.
Value* InsertChildCall(Graph& graph, Value* self, const std::string& child, Value* argument) {
  Value* submodule = graph.insertGetAttr(self, child);
  Node* call = graph.insertNode(graph.create(c10::prim::CallMethod, {submodule, argument}));
  call->s_(c10::attr::name, "forward");
  call->output()->setType(argument->type());
  return call->output();
}

void CollectNodes(torch::jit::Block* block, const std::function<bool(Node*)>& wanted,
                  std::vector<Node*>& out) {
  for (Node* node : block->nodes()) {
    if (wanted(node)) out.push_back(node);
    for (torch::jit::Block* inner : node->blocks()) CollectNodes(inner, wanted, out);
  }
}

bool ReadsSelfAttribute(const Value* value, const Value* self) {
  return value->node()->kind() == c10::prim::GetAttr && value->node()->input() == self;
}

bool IsTensor(const Value* value) { return value->type()->cast<c10::TensorType>() != nullptr; }

std::vector<Node*> ActivationOps(Graph& graph, ActivationOp op) {
  const Value* self = graph.inputs()[0];
  std::vector<Node*> nodes;
  CollectNodes(graph.block(), [&](Node* node) {
    const bool kind = op == ActivationOp::kMatMul
                          ? node->kind() == c10::aten::matmul
                          : (node->kind() == c10::aten::add || node->kind() == c10::aten::add_) &&
                                node->inputs().size() == 3 && IsTensor(node->input(0)) &&
                                IsTensor(node->input(1));
    return kind && !ReadsSelfAttribute(node->input(0), self) &&
           !ReadsSelfAttribute(node->input(1), self);
  }, nodes);
  return nodes;
}

// The value after `node`'s result that a quantizer of the result reads: the output of a
// ReLU that is the result's only use (aten::relu or relu_, or a call of a child nn.ReLU),
// else the result.
Value* ResultAfterReLU(Node* node) {
  Value* result = node->output();
  if (result->uses().size() != 1) return result;
  Node* user = result->uses()[0].user;
  if (user->kind() == c10::aten::relu || user->kind() == c10::aten::relu_) return user->output();
  if (user->kind() == c10::prim::CallMethod && user->s(c10::attr::name) == "forward") {
    const auto type = user->input(0)->type()->cast<c10::ClassType>();
    if (type && type->name() && EndsWith(type->name()->qualifiedName(), "activation.ReLU")) {
      return user->output();
    }
  }
  return result;
}

// Replaces each self.<child>.forward(x) in forward by x.
void RemoveChildRoutes(const torch::jit::Module& module, const std::string& child) {
  auto graph = ForwardGraph(module);
  std::vector<Node*> calls;
  CollectNodes(graph->block(), [&](Node* node) {
    return node->kind() == c10::prim::CallMethod &&
           node->input(0)->node()->kind() == c10::prim::GetAttr &&
           node->input(0)->node()->s(c10::attr::name) == child;
  }, calls);
  for (Node* call : calls) {
    Node* read = call->input(0)->node();
    call->output()->replaceAllUsesWith(call->input(1));
    call->destroy();
    if (!read->output()->hasUses()) read->destroy();
  }
}

// Makes every use of forward's input `index` read self.<child>.forward(input).
void RouteInput(Graph& graph, size_t index, const std::string& child) {
  Value* input = graph.inputs()[index];
  torch::jit::WithInsertPoint guard(graph.block()->nodes().front());
  Value* routed = InsertChildCall(graph, graph.inputs()[0], child, input);
  input->replaceAllUsesAfterNodeWith(routed->node(), routed);
}

}  // namespace

int64_t CountActivationOps(const torch::jit::Module& module, ActivationOp op) {
  if (!module.find_method("forward")) return 0;
  return static_cast<int64_t>(ActivationOps(*ForwardGraph(module), op).size());
}

void RouteActivationOps(const torch::jit::Module& module, ActivationOp op,
                        const std::function<std::string(int64_t, int)>& child) {
  auto graph = ForwardGraph(module);
  Value* self = graph->inputs()[0];
  const auto nodes = ActivationOps(*graph, op);
  for (size_t i = 0; i < nodes.size(); ++i) {
    Node* node = nodes[i];
    const auto index = static_cast<int64_t>(i);
    {
      torch::jit::WithInsertPoint guard(node);
      for (int operand = 0; operand < 2; ++operand) {
        node->replaceInput(operand,
                           InsertChildCall(*graph, self, child(index, operand), node->input(operand)));
      }
    }
    const std::string output_child = child(index, 2);
    if (output_child.empty()) continue;
    Value* result = ResultAfterReLU(node);
    torch::jit::WithInsertPoint guard(result->node()->next());
    Value* routed = InsertChildCall(*graph, self, output_child, result);
    result->replaceAllUsesAfterNodeWith(routed->node(), routed);
  }
}

void RouteForwardInput(const torch::jit::Module& module, const std::string& child) {
  auto graph = ForwardGraph(module);
  if (graph->inputs().size() != 2) {
    throw ModelError("cannot quantize the input of " + module.type()->name()->qualifiedName() +
                     ": its forward takes " + std::to_string(graph->inputs().size() - 1) +
                     " inputs, not one tensor");
  }
  RouteInput(*graph, 1, child);
}

void RouteForwardArguments(const torch::jit::Module& module,
                           const std::vector<std::string>& arguments, const std::string& child) {
  auto graph = ForwardGraph(module);
  const auto& schema = module.get_method("forward").function().getSchema();
  for (const auto& argument : arguments) {
    const auto index = schema.argumentIndexWithName(argument);
    if (!index) {
      throw ModelError("cannot quantize the argument '" + argument + "' of " +
                       module.type()->name()->qualifiedName() + ": its forward has none");
    }
    RouteInput(*graph, static_cast<size_t>(*index), child);
  }
}

void RouteForwardOutput(const torch::jit::Module& module, const std::string& child) {
  auto graph = ForwardGraph(module);
  if (graph->outputs().size() != 1 || !graph->outputs()[0]->type()->cast<c10::TensorType>()) {
    throw ModelError("cannot tap " + module.type()->name()->qualifiedName() + ": its forward "
                     "returns " + graph->outputs()[0]->type()->repr_str() + ", not a tensor");
  }
  torch::jit::WithInsertPoint guard(graph->return_node());
  Value* routed = InsertChildCall(*graph, graph->inputs()[0], child, graph->outputs()[0]);
  graph->return_node()->replaceInput(0, routed);
}

void RouteAttributeRead(const torch::jit::Module& module, const std::string& attribute,
                        const std::string& child) {
  auto graph = ForwardGraph(module);
  Value* self = graph->inputs()[0];
  std::vector<Node*> reads;
  CollectNodes(graph->block(), [&](Node* node) {
    return node->kind() == c10::prim::GetAttr && node->input() == self &&
           node->s(c10::attr::name) == attribute;
  }, reads);
  if (reads.empty()) {
    throw ModelError("cannot quantize the " + attribute + " of " +
                     module.type()->name()->qualifiedName() + ": its forward does not read "
                     "self." + attribute + " itself");
  }
  for (Node* read : reads) {
    torch::jit::WithInsertPoint guard(read->next());
    Value* routed = InsertChildCall(*graph, self, child, read->output());
    read->output()->replaceAllUsesAfterNodeWith(routed->node(), routed);
  }
}

torch::jit::Module CloneWithoutChildren(const torch::jit::Module& model,
                                        const std::unordered_set<std::string>& children) {
  torch::jit::Module copy = model.clone();
  std::vector<torch::jit::Module> modules;
  for (const auto& module : copy.modules()) modules.push_back(module);
  // Instances of a class share its graph and its attribute list: edit each class once,
  // after removing the slots of every instance.
  std::unordered_set<const c10::ClassType*> routes_removed;
  for (const auto& module : modules) {
    if (!routes_removed.insert(module.type().get()).second || !module.find_method("forward")) {
      continue;
    }
    for (const auto& child : children) {
      if (module.hasattr(child)) RemoveChildRoutes(module, child);
    }
  }
  std::vector<std::pair<c10::ClassTypePtr, std::string>> attributes;
  for (const auto& module : modules) {
    for (const auto& child : children) {
      if (!module.hasattr(child)) continue;
      module._ivalue()->unsafeRemoveAttr(child);
      attributes.emplace_back(module.type(), child);
    }
  }
  for (const auto& [type, child] : attributes) {
    if (type->hasAttribute(child)) type->unsafeRemoveAttribute(child);
  }
  return copy;
}

}  // namespace slim::graph
