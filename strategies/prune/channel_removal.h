// Physical removal of channels: the model's tensors replaced by their kept slices and the
// size attributes of their modules updated, so the result is an ordinary smaller
// TorchScript module that stock PyTorch loads.
#pragma once

#include <torch/script.h>

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

}  // namespace slim::prune
