#include "runtime/models/attention_forward.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/csrc/jit/api/function_impl.h>

#include <set>
#include <string>
#include <vector>

#include "runtime/base/errors.h"

namespace slim::models {

namespace {

constexpr const char* kReplacement = "_slim_forward_any_head_count";
// A method the pass leaves on the class, so that repeating it keeps the forward it made
// and whatever later passes routed into it (quantizers): it survives cloning and saving.
constexpr const char* kMarker = "_slim_runs_any_head_count";

// The arguments of nn.MultiheadAttention.forward in PyTorch 1.13, after self.
const std::vector<std::string> kArguments = {"query",     "key",          "value",
                                             "key_padding_mask", "need_weights", "attn_mask",
                                             "average_attn_weights"};

// The forward of kArguments in TorchScript: in-projection with the q, k, v slices of
// num_heads x head_dim rows of in_proj_weight (read once, for a quantizer to route) on
// the inputs as they come (so that an input quantizer sits right before it), scaled
// dot-product attention per head with the float or bool masks, dropout in training,
// out_proj; [L, N, E] layout unless batch_first, unbatched [L, E] inputs too. `batch_first` is a class constant of the scripted module, which
// source compiled later cannot read.
std::string ReplacementSource(bool has_bias, bool batch_first) {
  const auto projection = [&](const std::string& input, const std::string& slice) {
    return fmt::format("torch.linear({}, in_proj_weight[{}], {})", input, slice,
                       has_bias ? "self.in_proj_bias[" + slice + "]" : "None");
  };
  const std::vector<std::string> lines = {
      fmt::format("def {}(self, query: Tensor, key: Tensor, value: Tensor, "
                  "key_padding_mask: Optional[Tensor]=None, need_weights: bool=True, "
                  "attn_mask: Optional[Tensor]=None, average_attn_weights: bool=True) -> "
                  "Tuple[Tensor, Optional[Tensor]]:",
                  kReplacement),
      "    heads = self.num_heads",
      "    head_dim = self.head_dim",
      "    width = heads * head_dim",
      "    in_proj_weight = self.in_proj_weight",
      "    q = " + projection("query", "0:width"),
      "    k = " + projection("key", "width:2 * width"),
      "    v = " + projection("value", "2 * width:3 * width"),
      "    batched = q.dim() == 3",
      "    if not batched:",
      "        q = q.unsqueeze(1)",
      "        k = k.unsqueeze(1)",
      "        v = v.unsqueeze(1)",
      "        if key_padding_mask is not None:",
      "            key_padding_mask = key_padding_mask.unsqueeze(0)",
      std::string("    elif ") + (batch_first ? "True" : "False") + ":",
      "        q = q.transpose(0, 1)",
      "        k = k.transpose(0, 1)",
      "        v = v.transpose(0, 1)",
      "    target_length = q.size(0)",
      "    batch = q.size(1)",
      "    source_length = k.size(0)",
      "    q = q.reshape([target_length, batch * heads, head_dim]).transpose(0, 1)",
      "    k = k.reshape([source_length, batch * heads, head_dim]).transpose(0, 1)",
      "    v = v.reshape([source_length, batch * heads, head_dim]).transpose(0, 1)",
      "    scores = torch.matmul(q / (float(head_dim) ** 0.5), k.transpose(1, 2))",
      "    if attn_mask is not None:",
      "        mask = attn_mask",
      "        if mask.dim() == 2:",
      "            mask = mask.unsqueeze(0)",
      "        if mask.is_floating_point():",
      "            scores = scores + mask",
      "        else:",
      "            scores = scores.masked_fill(mask, float('-inf'))",
      "    if key_padding_mask is not None:",
      "        padding = key_padding_mask.reshape([batch, 1, 1, source_length]).expand("
      "[batch, heads, 1, source_length]).reshape([batch * heads, 1, source_length])",
      "        if padding.is_floating_point():",
      "            scores = scores + padding",
      "        else:",
      "            scores = scores.masked_fill(padding, float('-inf'))",
      "    weights = torch.softmax(scores, -1)",
      "    if self.training and self.dropout > 0.0:",
      "        weights = torch.dropout(weights, self.dropout, True)",
      "    out = torch.matmul(weights, v).transpose(0, 1).reshape([target_length * batch, width])",
      "    out = self.out_proj.forward(out)",
      "    out = out.reshape([target_length, batch, out.size(1)])",
      "    if not batched:",
      "        out = out.squeeze(1)",
      std::string("    elif ") + (batch_first ? "True" : "False") + ":",
      "        out = out.transpose(0, 1)",
      "    if need_weights:",
      "        per_head = weights.reshape([batch, heads, target_length, source_length])",
      "        if average_attn_weights:",
      "            per_head = per_head.mean(1)",
      "        if not batched:",
      "            per_head = per_head.squeeze(0)",
      "        return out, per_head",
      "    return out, None",
  };
  std::string source;
  for (const auto& line : lines) source += line + "\n";
  return source;
}

std::vector<std::string> ArgumentNames(const torch::jit::Module& module) {
  const auto& schema = module.get_method("forward").function().getSchema();
  std::vector<std::string> names;
  for (size_t i = 1; i < schema.arguments().size(); ++i) names.push_back(schema.arguments()[i].name());
  return names;
}

void CheckSignature(const torch::jit::Module& attention) {
  const auto names = ArgumentNames(attention);
  if (names != kArguments) {
    throw ModelError(fmt::format(
        "TransformerPrune: the forward of the nn.MultiheadAttention class {} takes ({}), not the "
        "({}) of PyTorch 1.13 that head pruning rewrites; script the model with PyTorch 1.13 or "
        "leave its layers out with TransformerPrune.layers",
        attention.type()->name()->qualifiedName(), fmt::join(names, ", "),
        fmt::join(kArguments, ", ")));
  }
}

}  // namespace

void RunAttentionWithAnyHeadCount(const torch::jit::Module& attention) {
  if (attention.find_method(kMarker)) return;
  CheckSignature(attention);
  torch::jit::Module handle = attention;
  handle.define(fmt::format("def {}(self) -> bool:\n    return True\n", kMarker));
  const bool has_bias = attention.attr("in_proj_bias").isTensor();
  const auto type = attention.type();
  const bool batch_first = type->hasConstant("batch_first")
                               ? type->getConstant("batch_first").toBool()
                               : attention.attr("batch_first").toBool();
  handle.define(ReplacementSource(has_bias, batch_first));
  auto& replacement = torch::jit::toGraphFunction(attention.get_method(kReplacement).function());
  auto& forward = torch::jit::toGraphFunction(attention.get_method("forward").function());
  const auto graph = forward.graph();
  const auto body = replacement.graph()->copy();
  while (graph->outputs().size() > 0) graph->eraseOutput(graph->outputs().size() - 1);
  for (auto it = graph->nodes().rbegin(); it != graph->nodes().rend();) {
    auto* node = *it;
    ++it;
    node->destroy();
  }
  torch::jit::WithInsertPoint insert_at_end(graph->return_node());
  for (auto* output : torch::jit::insertGraph(*graph, *body, graph->inputs())) {
    graph->registerOutput(output);
  }
  type->unsafeRemoveMethod(kReplacement);
  attention._ivalue()->compilation_unit()->unsafeRemoveMethod(
      c10::QualifiedName(*type->name(), kReplacement));
}

bool IsPackedMultiheadAttention(const torch::jit::Module& module) {
  const auto attribute = [&](const std::string& name) {
    return module.hasattr(name) ? module.attr(name) : c10::IValue();
  };
  return attribute("in_proj_weight").isTensor() && module.hasattr("out_proj") &&
         attribute("num_heads").isInt() && !attribute("bias_k").isTensor() &&
         !(attribute("add_zero_attn").isBool() && attribute("add_zero_attn").toBool()) &&
         module.find_method("forward").has_value() && ArgumentNames(module) == kArguments;
}

std::vector<std::string> RunAttentionThroughItsLayers(const torch::jit::Module& model) {
  std::vector<std::string> paths;
  std::set<std::string> classes;
  for (const auto& entry : model.named_modules()) {
    TurnOffFusedEncoderPath(entry.value);
    if (!IsPackedMultiheadAttention(entry.value)) continue;
    paths.push_back(entry.name);
    if (classes.insert(entry.value.type()->name()->qualifiedName()).second) {
      RunAttentionWithAnyHeadCount(entry.value);
    }
  }
  return paths;
}

void TurnOffFusedEncoderPath(const torch::jit::Module& layer) {
  if (!layer.hasattr("activation_relu_or_gelu") || layer.type()->hasConstant("activation_relu_or_gelu")) {
    return;
  }
  torch::jit::Module handle = layer;
  const auto current = layer.attr("activation_relu_or_gelu");
  if (current.isInt()) handle.setattr("activation_relu_or_gelu", int64_t{0});
  if (current.isBool()) handle.setattr("activation_relu_or_gelu", false);
}

}  // namespace slim::models
