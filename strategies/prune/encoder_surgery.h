// Physical removal of attention heads and feed-forward units from the encoder layers
// FindEncoderLayers found: the q, k, v rows and output columns of each removed head, the
// input rows and output columns of each removed unit, with num_heads lowered, so the
// result is an ordinary smaller TorchScript module that stock PyTorch loads.
#pragma once

#include <torch/script.h>

#include <map>
#include <string>
#include <vector>

#include "strategies/prune/channel_removal.h"
#include "strategies/prune/encoder_layers.h"

namespace slim::prune {

// What one encoder layer keeps: head and unit indices, ascending. `units` is empty for a
// layer without a feed-forward block.
struct KeptUnits {
  std::vector<int64_t> heads;
  std::vector<int64_t> units;
};

// Copies of every tensor PruneEncoderLayers slices, by path.
std::map<std::string, torch::Tensor> EncoderTensors(const torch::jit::Module& model,
                                                    const std::vector<EncoderLayer>& layers);

// The tensor axes (channel_removal.h) that keep `kept[i]` of `layers[i]`.
KeptChannels KeptAxes(const std::vector<EncoderLayer>& layers, const std::vector<KeptUnits>& kept);

// Sets the tensors of `originals` (EncoderTensors of the unpruned model) in `model` to the
// slices `kept` keeps, then num_heads of each attention module to its kept heads; an
// nn.MultiheadAttention gets a forward that runs with any head count and its encoder layer
// loses the fused inference path (runtime/models/attention_forward.h). Repeating it with the same
// arguments changes nothing.
void PruneEncoderLayers(torch::jit::Module& model, const std::map<std::string, torch::Tensor>& originals,
                        const std::vector<EncoderLayer>& layers, const std::vector<KeptUnits>& kept);

}  // namespace slim::prune
