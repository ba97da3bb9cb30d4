// ResRep's compactors: a 1x1 convolution after a convolution's BatchNorm, routed into the
// BatchNorm's forward as its child "compactor", and the merge of convolution, BatchNorm
// and compactor into one convolution whose output channels are the compactor's.
#pragma once

#include <torch/script.h>

#include <string>
#include <vector>

#include "strategies/graph/conv_bn_pairs.h"
#include "strategies/prune/channel_graph.h"

namespace slim::prune {

// One compactor: the child "compactor" of the BatchNorm `pair.bn_path`.
struct Compactor {
  graph::ConvBatchNorm pair;
  std::string weight;  // "<bn_path>.compactor.weight", [C, C, 1, 1]
};

// Gives every BatchNorm of `model` whose class one of `pairs` uses a child "compactor"
// computing conv2d(x, weight) with an identity weight, and routes the BatchNorm's output
// through it (graph/call_routing.h): the model computes what it did. The compactors of
// `pairs` are trainable; those of other instances of the same classes are frozen and stay
// identities. Returns the compactors of `pairs`, in their order. Must run before the
// model's first forward.
std::vector<Compactor> InsertCompactors(torch::jit::Module& model,
                                        const std::vector<graph::ConvBatchNorm>& pairs);

// Folds each of `compactors` into its convolution: weight Q diag(s) W and, since the
// convolution may have no bias, its BatchNorm becomes the bias Q t (weight 1, bias Q t,
// running mean 0, running variance 1 - eps), where s = gamma / sqrt(var + eps) and
// t = beta - mean s. In evaluation mode the model then computes what it did with the
// compactors; remove them with graph::CloneWithoutChildren(model, {"compactor"}).
void MergeCompactors(torch::jit::Module& model, const std::vector<Compactor>& compactors);

// The L2 norm of each output channel's filter of the merged convolution (Q diag(s) W, as
// MergeCompactors computes it), [C] double: how much each compactor output carries.
torch::Tensor MergedFilterNorms(const torch::jit::Module& model, const Compactor& compactor);

// A copy of `model` with `compactors` merged (MergeCompactors), every compactor dropped,
// and the channels removed[g] of graph.groups[g] removed (channel_removal.h). `graph` is
// the channel graph of the model before compactors.
torch::jit::Module MergedAndPruned(const torch::jit::Module& model, const std::vector<Compactor>& compactors,
                                   const ChannelGraph& graph,
                                   const std::vector<std::vector<int64_t>>& removed);

}  // namespace slim::prune
