// Physical removal of channels: the model's tensors replaced by their kept slices and the
// size attributes of their modules updated, so the result is an ordinary smaller
// TorchScript module that stock PyTorch loads.
#pragma once

#include <torch/script.h>
#include <torch/torch.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "strategies/prune/channel_graph.h"

namespace slim::prune {

// The indices (int64, ascending) each tensor axis keeps, by (tensor path, dim). An axis
// that loses nothing is absent.
using KeptChannels = std::map<std::pair<std::string, int64_t>, torch::Tensor>;

// Copies of the tensors on `graph`'s axes as `model` holds them: what RemoveChannels
// slices, also after the model changed.
std::map<std::string, torch::Tensor> AxisTensors(const torch::jit::Module& model,
                                                 const ChannelGraph& graph);

// The indices each axis keeps when the channels `removed[g]` of graph.groups[g] go.
// `tensors` holds the tensors at their full size (AxisTensors).
KeptChannels KeptIndices(const ChannelGraph& graph,
                         const std::map<std::string, torch::Tensor>& tensors,
                         const std::vector<std::vector<int64_t>>& removed);

// Sets each tensor of `originals` in `model` to its slices along the axes `kept` lists
// (the whole tensor where it lists none), keeping requires_grad, and the size attributes
// of their modules where present: the groups of the modules holding `depthwise_weights`
// (their channels), out_channels, in_channels; out_features, in_features; num_features.
void RemoveChannels(torch::jit::Module& model, const std::map<std::string, torch::Tensor>& originals,
                    const KeptChannels& kept, const std::vector<std::string>& depthwise_weights);

// The tensors of `model` on the graph's axes at their full size (`originals`' shapes): the
// values `model` holds at the indices `kept` keeps, zero elsewhere.
std::map<std::string, torch::Tensor> FullTensors(const torch::jit::Module& model,
                                                 const std::map<std::string, torch::Tensor>& originals,
                                                 const KeptChannels& kept);

// RemoveChannels for a model that already holds the slices `kept_before` keeps of `full`
// (FullTensors) and is being trained: afterwards it holds those `kept_after` keeps, and
// `optimizer`'s state of each replaced parameter (SGD momentum, Adam and AdamW moments)
// is sliced alike and moved to the new parameter; the state of other optimizers is
// dropped. `optimizer` may be null.
void RemoveMoreChannels(torch::jit::Module& model, torch::optim::Optimizer* optimizer,
                        const std::map<std::string, torch::Tensor>& full,
                        const KeptChannels& kept_before, const KeptChannels& kept_after,
                        const std::vector<std::string>& depthwise_weights);

}  // namespace slim::prune
