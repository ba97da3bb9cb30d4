// ResRep's compactors on the builtin ResNet-20: inserted as identities, merged with their
// convolution and BatchNorm exactly, and pruned exactly where their rows are zero.
#include <gtest/gtest.h>
#include <torch/script.h>
#include <torch/torch.h>

#include <string>
#include <vector>

#include "runtime/models/builtin_models.h"
#include "strategies/graph/conv_bn_pairs.h"
#include "strategies/prune/channel_graph.h"
#include "strategies/prune/compactors.h"

namespace slim::prune {
namespace {

torch::jit::Module ResNet() {
  torch::manual_seed(5);
  return models::BuildBuiltinModel("resnet20", models::ModelShape{{3, 16, 16}, 10});
}

torch::Tensor Images() {
  torch::manual_seed(6);
  return torch::randn({2, 3, 16, 16});
}

torch::Tensor Output(torch::jit::Module model) {
  model.eval();
  torch::NoGradGuard no_grad;
  return model.forward({Images()}).toTensor();
}

// Gives every compactor a random mixing and every BatchNorm random statistics.
void Randomise(torch::jit::Module& model, const std::vector<Compactor>& compactors) {
  torch::NoGradGuard no_grad;
  for (const auto& compactor : compactors) {
    auto weight = TensorAt(model, compactor.weight);
    weight.add_(torch::randn_like(weight) * 0.2);
    const auto bn = compactor.pair.bn_path;
    TensorAt(model, bn + ".running_mean").normal_(0, 0.5);
    TensorAt(model, bn + ".running_var").uniform_(0.5, 2);
    TensorAt(model, bn + ".weight").uniform_(0.5, 1.5);
    TensorAt(model, bn + ".bias").normal_(0, 0.3);
  }
}

TEST(ResRep, CompactorsStartAsIdentities) {
  auto model = ResNet();
  const auto expected = Output(model);
  InsertCompactors(model, graph::FindConvBatchNorms(model));
  EXPECT_TRUE(torch::allclose(Output(model), expected, 1e-5, 1e-5));
}

TEST(ResRep, MergedConvolutionBatchNormAndCompactorComputeWhatTheyDid) {
  auto model = ResNet();
  const auto graph = BuildChannelGraph(model, Images().slice(0, 0, 1));
  const auto compactors = InsertCompactors(model, graph::FindConvBatchNorms(model));
  Randomise(model, compactors);
  const auto merged = MergedAndPruned(model, compactors, graph,
                                      std::vector<std::vector<int64_t>>(graph.groups.size()));
  for (const auto& child : merged.named_modules()) {
    EXPECT_EQ(child.name.find("compactor"), std::string::npos) << child.name;
  }
  const auto expected = Output(model);
  const auto actual = Output(merged);
  EXPECT_TRUE(torch::allclose(actual, expected, 1e-4, 1e-4)) << (actual - expected).abs().max().item<double>();
}

TEST(ResRep, ChannelsWithZeroCompactorRowsAreRemovedExactly) {
  auto model = ResNet();
  const auto graph = BuildChannelGraph(model, Images().slice(0, 0, 1));
  const auto compactors = InsertCompactors(model, graph::FindConvBatchNorms(model));
  Randomise(model, compactors);
  // Group 0 is the stem's residual stream (several producers), group 1 one block's first
  // convolution: zero the rows of their channels 1 and 3 in every producer's compactor.
  std::vector<std::vector<int64_t>> removed(graph.groups.size());
  for (const size_t g : {size_t{0}, size_t{1}}) {
    removed[g] = {1, 3};
    for (const auto& producer : graph.groups[g].producers) {
      for (const auto& compactor : compactors) {
        if (compactor.pair.conv_path + ".weight" != producer) continue;
        torch::NoGradGuard no_grad;
        auto rows = TensorAt(model, compactor.weight).flatten(1);
        rows[1].zero_();
        rows[3].zero_();
      }
    }
  }
  const auto merged = MergedAndPruned(model, compactors, graph, removed);
  const auto first = graph.groups[1].producers.front();
  EXPECT_EQ(TensorAt(merged, first).size(0), TensorAt(model, first).size(0) - 2);
  const auto expected = Output(model);
  const auto actual = Output(merged);
  EXPECT_TRUE(torch::allclose(actual, expected, 1e-4, 1e-4)) << (actual - expected).abs().max().item<double>();
}

}  // namespace
}  // namespace slim::prune
