// QuantPost.bias_correct: the weight-statistics correction PaddleSlim's PTQ applies.
// Rounding shifts each output channel's mean and shrinks or widens its spread; the
// corrected weight restores both before it is quantized again with the same scale.
// (PaddleSlim adds the mean shift before scaling the spread, which restores the mean
// only approximately; this centres first, so both are exact.)
#pragma once

#include <torch/types.h>

namespace slim::quant {

// Per output channel c (dim 0; the whole tensor when not `per_channel`), with
// d = dequantized: (d_c - mean(d_c)) * std(w_c) / (std(d_c) + 1e-8) + mean(w_c).
torch::Tensor CorrectWeightQuantization(const torch::Tensor& weight,
                                        const torch::Tensor& dequantized, bool per_channel);

}  // namespace slim::quant
