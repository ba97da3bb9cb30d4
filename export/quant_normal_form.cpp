#include "export/quant_normal_form.h"

#include <torch/csrc/jit/ir/constants.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>

#include <cmath>

#include "runtime/base/errors.h"

namespace slim::exporting {

namespace {

using torch::jit::Graph;
using torch::jit::Node;
using torch::jit::Value;

// The int8 grid every integer kernel takes.
constexpr int64_t kInt8Min = -128;
constexpr int64_t kInt8Max = 127;
constexpr int64_t kUint8Max = 255;

std::string Where(const Node* node) {
  const auto layer = LayerOf(node);
  return layer.empty() ? "the model's forward" : "layer '" + layer + "'";
}

// A constant scalar or one-element tensor as a double.
double ScalarOf(const Value* value, const Node* user) {
  const auto constant = ConstantOf(value);
  if (!constant) {
    throw ModelError(Where(user) + ": a quantization parameter of " +
                     user->kind().toQualString() + " is not a constant");
  }
  if (constant->isTensor()) return constant->toTensor().item<double>();
  return constant->toScalar().toDouble();
}

bool IsConstant(const Value* value) { return value->node()->kind() == c10::prim::Constant; }

void RequireInt8Range(int64_t quant_min, int64_t quant_max, const Node* node) {
  if (quant_min < kInt8Min || quant_max > kInt8Max) {
    throw ModelError(Where(node) + " quantizes to [" + std::to_string(quant_min) + ", " +
                     std::to_string(quant_max) +
                     "], wider than 8 bits: integer kernels take 8-bit grids only");
  }
}

bool IsReLU(const Value* value) {
  const auto kind = value->node()->kind();
  return kind == c10::aten::relu || kind == c10::aten::relu_;
}

// An activation quantizer's grid as its fake-quantize op states it.
struct FakeQuantGrid {
  double scale;
  int64_t zero_point;
  int64_t quant_min;
  int64_t quant_max;
};

// The uint8 zero point that holds `grid`: 0 for an unsigned grid, 128 for a symmetric one.
// Throws for a zero point other than 0 (ours are 0 on either grid) and beyond 8 bits.
int64_t Uint8ZeroPoint(const FakeQuantGrid& grid, const Node* node) {
  if (grid.zero_point != 0) {
    throw ModelError(Where(node) + " quantizes an activation with zero point " +
                     std::to_string(grid.zero_point) +
                     "; the integer exports take the grids of SlimTrain's quantizers (zero "
                     "point 0, symmetric or unsigned): quantize the float model with QuantAware "
                     "or QuantPost");
  }
  if (grid.quant_min >= 0 && grid.quant_max <= kUint8Max) return 0;
  RequireInt8Range(grid.quant_min, grid.quant_max, node);
  return kActivationZeroPoint;
}

// dequantize(quantize_per_tensor(x, scale, zero point, quint8)) before `at`; clamps first
// when `grid` is narrower than the uint8 range holding it, so that values stay on it.
Value* NormalActivation(Graph& graph, Node* at, Value* x, const FakeQuantGrid& grid,
                        ReluZeroPoint relu_zero_point) {
  const int64_t grid_zero_point = Uint8ZeroPoint(grid, at);
  const double scale = grid.scale;
  const int64_t quant_min = grid.quant_min;
  const int64_t quant_max = grid.quant_max;
  const bool unsigned_grid = grid_zero_point == 0;
  torch::jit::WithInsertPoint here(at);
  const bool narrow = unsigned_grid ? quant_min > 0 || quant_max < kUint8Max
                                    : quant_min > -kInt8Max || quant_max < kInt8Max;
  if (narrow) x = graph.insert(c10::aten::clamp, {x, quant_min * scale, quant_max * scale});
  // A symmetric grid after a ReLU moves to zero point 0 for ONNX Runtime.
  const bool relu_zero =
      !unsigned_grid && relu_zero_point == ReluZeroPoint::kZero && !narrow && IsReLU(x);
  const int64_t zero_point = unsigned_grid || relu_zero ? 0 : kActivationZeroPoint;
  Value* quantized =
      graph.insert(c10::aten::quantize_per_tensor, {x, scale, zero_point, c10::ScalarType::QUInt8});
  // Zero point 0 reaches 255 s: the integers are clipped to the grid's quant_max.
  if (relu_zero) quantized = graph.insert(c10::aten::clamp, {quantized, 0.0, quant_max * scale});
  return graph.insert(c10::aten::dequantize, {quantized});
}

Value* NormalWeight(Graph& graph, Node* at, const at::Tensor& quantized) {
  torch::jit::WithInsertPoint here(at);
  Value* constant = graph.insertConstant(quantized);
  return graph.insert(c10::aten::dequantize, {constant});
}

// The grid of an activation quantizer in quantize/dequantize form, `quantize` its
// quantize_per_tensor: the clamp our quantizers put first bounds it (scale * quant_min/max),
// else int8's range does. Its input goes to `input`.
FakeQuantGrid GridOfClamp(const Node* quantize, Value** input) {
  FakeQuantGrid grid{ScalarOf(quantize->input(1), quantize),
                     std::lround(ScalarOf(quantize->input(2), quantize)), -kInt8Max, kInt8Max};
  const Node* clamp = quantize->input(0)->node();
  if (clamp->kind() != c10::aten::clamp || !ConstantOf(clamp->input(1)) ||
      !ConstantOf(clamp->input(2))) {
    *input = quantize->input(0);
    return grid;
  }
  *input = clamp->input(0);
  grid.quant_min = std::lround(ScalarOf(clamp->input(1), clamp) / grid.scale);
  grid.quant_max = std::lround(ScalarOf(clamp->input(2), clamp) / grid.scale);
  return grid;
}

// Rewrites one quantization op into the normal form; true when it did.
bool Normalise(Graph& graph, Node* node, ReluZeroPoint relu_zero_point, QuantPoints& points) {
  const auto kind = node->kind();
  if (kind == c10::aten::fake_quantize_per_tensor_affine) {
    const double scale = ScalarOf(node->input(1), node);
    const int64_t zero_point = std::lround(ScalarOf(node->input(2), node));
    const int64_t quant_min = std::lround(ScalarOf(node->input(3), node));
    const int64_t quant_max = std::lround(ScalarOf(node->input(4), node));
    if (IsConstant(node->input(0))) {
      RequireInt8Range(quant_min, quant_max, node);
      const auto weight = ConstantOf(node->input(0))->toTensor();
      node->output()->replaceAllUsesWith(
          NormalWeight(graph, node, at::quantize_per_tensor(weight, scale, zero_point, at::kQInt8)));
      ++points.weights;
    } else {
      node->output()->replaceAllUsesWith(NormalActivation(
          graph, node, node->input(0), {scale, zero_point, quant_min, quant_max}, relu_zero_point));
      ++points.activations;
    }
    return true;
  }
  if (kind == c10::aten::fake_quantize_per_channel_affine) {
    if (!IsConstant(node->input(0))) {
      throw ModelError(Where(node) + ": per-channel quantization of an activation has no integer kernel");
    }
    RequireInt8Range(std::lround(ScalarOf(node->input(4), node)),
                     std::lround(ScalarOf(node->input(5), node)), node);
    const auto weight = ConstantOf(node->input(0))->toTensor();
    const auto scales = ConstantOf(node->input(1))->toTensor().to(at::kDouble);
    const auto zero_points = ConstantOf(node->input(2))->toTensor().to(at::kLong);
    const int64_t axis = ConstantOf(node->input(3))->toInt();
    node->output()->replaceAllUsesWith(NormalWeight(
        graph, node, at::quantize_per_channel(weight, scales, zero_points, axis, at::kQInt8)));
    ++points.weights;
    return true;
  }
  if (kind != c10::aten::dequantize) return false;
  Node* producer = node->input()->node();
  if (producer->kind() == c10::aten::quantize_per_channel && IsConstant(producer->input(0))) {
    const auto quantized = at::quantize_per_channel(
        ConstantOf(producer->input(0))->toTensor(),
        ConstantOf(producer->input(1))->toTensor().to(at::kDouble),
        ConstantOf(producer->input(2))->toTensor().to(at::kLong),
        ConstantOf(producer->input(3))->toInt(), at::kQInt8);
    node->output()->replaceAllUsesWith(NormalWeight(graph, node, quantized));
    ++points.weights;
    return true;
  }
  if (producer->kind() != c10::aten::quantize_per_tensor) return false;
  const double scale = ScalarOf(producer->input(1), producer);
  if (IsConstant(producer->input(0))) {
    const auto quantized = at::quantize_per_tensor(
        ConstantOf(producer->input(0))->toTensor(), scale,
        std::lround(ScalarOf(producer->input(2), producer)), at::kQInt8);
    node->output()->replaceAllUsesWith(NormalWeight(graph, node, quantized));
    ++points.weights;
    return true;
  }
  double existing_scale = 0;
  int64_t existing_zero_point = 0;
  if (IsActivationQuantize(producer->output(), &existing_scale, &existing_zero_point)) {
    return false;  // scalar parameters: already normal
  }
  Value* input = nullptr;
  const auto grid = GridOfClamp(producer, &input);
  node->output()->replaceAllUsesWith(NormalActivation(graph, node, input, grid, relu_zero_point));
  ++points.activations;
  return true;
}

// The BatchNorm after a quantized convolution, folded into its weight scales and bias.
void FoldBatchNormIntoQuantizedConv(Graph& graph, Node* batch_norm) {
  Node* conv = batch_norm->input(0)->node();
  if (conv->kind() != c10::aten::conv2d || conv->output()->uses().size() != 1) return;
  const auto weight = QuantizedWeightOf(conv->input(1));
  if (!weight) return;
  for (size_t i = 1; i <= 7; ++i) {
    if (!ConstantOf(batch_norm->input(i))) return;
  }
  if (ConstantOf(batch_norm->input(5))->toBool()) return;  // training
  const auto out_channels = weight->size(0);
  const auto tensor_or = [&](size_t index, double fallback) {
    const auto value = *ConstantOf(batch_norm->input(index));
    return value.isNone() ? at::full({out_channels}, fallback, at::kDouble)
                          : value.toTensor().to(at::kDouble);
  };
  const auto gamma = tensor_or(1, 1.0);
  const auto beta = tensor_or(2, 0.0);
  const auto mean = tensor_or(3, 0.0);
  const auto var = tensor_or(4, 1.0);
  const double eps = ConstantOf(batch_norm->input(7))->toDouble();
  const auto factor = gamma / at::sqrt(var + eps);
  const auto scales = weight->qscheme() == at::kPerChannelAffine
                          ? weight->q_per_channel_scales().to(at::kDouble)
                          : at::full({out_channels}, weight->q_scale(), at::kDouble);
  const auto sign_shape = std::vector<int64_t>{out_channels, 1, 1, 1};
  const auto sign = at::where(factor < 0, -1, 1).to(at::kChar).reshape(sign_shape);
  const auto integers = weight->int_repr() * sign;
  const auto folded_scales = at::where(factor == 0, scales, scales * factor.abs());
  const auto folded = at::_make_per_channel_quantized_tensor(
      at::where(factor.reshape(sign_shape) == 0, at::zeros_like(integers), integers),
      folded_scales, at::zeros({out_channels}, at::kLong), 0);
  const auto bias_value = *ConstantOf(conv->input(2));
  const auto bias = bias_value.isNone() ? at::zeros({out_channels}, at::kDouble)
                                        : bias_value.toTensor().to(at::kDouble);
  const auto folded_bias = ((bias - mean) * factor + beta).to(at::kFloat);
  torch::jit::WithInsertPoint here(conv);
  conv->replaceInput(1, NormalWeight(graph, conv, folded));
  conv->replaceInput(2, graph.insertConstant(folded_bias));
  batch_norm->output()->replaceAllUsesWith(conv->output());
}

}  // namespace

bool IsActivationQuantize(const Value* value, double* scale, int64_t* zero_point) {
  const Node* node = value->node();
  if (node->kind() != c10::aten::quantize_per_tensor) return false;
  const auto scale_value = ConstantOf(node->input(1));
  const auto zero_value = ConstantOf(node->input(2));
  if (!scale_value || !zero_value || !scale_value->isDouble() || !zero_value->isInt()) return false;
  *scale = scale_value->toDouble();
  *zero_point = zero_value->toInt();
  return true;
}

c10::optional<at::Tensor> QuantizedWeightOf(const Value* value) {
  const Node* node = value->node();
  if (node->kind() != c10::aten::dequantize) return c10::nullopt;
  const auto constant = ConstantOf(node->input());
  if (!constant || !constant->isTensor() || !constant->toTensor().is_quantized()) return c10::nullopt;
  return constant->toTensor();
}

const Value* ActivationQuantizeBehind(const Value* value) {
  const Node* node = value->node();
  double scale = 0;
  int64_t zero_point = 0;
  if (node->kind() == c10::aten::clamp &&
      IsActivationQuantize(node->input(0), &scale, &zero_point)) {
    return node->input(0);
  }
  return value;
}

bool IsDequantizedActivation(const Value* value) {
  if (value->node()->kind() != c10::aten::dequantize) return false;
  double scale = 0;
  int64_t zero_point = 0;
  return IsActivationQuantize(ActivationQuantizeBehind(value->node()->input()), &scale,
                              &zero_point);
}

bool IsQuantizedWeightLayer(const Node* node) {
  const auto kind = node->kind();
  return (kind == c10::aten::conv2d || kind == c10::aten::linear) &&
         IsDequantizedActivation(node->input(0)) && QuantizedWeightOf(node->input(1));
}

// Rows a:b of a quantized weight (the q, k or v slice of nn.MultiheadAttention's packed
// in-projection) as a quantized weight of its own: dequantize(weight)[a:b] becomes
// dequantize(weight[a:b]), per-channel scales sliced alike.
void SliceQuantizedWeight(Graph& graph, Node* slice) {
  const auto weight = QuantizedWeightOf(slice->input(0));
  if (!weight) return;
  std::vector<int64_t> arguments;
  for (size_t i = 1; i < slice->inputs().size(); ++i) {
    const auto constant = ConstantOf(slice->input(i));
    if (!constant || !constant->isInt()) return;
    arguments.push_back(constant->toInt());
  }
  if (arguments.size() != 4 || arguments[0] != 0 || arguments[3] != 1) return;
  const auto rows = weight->slice(0, arguments[1], arguments[2]).contiguous();
  slice->output()->replaceAllUsesWith(NormalWeight(graph, slice, rows));
}

FrozenModel ExportForm(const torch::jit::Module& model, QuantPoints* points,
                       ReluZeroPoint relu_zero_point) {
  auto frozen = FreezeForExport(model);
  QuantPoints found;
  auto& graph = *frozen.graph;
  for (Node* node : AllNodes(graph)) Normalise(graph, node, relu_zero_point, found);
  for (Node* node : AllNodes(graph)) {
    if (node->kind() == c10::aten::slice) SliceQuantizedWeight(graph, node);
  }
  torch::jit::EliminateDeadCode(frozen.graph);
  for (Node* node : AllNodes(graph)) {
    if (node->kind() == c10::aten::batch_norm) FoldBatchNormIntoQuantizedConv(graph, node);
  }
  FoldConstants(frozen);
  if (points != nullptr) *points = found;
  return frozen;
}

}  // namespace slim::exporting
