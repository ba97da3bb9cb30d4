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

std::vector<std::vector<std::vector<at::Tensor>>> ProbeValues(
    const FrozenModel& frozen, const std::vector<torch::jit::Value*>& values,
    const std::vector<at::Tensor>& inputs,
    const std::function<torch::jit::Value*(torch::jit::Graph&, torch::jit::Value*)>& observe) {
  // A copy that returns the observations: one list per value, made empty on entry and
  // appended to wherever the value is made, so that values in nested blocks are seen.
  auto probe_graph = frozen.graph->copy();
  {
    const auto tensor_list = c10::ListType::ofTensors();
    std::vector<torch::jit::Value*> counterparts;
    for (auto* value : values) counterparts.push_back(Counterpart(*frozen.graph, *probe_graph, value));
    std::vector<torch::jit::Value*> lists;
    auto* first_node = probe_graph->block()->nodes().front();
    {
      torch::jit::WithInsertPoint at_start(first_node);
      for (size_t k = 0; k < values.size(); ++k) {
        lists.push_back(
            probe_graph->insertNode(probe_graph->createList(c10::TensorType::get(), {}))->output());
      }
    }
    for (size_t k = 0; k < counterparts.size(); ++k) {
      // Each observation right where its value is made (a graph input: before the first
      // node): later in-place ops may change it.
      auto* producer = counterparts[k]->node();
      torch::jit::WithInsertPoint after(producer->kind() == c10::prim::Param ? first_node
                                                                              : producer->next());
      probe_graph->insert(c10::aten::append, {lists[k], observe(*probe_graph, counterparts[k])});
    }
    torch::jit::WithInsertPoint at_end(probe_graph->return_node());
    auto* all = probe_graph->insertNode(probe_graph->createList(tensor_list, lists));
    probe_graph->eraseOutput(0);
    probe_graph->registerOutput(all->output());
  }
  torch::jit::EliminateDeadCode(probe_graph);

  torch::jit::GraphFunction probe("probe", probe_graph, nullptr);
  std::vector<std::vector<std::vector<at::Tensor>>> observed;
  torch::NoGradGuard no_grad;
  for (const auto& input : inputs) {
    torch::jit::Stack stack{frozen.module._ivalue(), input};
    probe.run(stack);
    std::vector<std::vector<at::Tensor>> per_value;
    for (const auto& list : stack.back().toListRef()) per_value.push_back(list.toTensorVector());
    observed.push_back(std::move(per_value));
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
      for (const auto& low_high : row[k]) {
        ranges[k].first = std::min(ranges[k].first, low_high[0].item<double>());
        ranges[k].second = std::max(ranges[k].second, low_high[1].item<double>());
      }
    }
  }
  return ranges;
}

std::vector<int64_t> ShapeFromTensor(const at::Tensor& shape) {
  const auto flat = shape.to(at::kLong).contiguous();
  return {flat.data_ptr<int64_t>(), flat.data_ptr<int64_t>() + flat.numel()};
}

std::vector<std::vector<std::vector<int64_t>>> ValueShapes(
    const FrozenModel& frozen, const std::vector<torch::jit::Value*>& values,
    const at::Tensor& input) {
  const auto observed = ProbeValues(frozen, values, {input}, [](auto& graph, auto* value) {
    return graph.insert(c10::aten::_shape_as_tensor, {value});
  });
  std::vector<std::vector<std::vector<int64_t>>> shapes;
  for (const auto& runs : observed.at(0)) {
    shapes.emplace_back();
    for (const auto& shape : runs) shapes.back().push_back(ShapeFromTensor(shape));
  }
  return shapes;
}

}  // namespace slim::exporting
