// The normal form of a quantized frozen graph that the exports read: every quantization
// point is an explicit pair
//   activation: aten::dequantize(aten::quantize_per_tensor(x, scale, zero point, quint8))
//   weight:     aten::dequantize(<constant qint8 tensor, per channel on axis 0 or per tensor>)
// with plain float/int constants, whatever form the model came in (ATen fake-quantize ops
// or quantize/dequantize pairs with tensor parameters, see strategies/quant). An
// activation grid of scale s, zero point 128 in uint8 holds the symmetric int8 grid
// [-127 s, 127 s] of the fake-quant model exactly, plus -128 s; the unsigned grid
// [0, 255 s] (strategies/quant's ActivationGrid) is zero point 0. For ONNX the zero point
// after a ReLU is 0 on the symmetric grid too (ONNX Runtime fuses Conv + ReLU into an
// integer kernel only then), and the integers are clamped to the grid's clip:
//   dequantize(clamp(quantize_per_tensor(relu(x), s, 0, quint8), 0, 127 s))
// holds the fake-quant grid [0, 127 s] exactly. A BatchNorm after a quantized convolution
// is folded into its per-channel weight scales and bias: the integer weights stay as they
// were.
#pragma once

#include "export/frozen_graph.h"

namespace slim::exporting {

// The zero point of activations on the symmetric grid in the normal form.
constexpr int64_t kActivationZeroPoint = 128;

// What the normal form found.
struct QuantPoints {
  int64_t activations = 0;  // activation quantize/dequantize pairs
  int64_t weights = 0;      // quantized constant weights
};

// The zero point of activations after a ReLU.
enum class ReluZeroPoint {
  kSymmetric,  // the zero point of the grid (128 symmetric, 0 unsigned): exactly it
  kZero,       // 0: what ONNX Runtime fuses with the ReLU
};

// `model` frozen for export (frozen_graph.h) with its graph in the normal form and its
// constants folded; what it found goes to `points` when given. Throws ModelError naming
// the layer when a quantizer's grid is wider than 8 bits (no integer kernel takes it) or
// an activation's zero point is not 0.
FrozenModel ExportForm(const torch::jit::Module& model, QuantPoints* points = nullptr,
                       ReluZeroPoint relu_zero_point = ReluZeroPoint::kSymmetric);

// True when `value` is the output of an activation quantize in normal form; its scale and
// zero point then go to `scale` and `zero_point`.
bool IsActivationQuantize(const torch::jit::Value* value, double* scale, int64_t* zero_point);

// The constant quantized weight behind `value` = aten::dequantize(constant), or nullopt.
c10::optional<at::Tensor> QuantizedWeightOf(const torch::jit::Value* value);

// The activation quantize whose integers `value` clamps (the ONNX form after a ReLU), or
// `value` itself.
const torch::jit::Value* ActivationQuantizeBehind(const torch::jit::Value* value);

// True when `value` is dequantize(an activation quantize in normal form).
bool IsDequantizedActivation(const torch::jit::Value* value);

// True for a convolution or linear layer whose input and weight are both quantized.
bool IsQuantizedWeightLayer(const torch::jit::Node* node);

}  // namespace slim::exporting
