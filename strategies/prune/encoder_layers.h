// Finding the Transformer encoder layers of a TorchScript model by their modules: the
// attention block (PyTorch's nn.MultiheadAttention, or a module with an int num_heads
// attribute, a packed q/k/v linear layer and an output linear layer, as the builtin
// transformer's) and, beside it in the same parent module, the feed-forward pair of linear
// layers (d -> f, f -> d). What TransformerPrune removes heads and units from.
#pragma once

#include <torch/script.h>

#include <optional>
#include <string>
#include <vector>

namespace slim::prune {

// Tensor paths of one attention block. The rows of qkv_weight are q, k, v, each head after
// head (row s x heads x head_dim + h x head_dim + i); out_weight's columns are head after
// head.
struct AttentionBlock {
  std::string module;                // "layers.0.attn"
  bool multihead_attention = false;  // nn.MultiheadAttention (in_proj_weight, out_proj)
  std::string qkv_weight;            // [3 x heads x head_dim, d]
  std::string qkv_bias;              // [3 x heads x head_dim]; "" when there is none
  std::string out_weight;            // [d, heads x head_dim]
  int64_t heads = 0;
  int64_t head_dim = 0;
};

// Tensor paths of one feed-forward block: in_weight [units, d] and in_bias [units]
// compute the hidden units, out_weight [d, units] reads them.
struct FeedForwardBlock {
  std::string in_weight;
  std::string in_bias;  // "" when there is none
  std::string out_weight;
  int64_t units = 0;
};

struct EncoderLayer {
  std::string path;  // the module holding the attention block ("" for the model itself)
  AttentionBlock attention;
  std::optional<FeedForwardBlock> feed_forward;  // absent when no single pair was found
};

// Every encoder layer of `model`, in the order of named_modules(). Throws ModelError when
// an nn.MultiheadAttention has separate q, k, v weights (kdim or vdim differ from
// embed_dim), bias_k/bias_v or add_zero_attn, naming the module.
std::vector<EncoderLayer> FindEncoderLayers(const torch::jit::Module& model);

// What FindEncoderLayers looks for, for the message of a model without any.
std::string EncoderLayerDescription();

}  // namespace slim::prune
