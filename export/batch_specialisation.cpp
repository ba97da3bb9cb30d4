#include "export/batch_specialisation.h"

#include <torch/csrc/jit/ir/constants.h>
#include <torch/csrc/jit/passes/constant_propagation.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>

#include <unordered_map>

#include "export/value_probe.h"

namespace slim::exporting {

namespace {

using torch::jit::Node;
using torch::jit::Value;

bool IsShapeRead(c10::Symbol kind) {
  return kind == c10::aten::size || kind == c10::aten::dim || kind == c10::aten::len;
}

// Int operations whose result is a shape-derived int when their operands are.
bool IsIntArithmetic(c10::Symbol kind) {
  return kind == c10::aten::mul || kind == c10::aten::add || kind == c10::aten::sub ||
         kind == c10::aten::floordiv || kind == c10::aten::__getitem__ ||
         kind == c10::prim::ListUnpack || kind == c10::aten::neg;
}

// Whether `value` (an int or a list of ints) is computed from tensor shapes and constants
// alone; memoised in `known`.
bool IsShapeDerived(const Value* value, std::unordered_map<const Value*, bool>& known) {
  const auto found = known.find(value);
  if (found != known.end()) return found->second;
  const Node* node = value->node();
  bool derived = false;
  if (IsShapeRead(node->kind())) {
    derived = true;
  } else if (IsIntArithmetic(node->kind())) {
    derived = true;
    for (const auto* input : node->inputs()) {
      if (!torch::jit::toIValue(input) && !IsShapeDerived(input, known)) derived = false;
    }
  }
  return known[value] = derived;
}

// The shape-derived ints of `graph` that are not constants yet.
std::vector<Value*> ShapeDerivedInts(const torch::jit::Graph& graph) {
  std::unordered_map<const Value*, bool> known;
  std::vector<Value*> ints;
  for (Node* node : AllNodes(graph)) {
    for (Value* output : node->outputs()) {
      if (output->type()->kind() == c10::TypeKind::IntType && IsShapeDerived(output, known)) {
        ints.push_back(output);
      }
    }
  }
  return ints;
}

at::Tensor Batch(const at::Tensor& example, int64_t size) {
  return at::cat(std::vector<at::Tensor>(size, example));
}

}  // namespace

void SpecialiseToInputExtents(FrozenModel& frozen, const at::Tensor& example) {
  const auto ints = ShapeDerivedInts(*frozen.graph);
  if (ints.empty()) return;
  // Batch sizes 2 and 3: neither is the 1 that squeezing code may treat apart.
  const auto observed = ProbeValues(
      frozen, ints, {Batch(example, 2), Batch(example, 3)},
      [](auto& graph, auto* value) { return graph.insert(c10::aten::tensor, {value}); });
  for (size_t k = 0; k < ints.size(); ++k) {
    const auto& two = observed[0][k];
    const auto& three = observed[1][k];
    if (two.empty() || two.size() != three.size()) continue;
    bool fixed = true;
    for (size_t r = 0; r < two.size(); ++r) {
      fixed = fixed && two[r].item<int64_t>() == three[r].item<int64_t>() &&
              two[r].item<int64_t>() == two[0].item<int64_t>();
    }
    if (!fixed) continue;
    torch::jit::WithInsertPoint here(ints[k]->node());
    ints[k]->replaceAllUsesWith(frozen.graph->insertConstant(two[0].item<int64_t>()));
  }
  // Folds the comparisons and branches the constants decide; tensors stay untouched.
  torch::jit::ConstantPropagationImmutableTypes(frozen.graph);
  torch::jit::EliminateDeadCode(frozen.graph);
}

}  // namespace slim::exporting
