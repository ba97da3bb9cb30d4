// How much each attention head and feed-forward unit of the encoder layers matters, for
// TransformerPrune to remove the least important: by the norm of its weights, or by the
// loss's sensitivity to it (the gradient of a mask on its output, as in Michel et al.,
// "Are Sixteen Heads Really Better than One?"), or for heads by how far the output
// distribution moves when the head alone is removed (a KL divergence; no labels needed).
#pragma once

#include <torch/script.h>

#include <map>
#include <string>
#include <vector>

#include "runtime/comm/communicator.h"
#include "strategies/prune/encoder_layers.h"
#include "strategies/strategy.h"

namespace slim::prune {

// Scores per layer: heads[i][h] and units[i][u] (units[i] empty without a feed-forward
// block). Higher is more important.
struct UnitScores {
  std::vector<std::vector<double>> heads;
  std::vector<std::vector<double>> units;
};

// The L2 norm of each head's q, k, v rows (with their biases) and output columns, and of
// each unit's input row (with its bias) and output column, from `tensors` (by path).
UnitScores WeightNormScores(const std::map<std::string, torch::Tensor>& tensors,
                            const std::vector<EncoderLayer>& layers);

// |sum of gradient x weight| over each head's (unit's) output columns, per batch, summed
// over `batches` and over the ranks (collective: every rank passes the same number of
// batches): the gradient of the cross-entropy with respect to a mask on the head's (unit's)
// output at 1. Runs `model` in evaluation mode without dropout; leaves its gradients and
// mode as they were.
UnitScores LossSensitivityScores(torch::jit::Module& model, const std::vector<EncoderLayer>& layers,
                                 const std::vector<strategies::LabelledBatch>& batches,
                                 comm::Communicator& comm);

// Per layer and head: the KL divergence KL(p || p without the head) of the model's output
// distributions (softmax over the last dimension) with and without that head's output,
// averaged over the samples of `batches` (their inputs only) and over the ranks
// (collective: every rank passes the same number of batches). Runs `model` in evaluation
// mode without gradients, zeroing one head's output columns at a time; leaves its weights
// and mode as they were.
std::vector<std::vector<double>> HeadAblationDivergences(
    torch::jit::Module& model, const std::vector<EncoderLayer>& layers,
    const std::vector<strategies::LabelledBatch>& batches, comm::Communicator& comm);

}  // namespace slim::prune
