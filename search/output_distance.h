// ACT's "emd" objective for post-training quantization: how far the quantized model's
// outputs are from the float model's, as the 1-D Wasserstein (earth mover's) distance
// between the two sets of output values of one batch, each standardised to mean 0 and
// standard deviation 1 first, so that a global shift or scale of the outputs costs nothing
// and only the shape of their distribution counts.
#pragma once

#include <torch/types.h>

namespace slim::search {

// The distance between the standardised values of `reference` and `other` (same number
// of elements, any shape): the mean absolute difference of their sorted values, which is
// the 1-D Wasserstein distance of two equally weighted samples of one size. A constant
// tensor standardises to zeros (its deviation is taken as at least 1e-8).
double StandardisedWasserstein(const torch::Tensor& reference, const torch::Tensor& other);

}  // namespace slim::search
