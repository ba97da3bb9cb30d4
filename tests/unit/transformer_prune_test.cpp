// TransformerPrune's pieces on the builtin transformer: finding the encoder layers,
// removing heads and feed-forward units exactly, and ranking them by weight norm.
#include <gtest/gtest.h>
#include <torch/script.h>
#include <torch/torch.h>

#include <string>
#include <vector>

#include "runtime/models/builtin_models.h"
#include "strategies/prune/channel_graph.h"
#include "strategies/prune/encoder_importance.h"
#include "strategies/prune/encoder_layers.h"
#include "strategies/prune/encoder_surgery.h"

namespace slim::prune {
namespace {

constexpr int64_t kLength = 12;

torch::jit::Module Transformer() {
  torch::manual_seed(3);
  auto model = models::BuildBuiltinModel("transformer", models::ModelShape{{kLength}, 5});
  // Biases away from zero, so that a bias row left behind would show.
  for (const auto& parameter : model.named_parameters()) {
    if (parameter.name.find("bias") != std::string::npos) {
      torch::NoGradGuard no_grad;
      parameter.value.uniform_(-0.5, 0.5);
    }
  }
  return model;
}

torch::Tensor Tokens() {
  torch::manual_seed(4);
  return torch::randint(0, 256, {3, kLength}, torch::kInt64);
}

torch::Tensor Output(torch::jit::Module model) {
  model.eval();
  torch::NoGradGuard no_grad;
  return model.forward({Tokens()}).toTensor();
}

// Zeroes head `head` of `layer`'s builtin attention (q, k, v rows and biases, proj columns)
// in place, laid out as the builtin's forward reads them.
void ZeroHead(torch::jit::Module& model, const std::string& layer, int64_t head) {
  torch::NoGradGuard no_grad;
  const int64_t heads = 4;
  const int64_t dim = 64 / heads;
  TensorAt(model, layer + ".attn.qkv.weight").view({3, heads, dim, 64}).select(1, head).zero_();
  TensorAt(model, layer + ".attn.qkv.bias").view({3, heads, dim}).select(1, head).zero_();
  TensorAt(model, layer + ".attn.proj.weight").view({64, heads, dim}).select(1, head).zero_();
}

void ZeroUnit(torch::jit::Module& model, const std::string& layer, int64_t unit) {
  torch::NoGradGuard no_grad;
  TensorAt(model, layer + ".ffn.fc1.weight")[unit].zero_();
  TensorAt(model, layer + ".ffn.fc1.bias")[unit].zero_();
  TensorAt(model, layer + ".ffn.fc2.weight").select(1, unit).zero_();
}

TEST(TransformerPrune, FindsTheBuiltinEncoderLayersAndNothingInAResNet) {
  const auto layers = FindEncoderLayers(Transformer());
  ASSERT_EQ(layers.size(), 2u);
  EXPECT_EQ(layers[1].path, "layers.1");
  EXPECT_EQ(layers[1].attention.module, "layers.1.attn");
  EXPECT_EQ(layers[1].attention.qkv_weight, "layers.1.attn.qkv.weight");
  EXPECT_EQ(layers[1].attention.qkv_bias, "layers.1.attn.qkv.bias");
  EXPECT_EQ(layers[1].attention.out_weight, "layers.1.attn.proj.weight");
  EXPECT_FALSE(layers[1].attention.multihead_attention);
  EXPECT_EQ(layers[1].attention.heads, 4);
  EXPECT_EQ(layers[1].attention.head_dim, 16);
  ASSERT_TRUE(layers[1].feed_forward.has_value());
  EXPECT_EQ(layers[1].feed_forward->in_weight, "layers.1.ffn.fc1.weight");
  EXPECT_EQ(layers[1].feed_forward->out_weight, "layers.1.ffn.fc2.weight");
  EXPECT_EQ(layers[1].feed_forward->units, 256);
  const auto resnet = models::BuildBuiltinModel("resnet20", models::ModelShape{{3, 16, 16}, 5});
  EXPECT_TRUE(FindEncoderLayers(resnet).empty());
}

TEST(TransformerPrune, RemovingHeadsAndUnitsComputesWhatZeroingThemDoes) {
  auto zeroed = Transformer();
  auto pruned = Transformer();
  const auto layers = FindEncoderLayers(pruned);
  const std::vector<KeptUnits> kept = {{{0, 2}, {}}, {{3}, {}}};
  std::vector<KeptUnits> with_units = kept;
  for (int64_t unit = 0; unit < 256; ++unit) {
    (unit % 3 == 0 ? with_units[0].units : with_units[1].units).push_back(unit);
    if (unit % 3 != 0) ZeroUnit(zeroed, "layers.0", unit);
    if (unit % 3 == 0) ZeroUnit(zeroed, "layers.1", unit);
  }
  for (const int64_t head : {1, 3}) ZeroHead(zeroed, "layers.0", head);
  for (const int64_t head : {0, 1, 2}) ZeroHead(zeroed, "layers.1", head);
  const auto unpruned_output = Output(pruned);
  PruneEncoderLayers(pruned, EncoderTensors(pruned, layers), layers, with_units);

  EXPECT_EQ(pruned.attr("layers").toModule().attr("0").toModule().attr("attn").toModule()
                .attr("num_heads").toInt(), 2);
  EXPECT_EQ(TensorAt(pruned, "layers.1.attn.qkv.weight").sizes(), (std::vector<int64_t>{48, 64}));
  EXPECT_EQ(TensorAt(pruned, "layers.1.attn.proj.weight").sizes(), (std::vector<int64_t>{64, 16}));
  EXPECT_EQ(TensorAt(pruned, "layers.0.ffn.fc2.weight").sizes(), (std::vector<int64_t>{64, 86}));
  const auto expected = Output(zeroed);
  const auto actual = Output(pruned);
  EXPECT_TRUE(torch::allclose(actual, expected, 1e-5, 1e-5))
      << (actual - expected).abs().max().item<double>();
  // The removed heads and units mattered: zeroing them changed the output.
  EXPECT_GT((unpruned_output - expected).abs().max().item<double>(), 1e-3);
}

TEST(TransformerPrune, WeightNormIsTheNormOfEachHeadsAndUnitsWeights) {
  auto model = Transformer();
  const auto layers = FindEncoderLayers(model);
  const auto scores = WeightNormScores(EncoderTensors(model, layers), layers);
  ASSERT_EQ(scores.heads.size(), 2u);
  ASSERT_EQ(scores.heads[1].size(), 4u);
  ASSERT_EQ(scores.units[0].size(), 256u);
  const auto qkv = TensorAt(model, "layers.1.attn.qkv.weight").view({3, 4, 16, 64});
  const auto bias = TensorAt(model, "layers.1.attn.qkv.bias").view({3, 4, 16});
  const auto proj = TensorAt(model, "layers.1.attn.proj.weight").view({64, 4, 16});
  for (int64_t head = 0; head < 4; ++head) {
    const double squares = qkv.select(1, head).pow(2).sum().item<double>() +
                           bias.select(1, head).pow(2).sum().item<double>() +
                           proj.select(1, head).pow(2).sum().item<double>();
    EXPECT_NEAR(scores.heads[1][head], std::sqrt(squares), 1e-4) << head;
  }
  const double unit = TensorAt(model, "layers.0.ffn.fc1.weight")[7].pow(2).sum().item<double>() +
                      std::pow(TensorAt(model, "layers.0.ffn.fc1.bias")[7].item<double>(), 2) +
                      TensorAt(model, "layers.0.ffn.fc2.weight").select(1, 7).pow(2).sum().item<double>();
  EXPECT_NEAR(scores.units[0][7], std::sqrt(unit), 1e-4);
}

}  // namespace
}  // namespace slim::prune
