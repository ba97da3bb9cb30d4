// From a quantized graph in normal form (quant_normal_form.h) to integer kernels.
//
// Integer kernels take and return 8-bit tensors, so every quantized convolution, linear
// layer and residual add needs a grid for its output too. Where the fake-quant model
// already quantizes that output (the next layer's input quantizer, after a ReLU that the
// kernel fuses) its grid is taken as it is; elsewhere (a convolution before a residual
// add, the add itself) the range is calibrated on real inputs: zero point 0 for outputs
// that are never negative, 128 otherwise. A layer whose output only leaves the model
// (the classifier) stays float on its quantized input by default, as do layers nothing
// quantized; float linear layers run on oneDNN where the build has it. Asked to, the
// model's output gets a calibrated grid too, as torch.ao.quantization gives it: the
// classifier then runs as an integer kernel, and the logits have 256 levels.
#pragma once

#include <string>
#include <vector>

#include "export/frozen_graph.h"

namespace slim::exporting {

// What QuantizeLayerOutputs did.
struct OutputGrids {
  int64_t taken = 0;       // outputs that reuse the grid of a quantizer after them
  int64_t calibrated = 0;  // outputs whose grid was calibrated
  int64_t model_outputs = 0;  // of those, outputs the model returns (ModelOutput::kQuantized)
};

// What an integer export does with the quantized layers whose outputs the model returns.
enum class ModelOutput {
  kFloat,      // they stay float on their quantized input: the logits the fake-quant
               // model computes
  kQuantized,  // they get a grid calibrated from the lowest to the highest value seen
               // (zero point where 0 falls): integer kernels, 8-bit logits
};

// kQuantized when `quantized` (Global.export_quantized_output), else kFloat.
inline ModelOutput ModelOutputFor(bool quantized) {
  return quantized ? ModelOutput::kQuantized : ModelOutput::kFloat;
}

// Gives the outputs of the quantized layers and adds of `frozen` (normal form) their
// grids, calibrating on `calibration` inputs, and drops the re-quantizations that
// become identities. Used by every integer export (torchscript_int8 and onnx alike), so
// that both compute the same function.
OutputGrids QuantizeLayerOutputs(FrozenModel& frozen, const std::vector<at::Tensor>& calibration,
                                 ModelOutput model_output = ModelOutput::kFloat);

// The module paths (LayerOf) of the convolution and linear layers whose outputs `graph`
// returns, also through a ReLU: where ModelOutput::kQuantized puts a grid when the layer
// is quantized.
std::vector<std::string> ReturnedLayers(const torch::jit::Graph& graph);

// What LowerToIntegerKernels produced.
struct IntegerKernels {
  int64_t integer_ops = 0;                // quantized:: convolutions, linears and adds
  std::vector<std::string> float_layers;  // quantized layers without an output grid, left
                                          // in float, by layer
};

// Replaces dequantize -> op -> quantize chains by LibTorch's quantized:: kernels with
// their weights packed once (for the engine `torch.backends.quantized.engine` selects).
// REQUIRES: QuantizeLayerOutputs ran on `frozen`.
IntegerKernels LowerToIntegerKernels(FrozenModel& frozen);

// Selects the quantized engine integer kernels run with, the first this LibTorch build
// supports of x86, fbgemm, onednn, qnnpack, and returns its name ("none" without any).
std::string SelectQuantizedEngine();

}  // namespace slim::exporting
