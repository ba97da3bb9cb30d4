// Integer kernels add a layer's bias to the int32 accumulator of its input x weight
// products, so the bias they use lies on that accumulator's grid: the input's step times
// the weight's step of each output channel (the bias scale of ONNX's QLinearConv, and of
// TFLite's and fbgemm's kernels). ONNX Runtime rounds a float bias onto it when it fuses a
// QDQ convolution. A fake-quant model whose bias lies off that grid computes what no
// integer runtime does; on a trained mobilenet_v2 that rounding alone made ONNX Runtime
// disagree with the fake-quant top-1 on 1 % of the images (docs/export.md).
#pragma once

#include <torch/script.h>

#include <vector>

#include "strategies/quant/quantize_pass.h"

namespace slim::quant {

// Moves the effective bias of each layer of `layers` whose weight and input are quantized
// onto its accumulator grid in `model` (the layers' paths name modules of `model`). For a
// convolution followed by a BatchNorm the effective bias is the folded one, beta + f (b -
// mean) with f = gamma / sqrt(var + eps), and its grid that of the folded weight (input
// step x weight step x |f|); beta changes. Otherwise the layer's own bias changes (none is
// zero, on every grid). Each bias moves by at most half a step of its grid.
// REQUIRES: the quantizers' steps are final (FreezeQuantizers ran).
void SnapBiasesToAccumulatorGrid(torch::jit::Module& model,
                                 const std::vector<QuantizedLayer>& layers);

}  // namespace slim::quant
