// Quantization pieces against references computed independently: thresholds from raw
// samples by sorting and brute force, KL from its definition, the weight correction from
// its statistics; and the graph pass on the builtin models.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <set>

#include "runtime/base/errors.h"
#include "runtime/models/builtin_models.h"
#include "strategies/graph/conv_bn_pairs.h"
#include "strategies/graph/layer_finder.h"
#include "strategies/quant/accumulator_bias.h"
#include "strategies/quant/batch_norm_folding.h"
#include "strategies/quant/bias_correction.h"
#include "strategies/quant/quant_export.h"
#include "strategies/quant/quantize_pass.h"
#include "strategies/quant/quantizer_modules.h"
#include "strategies/quant/sensitivity.h"
#include "strategies/quant/threshold_search.h"

namespace slim::quant {
namespace {

// |x| of a Laplace-like heavy-tailed distribution with a few large outliers.
std::vector<double> HeavyTailedSamples(size_t count) {
  std::mt19937 generator(7);
  std::exponential_distribution<double> body(1.0);
  std::vector<double> samples(count);
  for (auto& sample : samples) sample = body(generator);
  for (size_t i = 0; i < count / 2000; ++i) samples[i] = 30.0 + static_cast<double>(i);
  return samples;
}

std::vector<double> Histogram(const std::vector<double>& samples, double max) {
  std::vector<double> histogram(kHistogramBins, 0.0);
  for (double sample : samples) {
    const auto bin = std::min<int64_t>(static_cast<int64_t>(sample / max * kHistogramBins),
                                       kHistogramBins - 1);
    histogram[bin] += 1;
  }
  return histogram;
}

// Mean squared error of quantizing `samples` to the symmetric grid of threshold T.
double QuantizationMse(const std::vector<double>& samples, double threshold, int64_t quant_max) {
  const double step = threshold / static_cast<double>(quant_max);
  double total = 0;
  for (double sample : samples) {
    const double level = std::min(std::round(sample / step), static_cast<double>(quant_max));
    total += (sample - level * step) * (sample - level * step);
  }
  return total / static_cast<double>(samples.size());
}

TEST(ThresholdSearch, PercentileMatchesTheSortedSamples) {
  auto samples = HeavyTailedSamples(200000);
  const double max = *std::max_element(samples.begin(), samples.end());
  const double threshold = PercentileThreshold(Histogram(samples, max), max, 0.999);
  std::sort(samples.begin(), samples.end());
  const double quantile = samples[static_cast<size_t>(0.999 * samples.size())];
  EXPECT_NEAR(threshold, quantile, max / kHistogramBins);
}

TEST(ThresholdSearch, MseIsAsGoodAsBruteForceOnTheSamples) {
  const auto samples = HeavyTailedSamples(50000);
  const double max = *std::max_element(samples.begin(), samples.end());
  const double threshold = MseThreshold(Histogram(samples, max), max, 127);
  double best = std::numeric_limits<double>::infinity();
  for (int step = 1; step <= 4000; ++step) {
    best = std::min(best, QuantizationMse(samples, max * step / 4000.0, 127));
  }
  EXPECT_LE(QuantizationMse(samples, threshold, 127), best * 1.02);
}

// KL(P || Q) written from the definition with tensors, independently of the production
// loop: P = clipped histogram with the tail folded in; Q = P's first `clip` bins merged
// into `levels` groups and spread back over the bins where P is non-zero.
double ReferenceKl(const std::vector<double>& histogram, int64_t clip, int64_t levels) {
  auto all = torch::tensor(histogram, torch::kFloat64);
  auto p = all.slice(0, 0, clip).clone();
  p[clip - 1] += all.slice(0, clip).sum();
  auto unfolded = all.slice(0, 0, clip);
  auto q = torch::zeros({clip}, torch::kFloat64);
  for (int64_t level = 0; level < levels; ++level) {
    const int64_t begin = level * clip / levels, end = (level + 1) * clip / levels;
    auto mask = p.slice(0, begin, end) > 0;
    const auto count = mask.sum().item<double>();
    if (count == 0) continue;
    q.slice(0, begin, end).masked_fill_(mask, unfolded.slice(0, begin, end).sum().item<double>() / count);
  }
  p = p / p.sum();
  q = (q / q.sum()).clamp_min(1e-12);
  auto nonzero = p > 0;
  return (p.masked_select(nonzero) * (p.masked_select(nonzero) / q.masked_select(nonzero)).log())
      .sum()
      .item<double>();
}

TEST(ThresholdSearch, KlPicksTheClipWithTheSmallestDivergence) {
  const auto samples = HeavyTailedSamples(100000);
  const double max = *std::max_element(samples.begin(), samples.end());
  const auto histogram = Histogram(samples, max);
  const double threshold = KlThreshold(histogram, max, 127);
  int64_t best_clip = 0;
  double best = std::numeric_limits<double>::infinity();
  for (int64_t clip = kHistogramBins / 2; clip <= kHistogramBins; ++clip) {
    if (histogram[clip - 1] == 0) continue;
    const double divergence = ReferenceKl(histogram, clip, 127);
    EXPECT_NEAR(ClippedKlDivergence(histogram, clip, 127), divergence, 1e-9) << clip;
    if (divergence < best) best = divergence, best_clip = clip;
  }
  EXPECT_DOUBLE_EQ(threshold, max * best_clip / kHistogramBins);
  EXPECT_LT(threshold, max);
}

TEST(BiasCorrection, RestoresEachChannelsMeanAndSpread) {
  torch::manual_seed(3);
  const auto weight = torch::randn({4, 3, 3, 3}) * torch::tensor({0.1, 1.0, 0.01, 2.0}).view({4, 1, 1, 1});
  const auto scale = weight.abs().amax({1, 2, 3}) / 7;
  const auto dequantized = torch::fake_quantize_per_channel_affine(
      weight, scale, torch::zeros({4}, torch::kInt32), 0, -7, 7);
  const auto corrected = CorrectWeightQuantization(weight, dequantized, true);
  for (int64_t c = 0; c < 4; ++c) {
    EXPECT_NEAR(corrected[c].mean().item<double>(), weight[c].mean().item<double>(), 1e-5);
    EXPECT_NEAR(corrected[c].std().item<double>(), weight[c].std().item<double>(), 1e-5);
  }
  EXPECT_GT((dequantized - weight).mean({1, 2, 3}).abs().max().item<double>(), 1e-4);
}

quant::QuantCommonOptions Options(std::vector<std::string> types) {
  quant::QuantCommonOptions options;
  options.quantize_op_types = std::move(types);
  return options;
}

// A builtin model drawn from `seed`: two calls with one seed give equal models.
torch::jit::Module SeededModel(const std::string& name, const models::ModelShape& shape,
                               uint64_t seed) {
  torch::manual_seed(seed);
  return models::BuildBuiltinModel(name, shape);
}

// Turns on every layer's input quantizer with the grid of [-8, 8].
void QuantizeInputs(const std::vector<QuantizedLayer>& layers) {
  for (const auto& layer : layers) {
    auto input_quant = layer.input_quant;
    input_quant.attr("scale").toTensor().fill_(8.0 / 127);
    SetQuantize(input_quant, true);
  }
}

TEST(QuantizePass, FindsTheLayersOfTheBuiltinModels) {
  auto resnet = models::BuildBuiltinModel("resnet20", {{3, 16, 16}, 5});
  EXPECT_EQ(InsertQuantizers(resnet, Options({"conv2d", "linear"}), false).layers.size(), 22u);
  auto mobilenet = models::BuildBuiltinModel("mobilenetv2", {{3, 16, 16}, 5});
  const auto depthwise = InsertQuantizers(mobilenet, Options({"depthwise_conv2d"}), false).layers;
  ASSERT_FALSE(depthwise.empty());
  for (const auto& layer : depthwise) {
    EXPECT_EQ(layer.layer.attr("weight").toTensor().size(1), 1) << layer.path;
  }
}

TEST(QuantizePass, PatternsExcludeModulesAndTheirChildren) {
  auto model = models::BuildBuiltinModel("resnet20", {{3, 16, 16}, 5});
  auto options = Options({"conv2d", "linear"});
  options.not_quant_pattern = {"layer1", "layer3.*.conv2", "fc"};
  const auto layers = InsertQuantizers(model, options, false).layers;
  EXPECT_EQ(layers.size(), 22u - 6 - 3 - 1);
  for (const auto& layer : layers) {
    EXPECT_NE(layer.path.rfind("layer1.", 0), 0u) << layer.path;
    EXPECT_NE(layer.path, "fc");
  }
  EXPECT_TRUE(graph::MatchesModulePattern("layer3", "layer3.0.downsample.0"));
  EXPECT_FALSE(graph::MatchesModulePattern("layer3", "layer30.conv"));
}

TEST(QuantizePass, QuantizedForwardIsCloseButNotEqualAndGradientsFlow) {
  auto model = SeededModel("resnet20", {{3, 16, 16}, 5}, 0);
  auto quantized_model = SeededModel("resnet20", {{3, 16, 16}, 5}, 0);
  model.eval();
  const auto input = torch::randn({4, 3, 16, 16});
  const auto reference = model.forward({input}).toTensor().detach();
  QuantizeInputs(InsertQuantizers(quantized_model, Options({"conv2d", "linear"}), false).layers);
  quantized_model.eval();
  const auto output = quantized_model.forward({input}).toTensor();
  const double error = ((output - reference).norm() / reference.norm()).item<double>();
  EXPECT_GT(error, 0);
  EXPECT_LT(error, 0.2);
  output.sum().backward();
  const auto grad = quantized_model.attr("conv1").toModule().attr("weight").toTensor().grad();
  ASSERT_TRUE(grad.defined());
  EXPECT_GT(grad.abs().sum().item<double>(), 0);
}

TEST(ActivationQuantizer, TrainingEstimatorMatchesFakeQuantizeAndPassesGradients) {
  QuantizerFactory factory;
  auto quantizer = factory.NewActivationQuantizer(/*bits=*/6, /*pact=*/false);
  quantizer.attr("scale").toTensor().fill_(0.07);
  SetQuantize(quantizer, true);
  torch::manual_seed(3);
  // Includes values past the clip (31 * 0.07) and exact half steps.
  auto input = torch::cat({torch::randn({4000}) * 2, torch::arange(-40, 40) * 0.035});
  const auto expected = torch::fake_quantize_per_tensor_affine(input, 0.07f, 0, -31, 31);
  quantizer.train();
  auto leaf = input.clone().requires_grad_();
  const auto output = quantizer.forward({leaf}).toTensor();
  EXPECT_TRUE(torch::equal(output, expected));
  const auto upstream = torch::randn_like(input);
  output.backward(upstream);
  EXPECT_TRUE(torch::equal(leaf.grad(), upstream));
  quantizer.eval();
  EXPECT_TRUE(torch::equal(quantizer.forward({input}).toTensor(), expected));
}

TEST(ActivationQuantizer, UnsignedGridHasTwiceTheLevelsAndClipsNegativesToZero) {
  QuantizerFactory factory;
  auto quantizer = factory.NewActivationQuantizer(/*bits=*/8, /*pact=*/false);
  SetActivationGrid(quantizer, ActivationGrid::kUnsigned, 8);
  EXPECT_EQ(quantizer.attr("quant_min").toInt(), 0);
  EXPECT_EQ(quantizer.attr("quant_max").toInt(), 255);
  quantizer.attr("scale").toTensor().fill_(0.05);
  SetQuantize(quantizer, true);
  // Negative values, exact half steps and values past the clip (255 * 0.05).
  const auto input = torch::cat({torch::arange(-100, 600) * 0.025, torch::rand({1000}) * 12.75});
  const auto expected = torch::fake_quantize_per_tensor_affine(input, 0.05f, 0, 0, 255);
  EXPECT_EQ(expected.min().item<float>(), 0);
  quantizer.train();
  EXPECT_TRUE(torch::equal(quantizer.forward({input}).toTensor(), expected));
  quantizer.eval();
  EXPECT_TRUE(torch::equal(quantizer.forward({input}).toTensor(), expected));
  SetExportQdq(quantizer, true);  // uint8 quantize/dequantize pairs
  EXPECT_TRUE(torch::equal(quantizer.forward({input}).toTensor(), expected));
  // Over [0, T] the unsigned grid has 256 levels, the symmetric one of the same T 128.
  const auto span = torch::linspace(0, 12.75, 5000);
  EXPECT_EQ(std::get<0>(torch::_unique(quantizer.forward({span}).toTensor())).numel(), 256);
  SetActivationGrid(quantizer, ActivationGrid::kSymmetric, 8);
  quantizer.attr("scale").toTensor().fill_(12.75 / 127);
  EXPECT_EQ(std::get<0>(torch::_unique(quantizer.forward({span}).toTensor())).numel(), 128);
}

TEST(BatchNormFolding, FindsEveryConvolutionBatchNormPairOfResNet20) {
  auto model = models::BuildBuiltinModel("resnet20", {{3, 16, 16}, 5});
  const auto pairs = graph::FindConvBatchNorms(model);
  // The stem, two per basic block (9 blocks) and the two downsample shortcuts; not fc.
  ASSERT_EQ(pairs.size(), 21u);
  std::set<std::string> names;
  for (const auto& pair : pairs) names.insert(pair.conv_path + ">" + pair.bn_path);
  EXPECT_TRUE(names.count("conv1>bn1"));
  EXPECT_TRUE(names.count("layer1.2.conv2>layer1.2.bn2"));
  EXPECT_TRUE(names.count("layer2.0.downsample.0>layer2.0.downsample.1"));
  EXPECT_DOUBLE_EQ(pairs.front().eps, 1e-5);
}

// A quantized ResNet-20 with per-tensor weights and BatchNorm statistics far from 1 and 0.
torch::jit::Module QuantizedResNetWithStatistics(std::vector<QuantizedLayer>& layers,
                                                 std::vector<std::string> types = {"conv2d"}) {
  torch::manual_seed(5);
  auto model = models::BuildBuiltinModel("resnet20", {{3, 16, 16}, 5});
  auto options = Options(std::move(types));
  options.weight_quantize_type = "abs_max";
  layers = InsertQuantizers(model, options, false).layers;
  torch::NoGradGuard no_grad;
  for (const auto& pair : graph::FindConvBatchNorms(model)) {
    const auto bn = graph::ModulesByPath(model).at(pair.bn_path);
    bn.attr("weight").toTensor().uniform_(0.2, 3);
    bn.attr("bias").toTensor().uniform_(-1, 1);
    bn.attr("running_mean").toTensor().uniform_(-0.5, 0.5);
    bn.attr("running_var").toTensor().uniform_(0.05, 4);
  }
  return model;
}

TEST(BatchNormFolding, ExportComputesWhatFoldedTrainingComputes) {
  std::vector<QuantizedLayer> layers;
  auto model = QuantizedResNetWithStatistics(layers);
  const auto input = torch::randn({4, 3, 16, 16});
  model.eval();
  const auto unfolded = model.forward({input}).toTensor();
  const auto pairs = FindFoldablePairs(model, layers);
  ASSERT_EQ(pairs.size(), 21u);
  model.train();
  FreezeAndFold(pairs);
  EXPECT_FALSE(pairs.front().batch_norm.is_training());
  // Training mode, BatchNorms frozen: per-tensor scales now come from the folded weights.
  const auto folded = model.forward({input}).toTensor().detach();
  EXPECT_GT((folded - unfolded).abs().max().item<double>(), 1e-3);

  auto exported = model.deepcopy();
  FoldIntoConvolutions(exported, pairs);
  FreezeQuantizers(exported, /*qdq=*/false);
  exported.eval();
  EXPECT_TRUE(torch::allclose(exported.forward({input}).toTensor(), folded, 1e-4, 1e-4));
  const auto modules = graph::ModulesByPath(exported);
  const auto bn = modules.at("layer1.0.bn1");
  EXPECT_TRUE(torch::equal(bn.attr("weight").toTensor(), torch::ones({16})));
  EXPECT_TRUE(torch::equal(bn.attr("running_mean").toTensor(), torch::zeros({16})));
  const auto conv = modules.at("layer1.0.conv1");
  const auto levels = conv.attr("weight").toTensor() /
                      conv.attr("weight_quant").toModule().attr("scale").toTensor();
  EXPECT_LT((levels - levels.round()).abs().max().item<double>(), 1e-3);
  // The trained model keeps its BatchNorm.
  EXPECT_FALSE(torch::equal(graph::ModulesByPath(model).at("layer1.0.bn1").attr("weight").toTensor(),
                            torch::ones({16})));
}

// The effective bias of a quantized layer over its accumulator step (input step x weight
// step, x |f| where a BatchNorm folds into it), per output channel.
torch::Tensor BiasInSteps(const torch::jit::Module& model, const QuantizedLayer& layer) {
  const auto modules = graph::ModulesByPath(model);
  const auto& module = modules.at(layer.path);
  auto steps = module.attr("input_quant").toModule().attr("scale").toTensor() *
               module.attr("weight_quant").toModule().attr("scale").toTensor();
  const bool has_bias = module.hasattr("bias") && module.attr("bias").isTensor();
  torch::Tensor bias = has_bias ? module.attr("bias").toTensor() : torch::zeros_like(steps);
  for (const auto& pair : graph::FindConvBatchNorms(model)) {
    if (pair.conv_path != layer.path) continue;
    const auto& bn = modules.at(pair.bn_path);
    const auto f =
        bn.attr("weight").toTensor() / torch::sqrt(bn.attr("running_var").toTensor() + pair.eps);
    bias = bn.attr("bias").toTensor() + f * (bias - bn.attr("running_mean").toTensor());
    steps = steps * f.abs();
  }
  return bias.to(torch::kDouble) / steps.to(torch::kDouble);
}

TEST(AccumulatorBias, FoldedAndPlainBiasesLandOnTheIntegerKernelsGrid) {
  std::vector<QuantizedLayer> layers;
  auto model = QuantizedResNetWithStatistics(layers, {"conv2d", "linear"});
  for (auto& layer : layers) {
    layer.input_quant.attr("scale").toTensor().fill_(0.02);
    SetQuantize(layer.input_quant, true);
  }
  {
    torch::NoGradGuard no_grad;  // the classifier's bias, far from its grid
    graph::ModulesByPath(model).at("fc").attr("bias").toTensor().uniform_(-1, 1);
  }
  model.eval();
  FreezeQuantizers(model, /*qdq=*/false);
  const auto input = torch::randn({4, 3, 16, 16});
  const auto before = model.forward({input}).toTensor();
  const auto fc = std::find_if(layers.begin(), layers.end(),
                               [](const QuantizedLayer& layer) { return layer.path == "fc"; });
  ASSERT_NE(fc, layers.end());
  const auto off_grid = BiasInSteps(model, *fc);
  EXPECT_GT((off_grid - off_grid.round()).abs().max().item<double>(), 0.1);

  SnapBiasesToAccumulatorGrid(model, layers);
  // On the grid up to float32 error (beta holds the snapped bias less f (b - mean)), far
  // from where an integer runtime's rounding of bias / step could go either way.
  for (const auto& layer : layers) {
    SCOPED_TRACE(layer.path);
    const auto levels = BiasInSteps(model, layer);
    EXPECT_LT((levels - levels.round()).abs().max().item<double>(), 0.02);
  }
  // Each bias moved by half a step at most: the logits barely move.
  const auto after = model.forward({input}).toTensor();
  EXPECT_GT((after - before).abs().max().item<double>(), 0);
  EXPECT_LT((after - before).abs().max().item<double>(), 0.05 * before.abs().max().item<double>());
}

// A layer whose input is not quantized has no integer accumulator: its bias stays.
TEST(AccumulatorBias, LeavesLayersWithAFloatInputAlone) {
  std::vector<QuantizedLayer> layers;
  auto model = QuantizedResNetWithStatistics(layers, {"linear"});
  ASSERT_EQ(layers.size(), 1u);
  SetEnabled(layers.front().input_quant, false);
  model.eval();
  FreezeQuantizers(model, /*qdq=*/false);
  const auto bias = graph::ModulesByPath(model).at("fc").attr("bias").toTensor();
  const auto kept = bias.clone();
  SnapBiasesToAccumulatorGrid(model, layers);
  EXPECT_TRUE(torch::equal(bias, kept));
}

TEST(Sensitivity, SuggestsTheFewestLayersCoveringHalfOfTheDropAboveNoise) {
  std::vector<LayerSensitivity> layers = {{"a", {}, 0.05, 0.1}, {"b", {}, 3.0, 0.0},
                                          {"c", {}, 1.0, 0.2},  {"d", {}, 1.0, 0.3},
                                          {"e", {}, -0.5, 0.0}, {"f", {}, 2.0, 0.0}};
  SortMostSensitiveFirst(layers);
  std::vector<std::string> order;
  for (const auto& layer : layers) order.push_back(layer.path);
  // Ties on the drop go to the larger loss increase.
  EXPECT_EQ(order, (std::vector<std::string>{"b", "f", "d", "c", "a", "e"}));
  // Positive drops sum to 7.05: b (3.0) is not half of it, b + f (5.0) is.
  EXPECT_EQ(SuggestNotQuantPattern(layers, 0.1), (std::vector<std::string>{"b", "f"}));
  // Drops at or below the noise level are never suggested.
  EXPECT_EQ(SuggestNotQuantPattern(layers, 3.0), std::vector<std::string>{});
}

TEST(Sensitivity, RanksTheLayerWithTheCoarsestGridFirstAndRestoresQuantizers) {
  auto float_model = SeededModel("resnet20", {{3, 16, 16}, 5}, 0);
  auto model = SeededModel("resnet20", {{3, 16, 16}, 5}, 0);
  float_model.eval();
  const auto input = torch::randn({16, 3, 16, 16});
  const auto reference = float_model.forward({input}).toTensor().detach();
  // Before the model's first forward, as slim-train does.
  const auto layers = InsertQuantizers(model, Options({"conv2d", "linear"}), false).layers;
  QuantizeInputs(layers);
  // A grid far too coarse for its input.
  layers[5].input_quant.attr("scale").toTensor().fill_(0.5);
  model.eval();
  const auto groups = EnabledQuantizerGroups(model);
  ASSERT_EQ(groups.size(), 22u);
  EXPECT_EQ(groups[5].path, layers[5].path);
  EXPECT_EQ(groups[5].quantizers.size(), 2u);
  // Metric: agreement of the argmax with the float model, and the squared error.
  const auto report = AnalyzeSensitivity(groups, [&] {
    const auto output = model.forward({input}).toTensor().detach();
    const double agree = output.argmax(1).eq(reference.argmax(1)).to(torch::kDouble).mean().item<double>();
    return Metric{agree, (output - reference).pow(2).mean().item<double>(), 16};
  });
  EXPECT_EQ(report.float_model.loss, 0);
  EXPECT_GT(report.all_quantized.loss, 0);
  ASSERT_EQ(report.layers.size(), 22u);
  const auto worst = std::max_element(report.layers.begin(), report.layers.end(),
                                      [](const auto& a, const auto& b) {
                                        return a.loss_increase < b.loss_increase;
                                      });
  EXPECT_EQ(worst->path, layers[5].path);
  EXPECT_EQ(EnabledQuantizerGroups(model).size(), 22u);
}

// `model`, `float_model` with `quantizers` inserted (observing only), computes its output
// on `input` exactly; once they quantize with a step of 0.05 it departs from it, a little.
void ExpectQuantizersChangeTheOutputALittle(torch::jit::Module& float_model,
                                            torch::jit::Module& model,
                                            const std::vector<torch::jit::Module>& quantizers,
                                            const torch::Tensor& input) {
  float_model.eval();
  model.eval();
  const auto reference = float_model.forward({input}).toTensor();
  EXPECT_TRUE(torch::equal(model.forward({input}).toTensor(), reference));
  for (auto quantizer : quantizers) {
    quantizer.attr("scale").toTensor().fill_(0.05);
    SetQuantize(quantizer, true);
  }
  const auto output = model.forward({input}).toTensor();
  const double error = ((output - reference).norm() / reference.norm()).item<double>();
  EXPECT_GT(error, 0);
  EXPECT_LT(error, 0.5);
}

TEST(QuantizePass, QuantizesBothOperandsOfActivationMatMuls) {
  const models::ModelShape shape{{16}, 4};
  auto float_model = SeededModel("transformer", shape, 1);
  auto model = SeededModel("transformer", shape, 1);
  const auto quantized = InsertQuantizers(model, Options({"matmul"}), false);
  EXPECT_TRUE(quantized.layers.empty());
  // Two per attention block: q k^T and softmax(.) v.
  ASSERT_GE(quantized.matmuls.size(), 2u);
  EXPECT_EQ(quantized.matmuls.size() % 2, 0u);
  EXPECT_NE(quantized.matmuls[0].path.find(".matmul0"), std::string::npos);
  EXPECT_NE(quantized.matmuls[1].path.find(".matmul1"), std::string::npos);
  EXPECT_EQ(quantized.ActivationQuantizers().size(), 2 * quantized.matmuls.size());
  ExpectQuantizersChangeTheOutputALittle(float_model, model, quantized.ActivationQuantizers(),
                                         torch::randint(0, 256, {3, 16}));
  // The other op types leave the matmuls alone.
  auto linear_only = SeededModel("transformer", shape, 1);
  EXPECT_TRUE(InsertQuantizers(linear_only, Options({"linear"}), false).matmuls.empty());
}

// The node whose output the call of self.<child> in `module`'s forward reads.
torch::jit::Node* ReadByChild(const torch::jit::Module& module, const std::string& child) {
  for (auto* node : module.get_method("forward").graph()->nodes()) {
    if (node->kind() == c10::prim::CallMethod && node->input(0)->node()->kind() == c10::prim::GetAttr &&
        node->input(0)->node()->s(c10::attr::name) == child) {
      return node->input(1)->node();
    }
  }
  return nullptr;
}

TEST(QuantizePass, QuantizesOperandsAndResultOfResidualAdds) {
  const models::ModelShape shape{{3, 16, 16}, 5};
  auto float_model = SeededModel("resnet20", shape, 2);
  auto model = SeededModel("resnet20", shape, 2);
  // conv2d first: its quantizers' own forward adds must not be taken for the model's.
  const auto quantized = InsertQuantizers(model, Options({"conv2d", "add"}), false);
  ASSERT_EQ(quantized.adds.size(), 9u);  // one per basic block
  EXPECT_EQ(quantized.adds[0].path, "layer1.0.add0");
  EXPECT_EQ(quantized.ActivationQuantizers().size(), quantized.layers.size() + 3 * 9);
  EXPECT_EQ(quantized.Describe(), std::to_string(quantized.layers.size()) + " layer(s), 9 add(s)");
  const auto block = graph::ModulesByPath(model).at("layer1.0");
  // relu(out + x): the result is quantized after the ReLU, which integer kernels fuse.
  ASSERT_NE(ReadByChild(block, "add0_output_quant"), nullptr);
  EXPECT_EQ(ReadByChild(block, "add0_output_quant")->kind(), c10::aten::relu);
  EXPECT_EQ(ReadByChild(block, "add0_input_quant")->kind(), c10::prim::CallMethod);  // bn2

  for (auto layer : quantized.layers) SetEnabled(layer.weight_quant, false);
  std::vector<torch::jit::Module> add_quantizers;
  for (const auto& add : quantized.adds) {
    add_quantizers.insert(add_quantizers.end(), add.quantizers.begin(), add.quantizers.end());
  }
  ExpectQuantizersChangeTheOutputALittle(float_model, model, add_quantizers,
                                         torch::randn({2, 3, 16, 16}));

  // MobileNetV2's x + conv(x), no ReLU after it: the result itself is quantized.
  auto mobilenet = models::BuildBuiltinModel("mobilenetv2", shape);
  const auto adds = InsertQuantizers(mobilenet, Options({"add"}), false).adds;
  ASSERT_FALSE(adds.empty());
  const auto residual = adds[0].path.substr(0, adds[0].path.rfind('.'));
  const auto* read = ReadByChild(graph::ModulesByPath(mobilenet).at(residual), "add0_output_quant");
  ASSERT_NE(read, nullptr);
  EXPECT_EQ(read->kind(), c10::aten::add);
}

TEST(QuantizePass, RefusesModelsItCannotHandle) {
  auto model = models::BuildBuiltinModel("resnet20", {{3, 16, 16}, 5});
  try {
    InsertQuantizers(model, Options({"depthwise_conv2d"}), false);
    FAIL() << "expected ModelError";
  } catch (const ModelError& error) {
    EXPECT_NE(std::string(error.what()).find("layer1.0.conv1 (conv2d)"), std::string::npos);
  }
  InsertQuantizers(model, Options({"conv2d"}), false);
  EXPECT_THROW(InsertQuantizers(model, Options({"conv2d"}), false), ModelError);
}

}  // namespace
}  // namespace slim::quant
