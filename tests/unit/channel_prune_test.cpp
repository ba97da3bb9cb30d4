// The channel graph of ChannelPrune on hand-built TorchScript models, one coupling each,
// channel removal, and the importance criteria.
#include <gtest/gtest.h>
#include <torch/script.h>
#include <torch/torch.h>

#include <algorithm>
#include <string>
#include <vector>

#include "runtime/base/torch_compat.h"
#include "strategies/graph/conv_groups.h"
#include "strategies/prune/channel_graph.h"
#include "strategies/prune/channel_importance.h"
#include "strategies/prune/channel_removal.h"
#include "strategies/prune/channel_selection.h"
#include "strategies/prune/ratio_search.h"

namespace slim::prune {
namespace {

using Parameters = std::vector<std::pair<std::string, torch::Tensor>>;

// A module holding `parameters` whose forward is `body` (4-space indented lines).
torch::jit::Module Model(const Parameters& parameters, const std::vector<std::string>& body,
                         const std::vector<std::pair<std::string, int64_t>>& ints = {}) {
  static int count = 0;
  torch::jit::Module module("__torch__.ChannelTest" + std::to_string(count++));
  for (const auto& [name, value] : parameters) module.register_parameter(name, value, false);
  for (const auto& [name, value] : ints) module.register_attribute(name, c10::IntType::get(), value);
  std::string source = "def forward(self, x):\n";
  for (const auto& line : body) source += "    " + line + "\n";
  module.define(source);
  module.eval();
  return module;
}

std::string Conv(const std::string& input, const std::string& weight, int stride = 1,
                 const std::string& groups = "1") {
  const auto s = std::to_string(stride);
  return "torch.conv2d(" + input + ", self." + weight + ", None, [" + s + ", " + s +
         "], [1, 1], [1, 1], " + groups + ")";
}

torch::Tensor Weight(int64_t out, int64_t in, int64_t kernel = 3) {
  return torch::randn({out, in, kernel, kernel});
}

// Producers of each group, in group order.
std::vector<std::vector<std::string>> ProducersOf(const ChannelGraph& graph) {
  std::vector<std::vector<std::string>> producers;
  for (const auto& group : graph.groups) producers.push_back(group.producers);
  return producers;
}

size_t AxisOf(const ChannelGraph& graph, const std::string& tensor, int64_t dim) {
  for (size_t i = 0; i < graph.axes.size(); ++i) {
    if (graph.axes[i].tensor == tensor && graph.axes[i].dim == dim) return i;
  }
  ADD_FAILURE() << "no axis " << tensor << "@" << dim;
  return 0;
}

// The [begin, end) slices of `tensor`@`dim` that channel `channel` of `group` owns.
std::vector<std::pair<int64_t, int64_t>> Slices(const ChannelGraph& graph, const ChannelGroup& group,
                                                size_t channel, const std::string& tensor,
                                                int64_t dim) {
  const auto axis = AxisOf(graph, tensor, dim);
  std::vector<std::pair<int64_t, int64_t>> slices;
  for (const auto& slice : group.channels[channel].slices) {
    if (slice.axis == axis) slices.emplace_back(slice.begin, slice.end);
  }
  std::sort(slices.begin(), slices.end());
  return slices;
}

// Removes the `count` least important channels (l1_norm) of each group of `model` in
// place; returns the graph it used.
ChannelGraph Prune(torch::jit::Module& model, const at::Tensor& example, int64_t count) {
  auto graph = BuildChannelGraph(model, example);
  const auto originals = AxisTensors(model, graph);
  std::vector<std::vector<int64_t>> removed;
  for (const auto& group : graph.groups) {
    removed.push_back(LeastImportant(ChannelImportance(originals, graph, group, "l1_norm"), count));
  }
  RemoveChannels(model, originals, KeptIndices(graph, originals, removed), graph.depthwise_weights);
  return graph;
}

torch::Tensor Forward(torch::jit::Module& model, const torch::Tensor& input) {
  torch::NoGradGuard no_grad;
  return model.forward({input}).toTensor();
}

TEST(ChannelGraph, ResidualAddAcrossADownsampleTiesTheStreams) {
  torch::manual_seed(0);
  auto model = Model({{"w0", Weight(4, 3)}, {"w1", Weight(4, 4)}, {"w2", Weight(6, 4)},
                      {"wd", Weight(6, 4, 1)}, {"fc", torch::randn({5, 6})}},
                     {"s = " + Conv("x", "w0"), "y = torch.relu(s + " + Conv("torch.relu(s)", "w1") + ")",
                      "z = " + Conv("y", "w2", 2) + " + torch.conv2d(y, self.wd, None, [2, 2])",
                      "return torch.linear(z.mean([2, 3]), self.fc, None)"});
  const auto graph = BuildChannelGraph(model, torch::randn({1, 3, 8, 8}));
  EXPECT_EQ(ProducersOf(graph), (std::vector<std::vector<std::string>>{{"w0", "w1"}, {"w2", "wd"}}));
  EXPECT_EQ(graph.groups[0].channels.size(), 4u);
  EXPECT_EQ(graph.groups[1].channels.size(), 6u);
  // Channel 2 of the second stream: rows of w2 and wd, column 2 of fc.
  EXPECT_EQ(Slices(graph, graph.groups[1], 2, "fc", 1), (std::vector<std::pair<int64_t, int64_t>>{{2, 3}}));
  EXPECT_EQ(Slices(graph, graph.groups[1], 2, "wd", 0), (std::vector<std::pair<int64_t, int64_t>>{{2, 3}}));
  ASSERT_EQ(graph.fixed.size(), 1u);
  EXPECT_EQ(graph.fixed[0].producers, std::vector<std::string>{"fc"});
  EXPECT_EQ(graph.fixed[0].reason, "the model's output");
}

TEST(ChannelGraph, ArithmeticOnTensorsWithoutChannelsTiesNothing) {
  torch::manual_seed(0);
  auto model = Model({{"w1", Weight(4, 3)}, {"fc", torch::randn({5, 4})}},
                     {"y = " + Conv("x * 0.5 + x", "w1"),
                      "return torch.linear(y.mean([2, 3]), self.fc, None)"});
  const auto graph = BuildChannelGraph(model, torch::randn({1, 3, 4, 4}));
  EXPECT_EQ(ProducersOf(graph), (std::vector<std::vector<std::string>>{{"w1"}}));
}

TEST(ChannelGraph, ConcatOffsetsTheSecondInput) {
  torch::manual_seed(0);
  auto model = Model({{"wa", Weight(3, 3)}, {"wb", Weight(5, 3)}, {"wc", Weight(4, 8)}},
                     {"c = torch.cat([" + Conv("x", "wa") + ", " + Conv("x", "wb") + "], 1)",
                      "return " + Conv("c", "wc") + ".mean([2, 3])"});
  const auto graph = BuildChannelGraph(model, torch::randn({1, 3, 6, 6}));
  ASSERT_EQ(ProducersOf(graph), (std::vector<std::vector<std::string>>{{"wa"}, {"wb"}}));
  EXPECT_EQ(Slices(graph, graph.groups[0], 1, "wc", 1), (std::vector<std::pair<int64_t, int64_t>>{{1, 2}}));
  EXPECT_EQ(Slices(graph, graph.groups[1], 1, "wc", 1), (std::vector<std::pair<int64_t, int64_t>>{{4, 5}}));
}

TEST(ChannelGraph, ChunkAndShuffleTieTheChannelsThatMustGoTogether) {
  torch::manual_seed(0);
  auto model = Model(
      {{"w1", Weight(8, 3)}, {"w2", Weight(4, 4)}, {"w3", Weight(4, 8)}},
      {"y = " + Conv("x", "w1"), "a, b = y.chunk(2, 1)", "o = torch.cat([a, " + Conv("b", "w2") + "], 1)",
       "n, c, h, w = o.size()", "o = o.view(n, 2, c // 2, h, w).transpose(1, 2).contiguous()",
       "o = o.view(n, -1, h, w)", "return " + Conv("o", "w3") + ".mean([2, 3])"});
  const auto example = torch::randn({1, 3, 6, 6});
  const auto graph = BuildChannelGraph(model, example);
  // y's channel i and i + 4 go together (equal chunks); the shuffle ties a's channel j with
  // the conv's channel j, so w1's rows j, j + 4 and w2's row j are one channel.
  ASSERT_EQ(graph.groups.size(), 1u) << graph.fixed.size();
  const auto& group = graph.groups[0];
  EXPECT_EQ(group.channels.size(), 4u);
  EXPECT_EQ(Slices(graph, group, 1, "w1", 0), (std::vector<std::pair<int64_t, int64_t>>{{1, 2}, {5, 6}}));
  EXPECT_EQ(Slices(graph, group, 1, "w2", 0), (std::vector<std::pair<int64_t, int64_t>>{{1, 2}}));
  // After the shuffle, channel 2j is a's j and 2j + 1 the conv's j.
  EXPECT_EQ(Slices(graph, group, 1, "w3", 1),
            (std::vector<std::pair<int64_t, int64_t>>{{2, 3}, {3, 4}}));
  auto pruned = model.clone();
  Prune(pruned, example, 1);
  EXPECT_EQ(Forward(pruned, example).sizes(), (std::vector<int64_t>{1, 4}));
}

TEST(ChannelGraph, DepthwiseConvolutionTiesItsInputAndOutput) {
  torch::manual_seed(0);
  auto model = Model({{"w1", Weight(6, 3, 1)}, {"dw", Weight(6, 1)}, {"w3", Weight(4, 6, 1)}},
                     {"y = " + Conv(Conv("x", "w1"), "dw", 1, "self.groups"),
                      "return " + Conv("y", "w3") + ".mean([2, 3])"},
                     {{"groups", 6}});
  const auto example = torch::randn({1, 3, 5, 5});
  const auto graph = BuildChannelGraph(model, example);
  ASSERT_EQ(ProducersOf(graph), (std::vector<std::vector<std::string>>{{"w1", "dw"}}));
  EXPECT_EQ(graph.depthwise_weights, std::vector<std::string>{"dw"});
  Prune(model, example, 2);
  EXPECT_EQ(model.attr("groups").toInt(), 4);
  EXPECT_EQ(model.attr("dw").toTensor().size(0), 4);
  EXPECT_EQ(Forward(model, example).sizes(), (std::vector<int64_t>{1, 4}));
}

TEST(ChannelGraph, SqueezeExcitationScaleJoinsItsStream) {
  torch::manual_seed(0);
  auto model = Model({{"w1", Weight(8, 3)}, {"f1", Weight(2, 8, 1)}, {"f2", Weight(8, 2, 1)}},
                     {"y = " + Conv("x", "w1"), "p = torch.adaptive_avg_pool2d(y, [1, 1])",
                      "s = torch.sigmoid(torch.conv2d(torch.relu(torch.conv2d(p, self.f1)), self.f2))",
                      "return (y * s).mean([2, 3])"});
  const auto graph = BuildChannelGraph(model, torch::randn({1, 3, 6, 6}));
  EXPECT_EQ(ProducersOf(graph), (std::vector<std::vector<std::string>>{{"f1"}}));
  // The stream is the output: fixed, with w1 and f2 together.
  ASSERT_EQ(graph.fixed.size(), 1u);
  EXPECT_EQ(graph.fixed[0].producers, (std::vector<std::string>{"w1", "f2"}));
}

TEST(ChannelGraph, FlattenGivesEachChannelItsSpatialBlock) {
  torch::manual_seed(0);
  auto model = Model({{"w1", Weight(4, 3)}, {"fc", torch::randn({5, 16})}},
                     {"return torch.linear(torch.flatten(" + Conv("x", "w1") + ", 1), self.fc, None)"});
  const auto graph = BuildChannelGraph(model, torch::randn({1, 3, 2, 2}));
  ASSERT_EQ(graph.groups.size(), 1u);
  EXPECT_EQ(Slices(graph, graph.groups[0], 2, "fc", 1), (std::vector<std::pair<int64_t, int64_t>>{{8, 12}}));
}

TEST(ChannelGraph, UnknownOperationKeepsItsInputWholeAndNamesIt) {
  torch::manual_seed(0);
  auto model = Model({{"w1", Weight(4, 3)}, {"w2", Weight(4, 3)}},
                     {"y = torch.pixel_shuffle(" + Conv("x", "w1") + ", 2)",
                      "return " + Conv("x", "w2") + ".mean([2, 3]) + y.mean([1, 2, 3]).unsqueeze(1)"});
  const auto graph = BuildChannelGraph(model, torch::randn({1, 3, 4, 4}));
  EXPECT_TRUE(graph.groups.empty());
  ASSERT_EQ(graph.fixed.size(), 2u);
  EXPECT_EQ(graph.fixed[0].producers, std::vector<std::string>{"w1"});
  EXPECT_EQ(graph.fixed[0].reason, "read by aten::pixel_shuffle in the model's forward");
}

TEST(ChannelGraph, DepthwiseConvolutionWithConstantGroupsBecomesPrunable) {
  torch::manual_seed(0);
  // As scripted nn.Conv2d: `groups` is a constant of the class and a literal in its code.
  torch::jit::Module depthwise("__torch__.ConstantGroupsConv");
  depthwise.type()->addConstant("groups", 6);
  depthwise.register_parameter("weight", Weight(6, 1), false);
  depthwise.define("def forward(self, x):\n    return " + Conv("x", "weight", 1, "6") + "\n");
  torch::jit::Module model("__torch__.ConstantGroupsModel");
  model.register_parameter("w1", Weight(6, 3, 1), false);
  model.register_parameter("w3", Weight(4, 6, 1), false);
  model.register_module("dw", depthwise);
  model.define("def forward(self, x):\n    y = self.dw.forward(" + Conv("x", "w1") +
               ")\n    return " + Conv("y", "w3") + ".mean([2, 3])\n");
  model.eval();
  const auto example = torch::randn({1, 3, 5, 5});
  EXPECT_TRUE(BuildChannelGraph(model, example).depthwise_weights.empty())
      << "a literal group count keeps the channels";

  EXPECT_EQ(graph::ReadConvolutionGroupsFromAttributes(model), 1);
  EXPECT_FALSE(depthwise.type()->hasConstant("groups"));
  EXPECT_EQ(depthwise.attr("groups").toInt(), 6);
  const auto graph = Prune(model, example, 2);
  EXPECT_EQ(graph.depthwise_weights, std::vector<std::string>{"dw.weight"});
  EXPECT_EQ(depthwise.attr("groups").toInt(), 4);
  const auto w1 = model.attr("w1").toTensor(), w3 = model.attr("w3").toTensor();
  const auto dw = depthwise.attr("weight").toTensor();
  ASSERT_EQ(dw.size(0), 4);
  torch::NoGradGuard no_grad;
  const auto expected = torch::conv2d(
      torch::conv2d(torch::conv2d(example, w1, {}, 1, 1), dw, {}, 1, 1, 1, 4), w3, {}, 1, 1);
  EXPECT_TRUE(torch::allclose(Forward(model, example), expected.mean({2, 3})));
}

TEST(ChannelRemoval, RemovingAZeroChannelKeepsTheOutputs) {
  torch::manual_seed(0);
  auto w0 = Weight(4, 3);
  auto w1 = Weight(4, 4);
  auto fc = torch::randn({5, 4});
  w0[2].zero_();
  w1[2].zero_();
  auto model = Model({{"w0", w0}, {"w1", w1}, {"fc", fc}, {"g", torch::rand({4}) + 0.5},
                      {"b", torch::randn({4})}, {"m", torch::randn({4})}, {"v", torch::rand({4}) + 0.5}},
                     {"s = " + Conv("x", "w0"),
                      "s = torch.batch_norm(s, self.g, self.b, self.m, self.v, False, 0.1, 1e-5, False)",
                      "y = torch.relu(s + " + Conv("torch.relu(s)", "w1") + ")",
                      "return torch.linear(y.mean([2, 3]), self.fc, None)"});
  // Channel 2 of the stream carries BatchNorm's constant; with its BN entries zero too it
  // contributes nothing.
  {
    torch::NoGradGuard no_grad;
    for (const auto* name : {"g", "b", "m"}) model.attr(name).toTensor()[2].zero_();
  }
  const auto example = torch::randn({2, 3, 6, 6});
  const auto before = Forward(model, example);
  const auto graph = Prune(model, example.narrow(0, 0, 1), 1);
  EXPECT_EQ(model.attr("w0").toTensor().size(0), 3);
  EXPECT_EQ(model.attr("fc").toTensor().size(1), 3);
  EXPECT_EQ(model.attr("v").toTensor().size(0), 3);
  EXPECT_TRUE(torch::equal(model.attr("w0").toTensor(), w0.index({torch::tensor({0, 1, 3})})));
  EXPECT_TRUE(torch::equal(Forward(model, example), before));
}

TEST(ChannelRemoval, PruningFurtherCarriesTheOptimizerStateOfTheChannelsThatStay) {
  torch::manual_seed(0);
  auto model = Model({{"w0", Weight(4, 3).requires_grad_()}, {"fc", torch::randn({5, 4}).requires_grad_()}},
                     {"return torch.linear(" + Conv("x", "w0") + ".mean([2, 3]), self.fc, None)"});
  const auto example = torch::randn({1, 3, 4, 4});
  const auto graph = BuildChannelGraph(model, example);
  ASSERT_EQ(graph.groups.size(), 1u);
  std::vector<torch::Tensor> parameters;
  for (const auto& parameter : model.parameters()) parameters.push_back(parameter);
  torch::optim::SGD optimizer(parameters, torch::optim::SGDOptions(0.1).momentum(0.9));
  model.forward({example}).toTensor().sum().backward();
  optimizer.step();
  const auto momentum_of = [&](const std::string& name) {
    const auto key = compat::OptimizerStateKey(model.attr(name).toTensor());
    return static_cast<torch::optim::SGDParamState&>(*optimizer.state().at(key)).momentum_buffer();
  };
  const auto w0_momentum = momentum_of("w0").clone();
  const auto fc_momentum = momentum_of("fc").clone();
  const auto originals = AxisTensors(model, graph);
  // Channel 1 goes, then channel 3.
  KeptChannels kept;
  for (const std::vector<int64_t>& removed : {std::vector<int64_t>{1}, std::vector<int64_t>{1, 3}}) {
    const auto full = FullTensors(model, originals, kept);
    const auto after = KeptIndices(graph, originals, {removed});
    RemoveMoreChannels(model, &optimizer, full, kept, after, graph.depthwise_weights);
    kept = after;
  }
  const auto stay = torch::tensor({0, 2});
  EXPECT_TRUE(torch::equal(model.attr("w0").toTensor(), originals.at("w0").index_select(0, stay)));
  EXPECT_TRUE(torch::equal(momentum_of("w0"), w0_momentum.index_select(0, stay)));
  EXPECT_TRUE(torch::equal(momentum_of("fc"), fc_momentum.index_select(1, stay)));
  EXPECT_TRUE(model.attr("w0").toTensor().requires_grad());
  EXPECT_EQ(optimizer.state().size(), 2u);
}

TEST(ChannelImportance, CriteriaMatchTheirDefinitions) {
  auto weight = torch::tensor({1.0, -2.0, 0.5, 0.5, 3.0, 0.0}).view({3, 2, 1, 1});
  auto gamma = torch::tensor({0.5, -4.0, 1.0});
  auto model = Model({{"w", weight}, {"g", gamma}, {"b", torch::zeros({3})}, {"m", torch::zeros({3})},
                      {"v", torch::ones({3})}, {"fc", torch::ones({2, 3})}},
                     {"y = torch.batch_norm(torch.conv2d(x, self.w), self.g, self.b, self.m, self.v, "
                      "False, 0.1, 1e-5, False)",
                      "return torch.linear(y.mean([2, 3]), self.fc, None)"});
  const auto graph = BuildChannelGraph(model, torch::randn({1, 2, 3, 3}));
  ASSERT_EQ(graph.groups.size(), 1u);
  const auto& group = graph.groups[0];
  const auto normalised = [](std::vector<double> scores) {
    double mean = 0;
    for (const auto s : scores) mean += s / static_cast<double>(scores.size());
    for (auto& s : scores) s /= mean;
    return scores;
  };
  const auto expect_near = [](const std::vector<double>& actual, const std::vector<double>& expected) {
    ASSERT_EQ(actual.size(), expected.size());
    for (size_t i = 0; i < actual.size(); ++i) EXPECT_NEAR(actual[i], expected[i], 1e-9) << i;
  };
  const auto tensors = AxisTensors(model, graph);
  expect_near(ChannelImportance(tensors, graph, group, "l1_norm"), normalised({3.0, 1.0, 3.0}));
  expect_near(ChannelImportance(tensors, graph, group, "bn_scale"), normalised({0.5, 4.0, 1.0}));
  // Rows (1, -2), (0.5, 0.5), (3, 0): distances d01 = sqrt(6.5), d02 = sqrt(8), d12 = sqrt(6.5).
  const double d01 = std::sqrt(6.5), d02 = std::sqrt(8.0), d12 = std::sqrt(6.5);
  expect_near(ChannelImportance(tensors, graph, group, "geometry_median"),
              normalised({d01 + d02, d01 + d12, d02 + d12}));
}

TEST(ChannelImportance, ACoupledGroupAveragesItsLayers) {
  // Channels 0..2 of the sum of two convolutions: one group with two producing weights.
  auto model = Model({{"w1", torch::tensor({1.0, 2.0, 3.0}).view({3, 1, 1, 1})},
                      {"w2", torch::tensor({4.0, 4.0, 1.0}).view({3, 1, 1, 1})},
                      {"fc", torch::ones({2, 3})}},
                     {"y = torch.conv2d(x, self.w1) + torch.conv2d(x, self.w2)",
                      "return torch.linear(y.mean([2, 3]), self.fc, None)"});
  const auto graph = BuildChannelGraph(model, torch::randn({1, 1, 3, 3}));
  ASSERT_EQ(graph.groups.size(), 1u);
  const auto scores = ChannelImportance(AxisTensors(model, graph), graph, graph.groups[0], "l1_norm");
  // w1 / mean 2 = (0.5, 1, 1.5); w2 / mean 3 = (4/3, 4/3, 1/3); their mean per channel.
  const std::vector<double> expected = {(0.5 + 4.0 / 3) / 2, (1 + 4.0 / 3) / 2, (1.5 + 1.0 / 3) / 2};
  ASSERT_EQ(scores.size(), expected.size());
  for (size_t i = 0; i < scores.size(); ++i) EXPECT_NEAR(scores[i], expected[i], 1e-9) << i;
}

TEST(ChannelSelection, CountsRoundDownAndToMultiples) {
  EXPECT_EQ(ChannelsKept(10, 0.5, 1), 5);
  EXPECT_EQ(ChannelsKept(10, 0.55, 1), 5);   // floor(5.5) removed
  EXPECT_EQ(ChannelsKept(1, 0.9, 1), 1);     // never all
  EXPECT_EQ(ChannelsKept(20, 0.5, 8), 16);   // 10 rounded up to 16
  EXPECT_EQ(ChannelsKept(12, 0.1, 8), 12);   // 11 rounded up, capped
  EXPECT_EQ(LeastImportant({3, 1, 2, 1}, 2), (std::vector<int64_t>{1, 3}));
  EXPECT_EQ(LeastImportant({1, 1, 1}, 1), (std::vector<int64_t>{2}));
  // Global: group 0's channels score low, so it gives most of the 4 channels removed.
  const auto counts = RemovedCounts({{0.1, 0.2, 0.3, 5.0}, {1, 2, 3, 4}}, {0.5, 0.5}, 1, true);
  EXPECT_EQ(counts, (std::vector<int64_t>{3, 1}));
  EXPECT_EQ(RemovedCounts({{0.1, 0.2, 0.3, 5.0}, {1, 2, 3, 4}}, {0.5, 0}, 1, false),
            (std::vector<int64_t>{2, 0}));
}

TEST(ChannelSensitivity, GreedyRatiosTakeTheCheapestMacsFirst) {
  // Dense 100 MACs at top-1 0.9. Group a saves 20 MACs per step at no cost until its
  // third step; group b saves 10 per step at 0.5 points each.
  PruneSensitivityReport report;
  report.dense.top1 = 0.9;
  report.dense_macs = 100;
  const auto result = [](double ratio, double top1, int64_t macs) {
    RatioResult r{ratio, {}, macs};
    r.metric.top1 = top1;
    return r;
  };
  report.weights.push_back({"a", {result(0.1, 0.9, 80), result(0.2, 0.9, 60), result(0.3, 0.8, 40)}, 0.2});
  report.weights.push_back({"b", {result(0.1, 0.895, 90), result(0.2, 0.89, 80)}, 0.2});
  // To 60: both of a's free steps. To 50: then b's first step (0.5 points per 10 MACs),
  // cheaper than a's third (10 points per 20).
  EXPECT_EQ(GreedyRatiosForMacs(report, 0.6), (std::vector<double>{0.2, 0}));
  EXPECT_EQ(GreedyRatiosForMacs(report, 0.5), (std::vector<double>{0.2, 0.1}));
  // Out of steps: everything at its largest ratio.
  EXPECT_EQ(GreedyRatiosForMacs(report, 0.01), (std::vector<double>{0.3, 0.2}));
}

TEST(ChannelSensitivity, LatencyAwareRatiosJumpToWhereTheTimeSteps) {
  // Dense 100 MACs, 10 ms, top-1 0.9. Group a's first two ratios save MACs but no time (a
  // kernel's block of channels not yet emptied), its third 6 ms for 0.2 points; group b
  // saves 1 ms a step for 0.1 point each; group c saves MACs and never time.
  PruneSensitivityReport report;
  report.dense.top1 = 0.9;
  report.dense_macs = 100;
  report.dense_latency_ms = 10;
  const auto result = [](double ratio, double top1, int64_t macs, double latency_ms) {
    RatioResult r{ratio, {}, macs, latency_ms};
    r.metric.top1 = top1;
    return r;
  };
  report.weights.push_back(
      {"a", {result(0.1, 0.9, 90, 10), result(0.2, 0.9, 80, 10), result(0.3, 0.898, 70, 4)}, 0.3});
  report.weights.push_back({"b", {result(0.1, 0.899, 95, 9), result(0.2, 0.898, 90, 8)}, 0.2});
  report.weights.push_back({"c", {result(0.1, 0.9, 95, 10)}, 0.1});
  // By MACs, a's free steps and c's come first; by time, a jumps to its third ratio at once.
  EXPECT_EQ(GreedyRatiosForMacs(report, 0.8), (std::vector<double>{0.2, 0, 0}));
  EXPECT_EQ(GreedyRatiosForLatency(report, 0.8), (std::vector<double>{0.3, 0, 0}));
  // Then b's steps; when no move saves time, c's MACs.
  EXPECT_EQ(GreedyRatiosForLatency(report, 0.6), (std::vector<double>{0.3, 0.2, 0}));
  EXPECT_EQ(GreedyRatiosForLatency(report, 0.01), (std::vector<double>{0.3, 0.2, 0.1}));
}

}  // namespace
}  // namespace slim::prune
