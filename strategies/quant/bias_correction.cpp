#include "strategies/quant/bias_correction.h"

namespace slim::quant {

torch::Tensor CorrectWeightQuantization(const torch::Tensor& weight,
                                        const torch::Tensor& dequantized, bool per_channel) {
  const int64_t rows = per_channel ? weight.size(0) : 1;
  const auto original = weight.reshape({rows, -1});
  const auto rounded = dequantized.reshape({rows, -1});
  const auto spread = original.std(1, /*unbiased=*/true, /*keepdim=*/true) /
                      (rounded.std(1, /*unbiased=*/true, /*keepdim=*/true) + 1e-8);
  const auto centred = rounded - rounded.mean(1, /*keepdim=*/true);
  return (centred * spread + original.mean(1, /*keepdim=*/true)).reshape(weight.sizes());
}

}  // namespace slim::quant
