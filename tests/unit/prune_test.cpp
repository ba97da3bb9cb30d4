// Mask-based pruning's pure parts: magnitude masks against sort-based references, the GMP
// schedule against its formula, 2:4 masks element by element, and the config sections.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "runtime/base/errors.h"
#include "strategies/prune/gmp_schedule.h"
#include "strategies/prune/magnitude_masks.h"
#include "strategies/prune/prune_options.h"
#include "strategies/prune/prune_sensitivity.h"
#include "runtime/models/builtin_models.h"
#include "strategies/registry.h"
#include "tests/unit/temp_file.h"

namespace slim::prune {
namespace {

// Every pruned magnitude is at most every kept one, over all of `weights` together.
void ExpectPrunesTheSmallest(const std::vector<torch::Tensor>& weights,
                             const std::vector<torch::Tensor>& masks) {
  std::vector<torch::Tensor> pruned, kept;
  for (size_t i = 0; i < weights.size(); ++i) {
    pruned.push_back(weights[i].abs().masked_select(masks[i] == 0));
    kept.push_back(weights[i].abs().masked_select(masks[i] == 1));
  }
  const auto largest_pruned = torch::cat(pruned).max().item<float>();
  const auto smallest_kept = torch::cat(kept).min().item<float>();
  EXPECT_LE(largest_pruned, smallest_kept);
}

int64_t Zeros(const torch::Tensor& mask) { return (mask == 0).sum().item<int64_t>(); }

TEST(MagnitudeMasks, LocalRatioPrunesTheSmallestOfEachWeight) {
  torch::manual_seed(1);
  const std::vector<torch::Tensor> weights = {torch::randn({8, 4, 3, 3}), torch::randn({10, 7})};
  const auto masks = RatioMasks(weights, 0.3, /*local=*/true);
  for (size_t i = 0; i < weights.size(); ++i) {
    EXPECT_EQ(Zeros(masks[i]), std::llround(0.3 * static_cast<double>(weights[i].numel())));
    ExpectPrunesTheSmallest({weights[i]}, {masks[i]});
  }
}

TEST(MagnitudeMasks, GlobalRatioRanksAllWeightsTogether) {
  torch::manual_seed(2);
  // The second weight is ten times smaller: globally it is pruned almost entirely.
  const std::vector<torch::Tensor> weights = {torch::randn({50}), torch::randn({50}) / 10};
  const auto masks = RatioMasks(weights, 0.5, /*local=*/false);
  EXPECT_EQ(Zeros(masks[0]) + Zeros(masks[1]), 50);
  ExpectPrunesTheSmallest(weights, masks);
  EXPECT_GT(Zeros(masks[1]), 40);
  EXPECT_EQ(Zeros(RatioMasks(weights, 0.5, /*local=*/true)[1]), 25);
}

TEST(MagnitudeMasks, TiesFallToTheLowerIndex) {
  const auto masks = RatioMasks({torch::ones({6})}, 0.5, /*local=*/true);
  EXPECT_TRUE(torch::equal(masks[0], torch::tensor({0.f, 0.f, 0.f, 1.f, 1.f, 1.f})));
}

TEST(MagnitudeMasks, ThresholdPrunesBelowIt) {
  const auto weight = torch::tensor({-0.5f, 0.009f, -0.01f, 0.02f, -0.001f});
  const auto masks = ThresholdMasks({weight}, 0.01);
  EXPECT_TRUE(torch::equal(masks[0], torch::tensor({1.f, 0.f, 1.f, 1.f, 0.f})));
}

TEST(MagnitudeMasks, TwoFourKeepsTheTwoLargestOfEveryFourInputChannels) {
  torch::manual_seed(3);
  for (const auto& weight : {torch::randn({3, 8}), torch::randn({2, 8, 3, 3})}) {
    ASSERT_EQ(TwoFourRefusal(weight), "");
    const auto mask = TwoFourMask(weight);
    ASSERT_EQ(mask.sizes(), weight.sizes());
    const auto w = weight.dim() == 2 ? weight.unsqueeze(2).unsqueeze(3) : weight;
    const auto m = mask.dim() == 2 ? mask.unsqueeze(2).unsqueeze(3) : mask;
    for (int64_t o = 0; o < w.size(0); ++o) {
      for (int64_t y = 0; y < w.size(2); ++y) {
        for (int64_t x = 0; x < w.size(3); ++x) {
          for (int64_t group = 0; group < w.size(1); group += 4) {
            const auto values = w.index({o, torch::indexing::Slice(group, group + 4), y, x}).abs();
            const auto kept = m.index({o, torch::indexing::Slice(group, group + 4), y, x});
            EXPECT_EQ(kept.sum().item<float>(), 2);
            const auto order = std::get<1>(values.sort(0, /*descending=*/true));
            EXPECT_EQ(kept[order[0]].item<float>(), 1);
            EXPECT_EQ(kept[order[1]].item<float>(), 1);
          }
        }
      }
    }
  }
}

TEST(MagnitudeMasks, TwoFourRefusesInputsNotAMultipleOfFour) {
  EXPECT_NE(TwoFourRefusal(torch::zeros({8, 1, 3, 3})), "");  // depthwise
  EXPECT_NE(TwoFourRefusal(torch::zeros({4, 6})), "");
  EXPECT_NE(TwoFourRefusal(torch::zeros({4, 8, 3})), "");
}

TEST(GmpSchedule, FollowsTheCubicFormulaInSteps) {
  GmpOptions options;
  options.stable_iterations = 10;
  options.pruning_iterations = 100;
  options.pruning_steps = 5;
  const auto plan = ResolveGmpPlan(options, 0.8, 1000);
  const auto cubic = [](double i) { return 0.8 + (0.15 - 0.8) * std::pow(1 - i / 5, 3); };
  EXPECT_EQ(GmpRatioAt(plan, 9), 0);
  EXPECT_DOUBLE_EQ(GmpRatioAt(plan, 10), 0.15);
  EXPECT_DOUBLE_EQ(GmpRatioAt(plan, 29), 0.15);
  EXPECT_DOUBLE_EQ(GmpRatioAt(plan, 30), cubic(1));
  EXPECT_NEAR(GmpRatioAt(plan, 30), 0.4672, 1e-12);
  EXPECT_DOUBLE_EQ(GmpRatioAt(plan, 109), cubic(4));
  EXPECT_DOUBLE_EQ(GmpRatioAt(plan, 110), 0.8);
  EXPECT_EQ(GmpFinalStep(plan), 110);
  EXPECT_DOUBLE_EQ(GmpRatioAt(plan, 5000), 0.8);
  options.schedule = "linear";
  EXPECT_DOUBLE_EQ(GmpRatioAt(ResolveGmpPlan(options, 0.8, 1000), 50), 0.15 + 0.65 * 2 / 5);
}

TEST(GmpSchedule, TakesActsAutomaticValues) {
  const auto few = ResolveGmpPlan(GmpOptions{}, 0.5, 1000);
  EXPECT_EQ(few.stable_iterations, 0);
  EXPECT_EQ(few.pruning_iterations, 450);
  EXPECT_EQ(few.tunning_iterations, 450);
  EXPECT_EQ(few.pruning_steps, 1);
  EXPECT_DOUBLE_EQ(few.initial_ratio, 0.15);
  EXPECT_EQ(ResolveGmpPlan(GmpOptions{}, 0.5, 3000).pruning_steps, 100);
  EXPECT_EQ(ResolveGmpPlan(GmpOptions{}, 0.5, 10).pruning_iterations, 30);
}

TEST(PruneSensitivity, SuggestsTheLargestToleratedRatioAndRestoresTheWeights) {
  torch::manual_seed(4);
  auto model = models::BuildBuiltinModel("resnet20", {{3, 8, 8}, 4});
  const auto weights = WeightsOf(model);
  const std::vector<PrunableWeight> analysed = {weights.at(1), weights.at(2)};
  const auto before = analysed[0].Tensor().clone();
  // Top-1 falls by 5 points once more than 60 % of the first weight is zero.
  const auto evaluate = [&] {
    const auto zeros = (analysed[0].Tensor() == 0).to(torch::kFloat64).mean().item<double>();
    strategies::EvalMetrics metric;
    metric.top1 = zeros > 0.6 ? 0.85 : 0.9;
    return metric;
  };
  const auto report = AnalyzePruneSensitivity(analysed, AnalysedRatios(), evaluate);
  ASSERT_EQ(report.weights.size(), 2u);
  EXPECT_EQ(report.weights[0].results.size(), AnalysedRatios().size());
  EXPECT_DOUBLE_EQ(report.weights[0].results[2].metric.top1, 0.85);  // at 70 %
  EXPECT_DOUBLE_EQ(report.weights[0].suggested_ratio, 0.5);
  EXPECT_DOUBLE_EQ(report.weights[1].suggested_ratio, 0.9);
  EXPECT_TRUE(torch::equal(analysed[0].Tensor(), before));
}

// The message of the ConfigError that loading `sections` (after a valid Global) raises.
std::string ConfigErrorOf(const std::string& sections) {
  testing::TempDir dir;
  const auto file = dir.Write("job.yaml", "Global:\n  model: builtin:resnet20\n"
                                          "  train_data: t.h5\n" + sections);
  try {
    strategies::LoadJobConfig(file, {});
  } catch (const ConfigError& error) {
    return error.what();
  }
  ADD_FAILURE() << "no ConfigError for:\n" << sections;
  return "";
}

TEST(PruneConfig, BadValuesNameTheKey) {
  EXPECT_NE(ConfigErrorOf("UnstructurePrune:\n  ratio: 1.5\n").find("UnstructurePrune.ratio"),
            std::string::npos);
  EXPECT_NE(ConfigErrorOf("UnstructurePrune:\n  ratio: 0\n").find("strictly between 0 and 1"),
            std::string::npos);
  EXPECT_NE(ConfigErrorOf("UnstructurePrune:\n  prune_params_type: conv3x3\n")
                .find("UnstructurePrune.prune_params_type"),
            std::string::npos);
  EXPECT_NE(ConfigErrorOf("UnstructurePrune:\n  prune_strategy: gmp\n  prune_mode: threshold\n")
                .find("prune_mode: ratio"),
            std::string::npos);
  EXPECT_NE(ConfigErrorOf("UnstructurePrune:\n  prune_strategy: gmp\n  gmp_config:\n"
                          "    initial_ratio: 0.9\n")
                .find("UnstructurePrune.gmp_config.initial_ratio"),
            std::string::npos);
  EXPECT_NE(ConfigErrorOf("UnstructurePrune:\n  ratioo: 0.5\n").find("ratio"), std::string::npos);
  EXPECT_NE(ConfigErrorOf("ASPPrune:\n  prune_param_name: [fc.weight]\n").find("prune_params_name"),
            std::string::npos);
}

TEST(PruneConfig, SectionsThatMaskTheSameWeightsAreRefused) {
  const auto both = ConfigErrorOf("UnstructurePrune:\n  ratio: 0.5\nASPPrune:\n");
  EXPECT_NE(both.find("both mask the same weights"), std::string::npos) << both;
  const auto post = ConfigErrorOf("ASPPrune:\nQuantPost:\n");
  EXPECT_NE(post.find("QuantPost only calibrates"), std::string::npos) << post;
}

TEST(PruneConfig, ActsNullMeansNone) {
  testing::TempDir dir;
  const auto file = dir.Write("job.yaml", "Global:\n  model: builtin:resnet20\n  train_data: t.h5\n"
                                          "UnstructurePrune:\n  prune_strategy:\n"
                                          "  prune_params_type: null\n");
  const auto config = strategies::LoadJobConfig(file, {});
  const auto& options = config.StrategyOptionsOf<UnstructurePruneOptions>("UnstructurePrune");
  EXPECT_EQ(options.prune_strategy, "none");
  EXPECT_EQ(options.prune_params_type, "none");
  EXPECT_DOUBLE_EQ(options.ratio, 0.55);
}

}  // namespace
}  // namespace slim::prune
