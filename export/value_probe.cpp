#include "export/value_probe.h"

#include <torch/csrc/jit/api/function_impl.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>

#include <algorithm>
#include <limits>

namespace slim::exporting {

namespace {

// The value of `copy` that stands where `value` stands in `original` (copy = original.copy(),
// which keeps the order of nodes and outputs).
torch::jit::Value* Counterpart(const torch::jit::Graph& original, const torch::jit::Graph& copy,
                               const torch::jit::Value* value) {
  const auto* producer = value->node();
  if (producer->kind() == c10::prim::Param) {
    return const_cast<torch::jit::Value*>(copy.inputs()[value->offset()]);
  }
  const auto original_nodes = AllNodes(original);
  const auto copy_nodes = AllNodes(copy);
  const auto position = std::find(original_nodes.begin(), original_nodes.end(), producer);
  return copy_nodes.at(position - original_nodes.begin())->outputs()[value->offset()];
}

}  // namespace

std::vector<std::vector<at::Tensor>> ProbeValues(
    const FrozenModel& frozen, const std::vector<torch::jit::Value*>& values,
    const std::vector<at::Tensor>& inputs,
    const std::function<torch::jit::Value*(torch::jit::Graph&, torch::jit::Value*)>& observe) {
  // A copy that returns the observations (a method returns one value: a list of them).
  auto probe_graph = frozen.graph->copy();
  {
    // Each observation right where its value is made: later in-place ops may change it.
    std::vector<torch::jit::Value*> counterparts;
    for (auto* value : values) counterparts.push_back(Counterpart(*frozen.graph, *probe_graph, value));
    std::vector<torch::jit::Value*> observations;
    for (auto* counterpart : counterparts) {
      torch::jit::WithInsertPoint after(counterpart->node()->next());
      observations.push_back(observe(*probe_graph, counterpart));
    }
    torch::jit::WithInsertPoint at_end(probe_graph->return_node());
    auto* list = probe_graph->insertNode(
        probe_graph->createList(c10::TensorType::get(), observations));
    probe_graph->eraseOutput(0);
    probe_graph->registerOutput(list->output());
  }
  torch::jit::EliminateDeadCode(probe_graph);

  torch::jit::GraphFunction probe("probe", probe_graph, nullptr);
  std::vector<std::vector<at::Tensor>> observed;
  torch::NoGradGuard no_grad;
  for (const auto& input : inputs) {
    torch::jit::Stack stack{frozen.module._ivalue(), input};
    probe.run(stack);
    observed.push_back(stack.back().toTensorVector());
  }
  return observed;
}

std::vector<std::pair<double, double>> ValueRanges(const FrozenModel& frozen,
                                                   const std::vector<torch::jit::Value*>& values,
                                                   const std::vector<at::Tensor>& inputs) {
  const auto observed = ProbeValues(frozen, values, inputs, [](auto& graph, auto* value) {
    auto* low = graph.insert(c10::aten::min, {value});
    auto* high = graph.insert(c10::aten::max, {value});
    auto* both = graph.insertNode(graph.createList(c10::TensorType::get(), {low, high}));
    return graph.insert(c10::aten::stack, {both->output()});
  });
  std::vector<std::pair<double, double>> ranges(values.size(),
                                                {std::numeric_limits<double>::max(),
                                                 std::numeric_limits<double>::lowest()});
  for (const auto& row : observed) {
    for (size_t k = 0; k < row.size(); ++k) {
      ranges[k].first = std::min(ranges[k].first, row[k][0].item<double>());
      ranges[k].second = std::max(ranges[k].second, row[k][1].item<double>());
    }
  }
  return ranges;
}

std::vector<std::vector<int64_t>> ValueShapes(const FrozenModel& frozen,
                                              const std::vector<torch::jit::Value*>& values,
                                              const at::Tensor& input) {
  const auto observed = ProbeValues(frozen, values, {input}, [](auto& graph, auto* value) {
    return graph.insert(c10::aten::_shape_as_tensor, {value});
  });
  std::vector<std::vector<int64_t>> shapes;
  for (const auto& shape : observed.at(0)) {
    const auto flat = shape.to(at::kLong).contiguous();
    shapes.emplace_back(flat.data_ptr<int64_t>(), flat.data_ptr<int64_t>() + flat.numel());
  }
  return shapes;
}

}  // namespace slim::exporting
