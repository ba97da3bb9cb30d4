#include "strategies/graph/call_routing.h"

#include <functional>

#include "runtime/errors.h"

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

std::vector<Node*> ActivationMatMuls(Graph& graph) {
  const Value* self = graph.inputs()[0];
  std::vector<Node*> matmuls;
  CollectNodes(graph.block(), [&](Node* node) {
    return node->kind() == c10::aten::matmul && !ReadsSelfAttribute(node->input(0), self) &&
           !ReadsSelfAttribute(node->input(1), self);
  }, matmuls);
  return matmuls;
}

}  // namespace

int64_t CountActivationMatMuls(const torch::jit::Module& module) {
  if (!module.find_method("forward")) return 0;
  return static_cast<int64_t>(ActivationMatMuls(*ForwardGraph(module)).size());
}

void RouteMatMulOperands(const torch::jit::Module& module,
                         const std::function<std::string(int64_t, int)>& child) {
  auto graph = ForwardGraph(module);
  const auto matmuls = ActivationMatMuls(*graph);
  for (size_t i = 0; i < matmuls.size(); ++i) {
    Node* matmul = matmuls[i];
    torch::jit::WithInsertPoint guard(matmul);
    for (int operand = 0; operand < 2; ++operand) {
      Value* routed = InsertChildCall(*graph, graph->inputs()[0],
                                      child(static_cast<int64_t>(i), operand),
                                      matmul->input(operand));
      matmul->replaceInput(operand, routed);
    }
  }
}

void RouteForwardInput(const torch::jit::Module& module, const std::string& child) {
  auto graph = ForwardGraph(module);
  if (graph->inputs().size() != 2) {
    throw ModelError("cannot quantize the input of " + module.type()->name()->qualifiedName() +
                     ": its forward takes " + std::to_string(graph->inputs().size() - 1) +
                     " inputs, not one tensor");
  }
  Value* input = graph->inputs()[1];
  torch::jit::WithInsertPoint guard(graph->block()->nodes().front());
  Value* routed = InsertChildCall(*graph, graph->inputs()[0], child, input);
  input->replaceAllUsesAfterNodeWith(routed->node(), routed);
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

}  // namespace slim::graph
