// ONNX export of a frozen graph: float models as they are, quantized models (normal
// form, quant_normal_form.h) with QuantizeLinear/DequantizeLinear pairs: uint8
// activations, int8 weights per output channel (axis 0; axis 1 for MatMul), the layout
// ONNX Runtime and TensorRT fuse into integer kernels. Opset 13; the batch dimension is
// dynamic, every other extent is the example's (the graph is specialised to them first:
// batch_specialisation.h).
#pragma once

#include <string>
#include <vector>

#include "export/frozen_graph.h"

namespace slim::exporting {

// The opset every export declares.
constexpr int64_t kOnnxOpset = 13;

// The ONNX model of `frozen` as serialised bytes, with one input "input" (float, or int64
// for token ids) shaped like `example` (a batch of one) but for its batch size, and one
// float output "output". Throws ModelError naming the layer and
// the operator for an operator ONNX cannot express here; OnnxCheck lists them up front.
std::string ExportOnnx(const FrozenModel& frozen, const at::Tensor& example,
                       const std::string& model_name);

// The operators of `frozen`'s graph the ONNX export cannot express, as
// "aten::op in layer 'path'"; empty when it can export the model.
std::vector<std::string> OnnxUnsupported(const FrozenModel& frozen,
                                         const at::Tensor& example);

}  // namespace slim::exporting
