// BatchNorm folding for quantization-aware training (QuantAware.freeze_bn_step): each
// BatchNorm that directly follows a quantized convolution is frozen (running statistics,
// no updates) and folded into the convolution's weight quantizer, so training sees the
// quantized folded weight w * gamma / sqrt(var + eps) that deployment runs; the export
// then holds that weight and turns the BatchNorm into a per-channel bias.
#pragma once

#include <torch/script.h>

#include <optional>
#include <vector>

#include "strategies/graph/conv_bn_pairs.h"
#include "strategies/quant/quantize_pass.h"

namespace slim::quant {

// A quantized convolution and the BatchNorm right after it.
struct FoldablePair {
  graph::ConvBatchNorm paths;
  torch::jit::Module weight_quant;  // the convolution's
  torch::jit::Module batch_norm;
};

// The BatchNorms directly after the enabled convolution layers of `layers` in `model`.
std::vector<FoldablePair> FindFoldablePairs(const torch::jit::Module& model,
                                            const std::vector<QuantizedLayer>& layers);

// gamma / sqrt(running_var + eps) of `batch_norm`, per channel: what folding multiplies
// the convolution's weight by.
torch::Tensor FoldFactor(const torch::jit::Module& batch_norm, double eps);

// The bias tensor of `layer`, or nullopt when it has none (bias=False).
std::optional<torch::Tensor> BiasOf(const torch::jit::Module& layer);

// Freezes each pair's BatchNorm (eval mode: the trainer's evaluation restores it as it
// was) and folds it into the weight quantizer, which shares the BatchNorm's tensors; they
// stay shared through Module::to and checkpoint restores, which change data in place.
void FreezeAndFold(const std::vector<FoldablePair>& pairs);

// On `model`, a deployable copy of the model `pairs` were found in: writes each folded
// weight w * f into the convolution (a bias c moves into the BatchNorm) and makes the
// BatchNorm a per-channel bias: gamma 1, mean 0, var 1 - eps, beta' = beta + f (c - mean).
// Folding is then off; the weight quantizers quantize the stored weight as it is.
void FoldIntoConvolutions(torch::jit::Module& model, const std::vector<FoldablePair>& pairs);

}  // namespace slim::quant
