// Pruning masks from weight magnitudes. A mask is a float tensor shaped as its weight, 1
// where the weight is kept and 0 where it is pruned. Every function is deterministic (ties
// fall to the lower flat index), so ranks holding identical weights compute identical
// masks.
#pragma once

#include <torch/torch.h>

#include <vector>

namespace slim::prune {

// Masks that prune round(ratio x elements) weights of smallest magnitude: of each weight
// on its own (`local`), or of all of them ranked together (one threshold for all).
// `ratio` in [0, 1].
std::vector<torch::Tensor> RatioMasks(const std::vector<torch::Tensor>& weights, double ratio,
                                      bool local);

// Masks that prune every weight with |w| < threshold.
std::vector<torch::Tensor> ThresholdMasks(const std::vector<torch::Tensor>& weights,
                                          double threshold);

// The 2:4 mask of `weight` ([out, in] or [out, in, kh, kw]): of every four consecutive
// input channels at one output channel and kernel position, the two of largest magnitude
// are kept (NVIDIA's sparse tensor core layout, input channels innermost).
torch::Tensor TwoFourMask(const torch::Tensor& weight);

// Why TwoFourMask cannot take `weight`, or "" when it can: the input dimension must be a
// multiple of 4 (a depthwise convolution's is 1).
std::string TwoFourRefusal(const torch::Tensor& weight);

}  // namespace slim::prune
