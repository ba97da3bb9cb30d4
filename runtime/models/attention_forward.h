// PyTorch's nn.MultiheadAttention computes its head size as embed_dim / num_heads, and so
// does the fused inference path of nn.TransformerEncoderLayer: neither runs once heads
// are removed. These passes make a scripted model with fewer heads than embed_dim /
// head_dim run, with code that loads in stock PyTorch.
#pragma once

#include <torch/script.h>

#include <string>
#include <vector>

namespace slim::models {

// Replaces forward of `attention`'s class (an nn.MultiheadAttention with packed q, k, v
// projections, as PyTorch 1.13 scripts it) by code with the same signature and results
// that reads the head count from num_heads and the head size from head_dim, so
// in_proj_weight may hold 3 x num_heads x head_dim rows and out_proj.weight num_heads x
// head_dim columns. Every instance of the class runs the new code. The class keeps a
// method _slim_runs_any_head_count as a mark, also in clones and saved files: repeating
// the pass changes nothing, not even a forward into which quantizers were routed since.
// Throws ModelError when forward's signature is not the one expected.
void RunAttentionWithAnyHeadCount(const torch::jit::Module& attention);

// True for a scripted nn.MultiheadAttention that RunAttentionWithAnyHeadCount handles:
// packed q, k, v projections (in_proj_weight a tensor), out_proj, num_heads, no bias_k or
// add_zero_attn, and PyTorch 1.13's forward signature.
bool IsPackedMultiheadAttention(const torch::jit::Module& module);

// Makes every packed nn.MultiheadAttention of `model` (IsPackedMultiheadAttention) run
// RunAttentionWithAnyHeadCount's forward, which calls out_proj.forward (PyTorch's reads
// out_proj's weight directly, past any quantizer routed into out_proj), reads
// in_proj_weight once and computes the attention products with aten::matmul, so that
// quantization sees all three; turns off the fused path of every encoder layer
// (TurnOffFusedEncoderPath), which would bypass all of them in inference. Returns the
// paths of those modules. Must run before the model's first forward.
std::vector<std::string> RunAttentionThroughItsLayers(const torch::jit::Module& model);

// Turns off the fused inference path (torch._transformer_encoder_layer_fwd and the nested
// tensor path of nn.TransformerEncoder) of the nn.TransformerEncoderLayer `layer` by
// setting its activation_relu_or_gelu to 0, which only that path reads. Does nothing for
// modules without that attribute.
void TurnOffFusedEncoderPath(const torch::jit::Module& layer);

}  // namespace slim::models
