#include "strategies/prune/encoder_surgery.h"

#include "runtime/models/attention_forward.h"
#include "strategies/graph/layer_finder.h"

namespace slim::prune {

namespace {

// Indices of the `size`-wide blocks `blocks` within each of `parts` consecutive parts of
// `blocks_per_part` blocks: part p, block b covers [(p x blocks_per_part + b) x size, ...).
torch::Tensor BlockIndices(const std::vector<int64_t>& blocks, int64_t size, int64_t parts,
                           int64_t blocks_per_part) {
  std::vector<int64_t> indices;
  for (int64_t part = 0; part < parts; ++part) {
    for (const auto block : blocks) {
      for (int64_t i = 0; i < size; ++i) indices.push_back((part * blocks_per_part + block) * size + i);
    }
  }
  return torch::tensor(indices, torch::kInt64);
}

std::vector<std::string> TensorPaths(const EncoderLayer& layer) {
  const auto& attention = layer.attention;
  std::vector<std::string> paths = {attention.qkv_weight, attention.qkv_bias, attention.out_weight};
  if (layer.feed_forward) {
    const auto& ffn = *layer.feed_forward;
    paths.insert(paths.end(), {ffn.in_weight, ffn.in_bias, ffn.out_weight});
  }
  return paths;
}

}  // namespace

std::map<std::string, torch::Tensor> EncoderTensors(const torch::jit::Module& model,
                                                    const std::vector<EncoderLayer>& layers) {
  std::map<std::string, torch::Tensor> tensors;
  for (const auto& layer : layers) {
    for (const auto& path : TensorPaths(layer)) {
      if (!path.empty()) tensors[path] = TensorAt(model, path).detach().clone();
    }
  }
  return tensors;
}

KeptChannels KeptAxes(const std::vector<EncoderLayer>& layers, const std::vector<KeptUnits>& kept) {
  KeptChannels axes;
  for (size_t i = 0; i < layers.size(); ++i) {
    const auto& attention = layers[i].attention;
    if (static_cast<int64_t>(kept[i].heads.size()) < attention.heads) {
      const auto rows = BlockIndices(kept[i].heads, attention.head_dim, 3, attention.heads);
      axes[{attention.qkv_weight, 0}] = rows;
      if (!attention.qkv_bias.empty()) axes[{attention.qkv_bias, 0}] = rows;
      axes[{attention.out_weight, 1}] = BlockIndices(kept[i].heads, attention.head_dim, 1, attention.heads);
    }
    const auto& ffn = layers[i].feed_forward;
    if (ffn && static_cast<int64_t>(kept[i].units.size()) < ffn->units) {
      const auto units = torch::tensor(kept[i].units, torch::kInt64);
      axes[{ffn->in_weight, 0}] = units;
      if (!ffn->in_bias.empty()) axes[{ffn->in_bias, 0}] = units;
      axes[{ffn->out_weight, 1}] = units;
    }
  }
  return axes;
}

void PruneEncoderLayers(torch::jit::Module& model, const std::map<std::string, torch::Tensor>& originals,
                        const std::vector<EncoderLayer>& layers, const std::vector<KeptUnits>& kept) {
  RemoveChannels(model, originals, KeptAxes(layers, kept), {});
  const auto modules = graph::ModulesByPath(model);
  for (size_t i = 0; i < layers.size(); ++i) {
    if (static_cast<int64_t>(kept[i].heads.size()) == layers[i].attention.heads) continue;
    auto attention = modules.at(layers[i].attention.module);
    attention.setattr("num_heads", static_cast<int64_t>(kept[i].heads.size()));
    if (!layers[i].attention.multihead_attention) continue;
    models::RunAttentionWithAnyHeadCount(attention);
    // The nested-tensor path of nn.TransformerEncoder checks its first layer only: every
    // encoder layer loses the fused path.
    for (const auto& layer : layers) models::TurnOffFusedEncoderPath(modules.at(layer.path));
  }
}

}  // namespace slim::prune
