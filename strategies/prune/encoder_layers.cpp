#include "strategies/prune/encoder_layers.h"

#include <fmt/format.h>

#include "runtime/base/errors.h"
#include "strategies/graph/layer_finder.h"
#include "strategies/prune/channel_graph.h"

namespace slim::prune {

namespace {

std::string Joined(const std::string& parent, const std::string& name) {
  return parent.empty() ? name : parent + "." + name;
}

// The tensor attribute `name` of `module`, or an undefined tensor.
torch::Tensor TensorAttribute(const torch::jit::Module& module, const std::string& name) {
  if (!module.hasattr(name)) return {};
  const auto value = module.attr(name);
  return value.isTensor() ? value.toTensor() : torch::Tensor();
}

int64_t IntAttribute(const torch::jit::Module& module, const std::string& name) {
  return module.hasattr(name) && module.attr(name).isInt() ? module.attr(name).toInt() : 0;
}

// A linear layer: a module holding a 2-D weight (and maybe a 1-D bias), by path.
struct LinearModule {
  std::string path;
  torch::Tensor weight;
  bool has_bias = false;
};

std::vector<LinearModule> LinearModulesBelow(const torch::jit::Module& module,
                                             const std::string& path) {
  std::vector<LinearModule> found;
  for (const auto& child : module.named_modules()) {
    const auto weight = TensorAttribute(child.value, "weight");
    if (!weight.defined() || weight.dim() != 2) continue;
    found.push_back({Joined(path, child.name), weight,
                     TensorAttribute(child.value, "bias").defined()});
  }
  return found;
}

// nn.MultiheadAttention as scripted by PyTorch.
std::optional<AttentionBlock> MultiheadAttention(const torch::jit::Module& module,
                                                 const std::string& path) {
  if (!module.hasattr("in_proj_weight") || !module.hasattr("out_proj") ||
      IntAttribute(module, "num_heads") <= 0) {
    return std::nullopt;
  }
  const auto refuse = [&](const std::string& what) {
    throw ModelError(fmt::format("TransformerPrune: the nn.MultiheadAttention '{}' has {}; head "
                                 "pruning supports packed q, k, v projections only: leave its "
                                 "layer out with TransformerPrune.layers",
                                 path, what));
  };
  if (!TensorAttribute(module, "in_proj_weight").defined()) {
    refuse("separate q, k and v weights (kdim or vdim differ from embed_dim)");
  }
  if (TensorAttribute(module, "bias_k").defined()) refuse("bias_k and bias_v (add_bias_kv)");
  if (module.hasattr("add_zero_attn") && module.attr("add_zero_attn").isBool() &&
      module.attr("add_zero_attn").toBool()) {
    refuse("add_zero_attn");
  }
  AttentionBlock block;
  block.module = path;
  block.multihead_attention = true;
  block.qkv_weight = Joined(path, "in_proj_weight");
  if (TensorAttribute(module, "in_proj_bias").defined()) block.qkv_bias = Joined(path, "in_proj_bias");
  block.out_weight = Joined(path, "out_proj.weight");
  block.heads = IntAttribute(module, "num_heads");
  block.head_dim = TensorAttribute(module, "in_proj_weight").size(0) / (3 * block.heads);
  return block;
}

// A module with num_heads and, among its children, a linear layer [3w, d] and one [d', w].
std::optional<AttentionBlock> PackedAttention(const torch::jit::Module& module,
                                              const std::string& path) {
  const int64_t heads = IntAttribute(module, "num_heads");
  if (heads <= 0) return std::nullopt;
  std::vector<LinearModule> children;
  for (const auto& child : module.named_children()) {
    const auto weight = TensorAttribute(child.value, "weight");
    if (weight.defined() && weight.dim() == 2) {
      children.push_back({Joined(path, child.name), weight,
                          TensorAttribute(child.value, "bias").defined()});
    }
  }
  for (const auto& qkv : children) {
    const int64_t width = qkv.weight.size(0) / 3;
    if (qkv.weight.size(0) != 3 * width || width % heads != 0) continue;
    for (const auto& out : children) {
      if (&out == &qkv || out.weight.size(1) != width) continue;
      AttentionBlock block;
      block.module = path;
      block.qkv_weight = qkv.path + ".weight";
      if (qkv.has_bias) block.qkv_bias = qkv.path + ".bias";
      block.out_weight = out.path + ".weight";
      block.heads = heads;
      block.head_dim = width / heads;
      return block;
    }
  }
  return std::nullopt;
}

// The one pair of linear layers below `layer` and outside its attention block that maps
// d -> f -> d.
std::optional<FeedForwardBlock> FeedForward(const torch::jit::Module& layer, const std::string& path,
                                            const AttentionBlock& attention, int64_t width) {
  std::vector<LinearModule> candidates;
  for (const auto& linear : LinearModulesBelow(layer, path)) {
    if (!graph::MatchesModulePattern(attention.module, linear.path)) candidates.push_back(linear);
  }
  std::optional<FeedForwardBlock> found;
  for (const auto& in : candidates) {
    for (const auto& out : candidates) {
      if (in.weight.size(1) != width || out.weight.size(0) != width ||
          in.weight.size(0) != out.weight.size(1) || &in == &out) {
        continue;
      }
      if (found) return std::nullopt;  // ambiguous
      found = FeedForwardBlock{in.path + ".weight", in.has_bias ? in.path + ".bias" : "",
                               out.path + ".weight", in.weight.size(0)};
    }
  }
  return found;
}

}  // namespace

std::vector<EncoderLayer> FindEncoderLayers(const torch::jit::Module& model) {
  const auto modules = graph::ModulesByPath(model);
  std::vector<EncoderLayer> layers;
  for (const auto& child : model.named_modules()) {
    auto attention = MultiheadAttention(child.value, child.name);
    if (!attention) attention = PackedAttention(child.value, child.name);
    if (!attention) continue;
    const auto dot = child.name.rfind('.');
    const std::string parent = dot == std::string::npos ? "" : child.name.substr(0, dot);
    EncoderLayer layer{child.name.empty() ? "" : parent, *attention, std::nullopt};
    if (!child.name.empty()) {
      const int64_t width = TensorAt(model, attention->out_weight).size(0);
      layer.feed_forward = FeedForward(modules.at(parent), parent, *attention, width);
    }
    layers.push_back(layer);
  }
  return layers;
}

std::string EncoderLayerDescription() {
  return "an nn.MultiheadAttention (in_proj_weight, out_proj, num_heads), or a module with an "
         "int attribute num_heads whose children include a linear layer [3 x width, d] and "
         "one [d, width]";
}

}  // namespace slim::prune
