#include "export/int8_lowering.h"

#include <ATen/Context.h>
#include <ATen/Functions.h>
#include <torch/csrc/jit/passes/constant_propagation.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>
#include <torch/csrc/jit/passes/quantization/finalize.h>
#include <torch/csrc/jit/passes/quantization/insert_quant_dequant.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <utility>

#include "export/quant_normal_form.h"
#include "export/value_probe.h"

namespace slim::exporting {

namespace {

using torch::jit::Node;
using torch::jit::Value;

struct Grid {
  double scale = 0;
  int64_t zero_point = 0;
};

// A layer output that gets a grid; `grid` unset (scale 0) until calibrated.
struct OutputPoint {
  Value* value;
  Grid grid;
  bool model_output;  // the model returns it
};

bool IsReLU(const Node* node) {
  return node->kind() == c10::aten::relu || node->kind() == c10::aten::relu_;
}

bool LeavesTheModel(const Value* value) {
  return std::any_of(value->uses().begin(), value->uses().end(), [](const torch::jit::Use& use) {
    return use.user->kind() == c10::prim::Return;
  });
}

// The output of `node` that gets a grid: after the ReLU the kernels fuse.
Value* FusedOutput(Node* node) {
  Value* output = node->output();
  while (output->uses().size() == 1 && IsReLU(output->uses()[0].user)) {
    output = output->uses()[0].user->output();
  }
  return output;
}

// A clamp to constant bounds: ReLU6, hardtanh, clamp.
bool IsClamp(const Node* node) {
  const auto kind = node->kind();
  return kind == c10::aten::hardtanh || kind == c10::aten::relu6 || kind == c10::aten::clamp;
}

// An op that picks or moves values without computing new ones (max pooling, flattening):
// it gives the same result before or after rounding onto a grid, and runs on quantized
// tensors keeping their grid.
bool MovesValues(const Node* node) {
  const auto kind = node->kind();
  return kind == c10::aten::max_pool2d || kind == c10::aten::flatten;
}

// The grid `value` lies on: the activation quantize that made it, seen through ops that
// only move values; nullopt when it is on none.
c10::optional<Grid> GridOf(const Value* value) {
  Grid grid;
  if (IsActivationQuantize(ActivationQuantizeBehind(value), &grid.scale, &grid.zero_point)) {
    return grid;
  }
  if (MovesValues(value->node())) return GridOf(value->node()->input(0));
  return c10::nullopt;
}

// The grid of the activation quantizer that `output` feeds, directly or through a clamp:
// a clamp commutes with the quantizer's own clip (both ranges hold 0), so rounding onto the
// grid before the clamp gives the values the fake-quant model computes.
Grid TakenGrid(const Value* output) {
  for (const auto& use : output->uses()) {
    Grid grid;
    if (use.user->outputs().size() != 1) continue;
    if (IsActivationQuantize(use.user->output(), &grid.scale, &grid.zero_point)) return grid;
  }
  if (output->uses().size() == 1 &&
      (IsClamp(output->uses()[0].user) || MovesValues(output->uses()[0].user))) {
    return TakenGrid(output->uses()[0].user->output());
  }
  return {};
}

constexpr double kSmallestScale = 1e-8;

Grid CalibratedGrid(double low, double high) {
  if (low >= 0) return {std::max(high / 255.0, kSmallestScale), 0};
  return {std::max(std::max(-low, high) / 127.0, kSmallestScale), 128};
}

// [low, high] widened to hold 0 on 256 levels, the finest grid for values of either sign
// (what torch.ao.quantization's MinMaxObserver gives).
Grid AffineGrid(double low, double high) {
  low = std::min(low, 0.0);
  high = std::max(high, 0.0);
  const double scale = std::max((high - low) / 255.0, kSmallestScale);
  return {scale, std::clamp<int64_t>(std::lround(-low / scale), 0, 255)};
}

// True when `value` lies on an activation grid: dequantized from one, or an output in
// `given` (whose grids are inserted later), seen through ops that only move values.
bool OnActivationGrid(const Value* value, const std::set<const Value*>& given) {
  if (IsDequantizedActivation(value) || given.count(value) > 0) return true;
  return MovesValues(value->node()) && OnActivationGrid(value->node()->input(0), given);
}

// A convolution or linear layer with a quantized weight whose input lies on a grid,
// directly or through a flatten or max pool (a classifier after a quantized flatten).
bool IsQuantizedLayer(const Node* node, const std::set<const Value*>& given) {
  const auto kind = node->kind();
  return (kind == c10::aten::conv2d || kind == c10::aten::linear) &&
         OnActivationGrid(node->input(0), given) && QuantizedWeightOf(node->input(1));
}

std::vector<OutputPoint> FindOutputPoints(torch::jit::Graph& graph, ModelOutput model_output) {
  std::vector<OutputPoint> points;
  std::set<const Value*> quantized;
  for (Node* node : AllNodes(graph)) {
    const auto kind = node->kind();
    const bool add = (kind == c10::aten::add || kind == c10::aten::add_) &&
                     node->inputs().size() == 3 && OnActivationGrid(node->input(0), quantized) &&
                     OnActivationGrid(node->input(1), quantized);
    if (!add && !IsQuantizedLayer(node, quantized)) continue;
    Value* output = FusedOutput(node);
    const bool returned = LeavesTheModel(output);
    if (returned && model_output == ModelOutput::kFloat) continue;
    points.push_back({output, TakenGrid(output), returned});
    quantized.insert(output);
  }
  return points;
}

void InsertGrid(torch::jit::Graph& graph, Value* value, const Grid& grid) {
  torch::jit::WithInsertPoint after(value->node()->next());
  Value* quantized = graph.insert(c10::aten::quantize_per_tensor,
                                  {value, grid.scale, grid.zero_point, c10::ScalarType::QUInt8});
  Value* dequantized = graph.insert(c10::aten::dequantize, {quantized});
  value->replaceAllUsesWith(dequantized);
  quantized->node()->replaceInput(0, value);
}

// True when `value` lies on `grid`, seen through ops that only move values.
bool OnGrid(const Value* value, const Grid& grid) {
  const auto source = GridOf(value);
  return source && source->zero_point == grid.zero_point &&
         std::abs(source->scale - grid.scale) <= 1e-9 * grid.scale;
}

// The grid a node in normal form quantizes an activation onto, or nullopt.
c10::optional<Grid> QuantizesOnto(const Node* node) {
  Grid grid;
  if (node->outputs().size() != 1 ||
      !IsActivationQuantize(node->output(), &grid.scale, &grid.zero_point)) {
    return c10::nullopt;
  }
  return grid;
}

// quantize(dequantize(q)) onto the grid q is already on is q.
void DropIdentityRequantization(torch::jit::Graph& graph) {
  for (Node* node : AllNodes(graph)) {
    const auto grid = QuantizesOnto(node);
    if (!grid) continue;
    Value* input = node->input(0);
    if (input->node()->kind() != c10::aten::dequantize || !OnGrid(input->node()->input(), *grid)) {
      continue;
    }
    node->output()->replaceAllUsesWith(input->node()->input());
  }
}

// quantize(clamp(dequantize(q))) onto q's own grid is the clamp run on q (which rounds
// its bounds onto that grid): the same integers, since rounding is monotonic. ReLU6 and
// hardtanh between two kernels then run on the integers, not in float between a
// dequantize and a quantize.
void ClampOnIntegers(torch::jit::Graph& graph) {
  for (Node* node : AllNodes(graph)) {
    const auto grid = QuantizesOnto(node);
    if (!grid) continue;
    Node* clamp = node->input(0)->node();
    if (!IsClamp(clamp) || clamp->input(0)->node()->kind() != c10::aten::dequantize) continue;
    Value* quantized = clamp->input(0)->node()->input();
    if (!OnGrid(quantized, *grid)) continue;
    Node* on_integers = graph.create(clamp->kind(), clamp->inputs());
    on_integers->insertBefore(node);
    on_integers->replaceInput(0, quantized);
    on_integers->output()->setType(quantized->type());
    node->output()->replaceAllUsesWith(on_integers->output());
  }
}

// op(dequantize(q)) -> dequantize(op(q)) for ops that only move values, so that they run
// on the integers and the dequantize moves on to where the next kernel can take it.
void MoveDequantizeAfterValueMoves(torch::jit::Graph& graph) {
  for (Node* node : AllNodes(graph)) {
    if (!MovesValues(node) || node->input(0)->node()->kind() != c10::aten::dequantize) continue;
    Value* quantized = node->input(0)->node()->input(0);
    if (!GridOf(quantized)) continue;
    node->replaceInput(0, quantized);
    torch::jit::WithInsertPoint after(node->next());
    Value* dequantized = graph.insert(c10::aten::dequantize, {node->output()});
    node->output()->replaceAllUsesWith(dequantized);
    dequantized->node()->replaceInput(0, node->output());
  }
}

// The float tensor `weight` holds when it is a constant or the dequantized value of one;
// nullopt otherwise.
c10::optional<at::Tensor> ConstantWeight(const Value* weight) {
  if (auto constant = torch::jit::toIValue(weight)) {
    return constant->isTensor() ? c10::optional<at::Tensor>(constant->toTensor()) : c10::nullopt;
  }
  if (weight->node()->kind() != c10::aten::dequantize) return c10::nullopt;
  const auto quantized = torch::jit::toIValue(weight->node()->input());
  if (!quantized || !quantized->isTensor()) return c10::nullopt;
  return quantized->toTensor().dequantize();
}

// The input oneDNN multiplies for a float linear layer on `x`, and the scale its weight
// takes (nullptr: none). dequantize(q), as PyTorch computes it without fbgemm, is a scalar
// loop (0.14 ms for 64 x 2048 values); int_repr(q) - zero_point, the same integers exactly
// in float, is a copy and two vector passes (0.04 ms), and the scale moves onto the weight.
// Any other input goes as it is.
std::pair<Value*, Value*> OneDnnLinearInput(torch::jit::Graph& graph, Value* x) {
  if (x->node()->kind() != c10::aten::dequantize) return {x, nullptr};
  Value* quantized = x->node()->input(0);
  const auto op = [](const char* name) { return c10::Symbol::fromQualString(name); };
  Value* integers = graph.insert(
      c10::aten::to, {graph.insert(op("aten::int_repr"), {quantized}), c10::ScalarType::Float});
  Value* centred =
      graph.insert(c10::aten::sub, {integers, graph.insert(op("aten::q_zero_point"), {quantized})});
  return {centred, graph.insert(op("aten::q_scale"), {quantized})};
}

// The tensor whose values `x` holds, before a dequantize (which then runs only where the
// float values are needed); `x` itself otherwise.
Value* ValuesOf(Value* x) {
  return x->node()->kind() == c10::aten::dequantize ? x->node()->input(0) : x;
}

// Float linear layers with constant weights (the classifier, unless its logits are quantized)
// run on oneDNN, the library the integer kernels use, instead of the system BLAS, from
// kOneDnnRows rows of input on: Debian's reference BLAS takes 0.75 ms for a 64 x 2048 by
// 2048 x 10 product that oneDNN computes in 0.1 ms, conversions included, while for one
// row the conversions cost more (0.04 ms against 0.013 ms). So linear(x, w, b) becomes
//   if numel(x) >= kOneDnnRows * in_features:
//       input, scale = OneDnnLinearInput(x)
//       to_dense(mkldnn_linear(to_mkldnn(input), to_mkldnn(w * scale), to_mkldnn(b)))
//   else: linear(x, w, b)
// where a dequantize that makes x moves into the else branch.
// The weight stays a dense constant (a oneDNN tensor cannot be saved) and is converted at
// run time, a copy the size of the weight against a product at least kOneDnnRows times
// larger. Without oneDNN in the build the layers stay as they are.
constexpr int64_t kOneDnnRows = 4;

void RunFloatLinearsOnOneDnn(torch::jit::Graph& graph) {
  if (!at::hasMKLDNN()) return;
  for (Node* node : AllNodes(graph)) {
    if (node->kind() != c10::aten::linear) continue;
    const auto weight = ConstantWeight(node->input(1));
    if (!weight || weight->scalar_type() != at::kFloat || weight->dim() != 2) continue;
    torch::jit::WithInsertPoint before(node);
    Value* x = node->input(0);
    Value* dense_weight = graph.insertConstant(*weight);
    Value* bias = node->input(2);
    const auto numel = c10::Symbol::fromQualString("aten::numel");
    Value* large = graph.insert(
        c10::aten::ge,
        {graph.insert(numel, {ValuesOf(x)}), graph.insertConstant(kOneDnnRows * weight->size(1))});
    Node* branch = graph.insertNode(graph.create(c10::prim::If, {large}, 1));
    branch->output()->setType(node->output()->type());
    torch::jit::Block* onednn = branch->addBlock();
    torch::jit::Block* blas = branch->addBlock();
    {
      torch::jit::WithInsertPoint inside(onednn);
      auto to_onednn = [&](Value* value) { return graph.insert(c10::aten::to_mkldnn, {value}); };
      const bool has_bias = bias->type()->kind() != c10::TypeKind::NoneType;
      const auto [input, scale] = OneDnnLinearInput(graph, x);
      Value* scaled_weight =
          scale ? graph.insert(c10::aten::mul, {dense_weight, scale}) : dense_weight;
      Value* product = graph.insert(
          c10::aten::mkldnn_linear,
          {to_onednn(input), to_onednn(scaled_weight), has_bias ? to_onednn(bias) : bias});
      onednn->registerOutput(graph.insert(c10::aten::to_dense, {product}));
    }
    {
      torch::jit::WithInsertPoint inside(blas);
      Value* values = ValuesOf(x);
      Value* floats = values == x ? x : graph.insert(c10::aten::dequantize, {values});
      blas->registerOutput(graph.insert(c10::aten::linear, {floats, dense_weight, bias}));
    }
    node->output()->replaceAllUsesWith(branch->output());
    node->destroy();
  }
}

}  // namespace

OutputGrids QuantizeLayerOutputs(FrozenModel& frozen, const std::vector<at::Tensor>& calibration,
                                 ModelOutput model_output) {
  auto& graph = *frozen.graph;
  auto points = FindOutputPoints(graph, model_output);
  std::vector<Value*> to_calibrate;
  for (const auto& point : points) {
    if (point.grid.scale == 0) to_calibrate.push_back(point.value);
  }
  OutputGrids counts;
  if (!to_calibrate.empty()) {
    const auto ranges = ValueRanges(frozen, to_calibrate, calibration);
    size_t next = 0;
    for (auto& point : points) {
      if (point.grid.scale != 0) continue;
      const auto [low, high] = ranges[next];
      point.grid = point.model_output ? AffineGrid(low, high) : CalibratedGrid(low, high);
      ++next;
    }
  }
  for (const auto& point : points) {
    InsertGrid(graph, point.value, point.grid);
  }
  counts.calibrated = static_cast<int64_t>(to_calibrate.size());
  counts.taken = static_cast<int64_t>(points.size()) - counts.calibrated;
  counts.model_outputs = std::count_if(points.begin(), points.end(),
                                       [](const OutputPoint& point) { return point.model_output; });
  DropIdentityRequantization(graph);
  torch::jit::EliminateDeadCode(frozen.graph);
  return counts;
}

std::vector<std::string> ReturnedLayers(const torch::jit::Graph& graph) {
  std::vector<std::string> layers;
  for (Node* node : AllNodes(graph)) {
    if ((node->kind() == c10::aten::conv2d || node->kind() == c10::aten::linear) &&
        LeavesTheModel(FusedOutput(node))) {
      layers.push_back(LayerOf(node));
    }
  }
  return layers;
}

IntegerKernels LowerToIntegerKernels(FrozenModel& frozen) {
  SelectQuantizedEngine();
  auto& graph = frozen.graph;
  IntegerKernels kernels;
  // Named before the rewrites below, which make new nodes without the call stack.
  for (Node* node : AllNodes(*graph)) {
    if (IsQuantizedLayer(node, {}) && TakenGrid(FusedOutput(node)).scale == 0) {
      kernels.float_layers.push_back(LayerOf(node));
    }
  }
  MoveDequantizeAfterValueMoves(*graph);
  ClampOnIntegers(*graph);
  DropIdentityRequantization(*graph);
  torch::jit::EliminateDeadCode(graph);
  torch::jit::ReplicateDeQuant(graph);
  torch::jit::InsertPrepackUnpack(graph);
  torch::jit::QuantFusion(graph);
  torch::jit::ConstantPropagation(graph);
  RunFloatLinearsOnOneDnn(*graph);
  torch::jit::EliminateDeadCode(graph);
  for (Node* node : AllNodes(*graph)) {
    const std::string kind = node->kind().toQualString();
    if (kind.rfind("quantized::", 0) == 0 && kind.find("prepack") == std::string::npos &&
        kind.find("unpack") == std::string::npos) {
      ++kernels.integer_ops;
    }
  }
  return kernels;
}

std::string SelectQuantizedEngine() {
  auto& context = at::globalContext();
  const auto supported = context.supportedQEngines();
  for (const auto engine : {at::QEngine::X86, at::QEngine::FBGEMM, at::QEngine::ONEDNN,
                            at::QEngine::QNNPACK}) {
    if (std::find(supported.begin(), supported.end(), engine) == supported.end()) continue;
    if (context.qEngine() != engine) context.setQEngine(engine);
    std::string name = c10::toString(engine);
    std::transform(name.begin(), name.end(), name.begin(), ::tolower);
    return name;
  }
  return "none";
}

}  // namespace slim::exporting
