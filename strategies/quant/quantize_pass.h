// The quantization graph pass shared by QuantAware and QuantPost: picks the layers
// (quantize_op_types, not_quant_pattern) and attaches a weight and an input quantizer to
// each (quantizer_modules.h); with `matmul`, both operands of every aten::matmul between
// two activations get an input quantizer too, and with `add` both operands and the result
// of every add of two activations (residual connections).
#pragma once

#include <torch/script.h>

#include <string>
#include <vector>

#include "strategies/quant/quant_options.h"
#include "strategies/graph/layer_finder.h"

namespace slim::quant {

// A layer that received quantizers: a convolution or linear layer, or the packed q, k, v
// projection of an nn.MultiheadAttention (kind linear, path the attention module's).
struct QuantizedLayer {
  std::string path;
  graph::LayerKind kind;
  torch::jit::Module layer;
  torch::jit::Module weight_quant;  // child "weight_quant" of layer
  torch::jit::Module input_quant;   // child "input_quant" of layer
};

// The attribute of `layer` its weight_quant quantizes: in_proj_weight for a packed
// nn.MultiheadAttention (models::IsPackedMultiheadAttention), weight otherwise.
std::string QuantizedWeightName(const torch::jit::Module& layer);

// An aten::matmul or add of two activations in a module's forward whose operands (and
// for an add its result) were routed through the module's children "<op><i>_input_quant",
// "<op><i>_other_quant" (and "add<i>_output_quant"); <op> is matmul or add, i counts the
// module's ops of that kind in graph order.
struct QuantizedOperation {
  std::string path;  // "<module path>.<op><i>", what not_quant_pattern matches
  std::vector<torch::jit::Module> quantizers;  // input, other (and an add's output)
};

// What the pass quantized.
struct QuantizedModel {
  std::vector<QuantizedLayer> layers;
  std::vector<QuantizedOperation> matmuls;
  std::vector<QuantizedOperation> adds;
  int64_t quantized_weights = 0;  // elements of the weights of `layers`
  int64_t layer_weights = 0;      // elements of the weights of every layer the pass could quantize

  // Every activation quantizer: the layers' inputs in order, then each matmul's two, then
  // each add's three.
  std::vector<torch::jit::Module> ActivationQuantizers() const;
  // quantized_weights / layer_weights (0 for a model without such layers).
  double WeightShare() const;
  // "22 layer(s)", or "12 layer(s), 4 matmul(s), 4 add(s)", for log lines.
  std::string Describe() const;
};

// Attaches quantizers to the selected layers, matmuls and adds of `model` and rewrites their
// forward graphs. PyTorch's nn.MultiheadAttention first gets a forward that calls its
// out_proj, computes its attention products as matmuls and reads in_proj_weight once
// (models::RunAttentionThroughItsLayers); its packed q, k, v projection is a linear layer
// whose input quantizer sees query, key and value (one grid for the three). Layers that
// share a TorchScript class with a selected layer but are not selected get disabled
// quantizers (the class's graph is shared). `pact` selects PACT activation
// quantizers. Logs a warning listing the module paths for a not_quant_pattern entry that
// matches nothing. Throws ModelError when the model is already quantized or has no layer,
// matmul or add of the requested types. Must run before the model's first forward.
QuantizedModel InsertQuantizers(torch::jit::Module& model,
                                const quant::QuantCommonOptions& options, bool pact);

}  // namespace slim::quant
