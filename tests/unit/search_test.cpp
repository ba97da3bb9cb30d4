// The quantization search's pieces: the samplers on synthetic objectives (TPE against
// random search over many seeds), the search space's three kinds of dimension, the emd
// objective against the definition of the 1-D Wasserstein distance, the trial log and
// the rule that picks the kept trial, and the HyperParameterOptimization section.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <set>

#include "runtime/base/errors.h"
#include "search/output_distance.h"
#include "search/quant_search.h"
#include "search/sampler.h"
#include "search/tpe_sampler.h"
#include "search/trial_log.h"
#include "strategies/hpo/hpo_options.h"
#include "strategies/registry.h"
#include "tests/unit/temp_file.h"

namespace slim::search {
namespace {

using Kind = Dimension::Kind;

const SearchSpace kMixedSpace = {{"algo", Kind::kCategorical, {"a", "b", "c", "d"}},
                                 {"x", Kind::kFloat, {}, -2.0, 3.0},
                                 {"n", Kind::kInteger, {}, 1.0, 40.0}};

// A quadratic bowl over the mixed space: best at algo c, x = 0.7, n = 29.
double Quadratic(const Point& point) {
  const double algo_cost[] = {1.5, 0.8, 0.0, 2.0};
  const double x = point[1] - 0.7;
  const double n = (point[2] - 29) / 10;
  return algo_cost[static_cast<size_t>(point[0])] + x * x + n * n;
}

// The best value `sampler` finds in `budget` sequential trials.
double BestOf(const Sampler& sampler, int64_t budget) {
  std::vector<Observation> finished;
  double best = std::numeric_limits<double>::infinity();
  for (int64_t trial = 0; trial < budget; ++trial) {
    const auto point = sampler.Propose(trial, finished);
    const double value = Quadratic(*point);
    best = std::min(best, value);
    finished.push_back({trial, *point, value});
  }
  return best;
}

TEST(Samplers, TpeBeatsRandomSearchOnAMixedQuadraticOverManySeeds) {
  constexpr int kSeeds = 100;
  constexpr int64_t kBudget = 30;
  int tpe_wins = 0;
  double tpe_sum = 0;
  double random_sum = 0;
  for (uint64_t seed = 1; seed <= kSeeds; ++seed) {
    const double tpe = BestOf(TpeSampler(kMixedSpace, seed, TpeStartupTrials(kBudget)), kBudget);
    const double random = BestOf(RandomSampler(kMixedSpace, seed + 1000), kBudget);
    tpe_wins += tpe < random;
    tpe_sum += tpe;
    random_sum += random;
  }
  // Under "no better than random" the wins are Binomial(100, 0.5): P(>= 62) < 0.01.
  EXPECT_GE(tpe_wins, 62) << "TPE mean best " << tpe_sum / kSeeds << ", random "
                          << random_sum / kSeeds;
  EXPECT_LT(tpe_sum, random_sum * 0.6);
}

TEST(Samplers, ProposalsStayInsideEachKindOfDimension) {
  const TpeSampler tpe(kMixedSpace, 3, 2);
  const RandomSampler random(kMixedSpace, 3);
  std::vector<Observation> finished;
  for (int64_t trial = 0; trial < 60; ++trial) {
    for (const Sampler* sampler : {static_cast<const Sampler*>(&tpe),
                                   static_cast<const Sampler*>(&random)}) {
      const auto point = *sampler->Propose(trial, finished);
      ASSERT_EQ(point.size(), 3u);
      EXPECT_EQ(point[0], std::round(point[0]));
      EXPECT_GE(point[0], 0);
      EXPECT_LE(point[0], 3);
      EXPECT_GE(point[1], -2.0);
      EXPECT_LE(point[1], 3.0);
      EXPECT_EQ(point[2], std::round(point[2]));
      EXPECT_GE(point[2], 1);
      EXPECT_LE(point[2], 40);
      finished.push_back({static_cast<int64_t>(finished.size()), point, Quadratic(point)});
    }
  }
}

TEST(Samplers, TpeProposalDependsOnTheFinishedTrialsNotTheirOrder) {
  const TpeSampler tpe(kMixedSpace, 11, 2);
  std::vector<Observation> finished;
  for (int64_t trial = 0; trial < 12; ++trial) {
    auto engine = TrialEngine(99, trial);
    const auto point = UniformPoint(kMixedSpace, engine);
    finished.push_back({trial, point, Quadratic(point)});
  }
  auto shuffled = finished;
  std::shuffle(shuffled.begin(), shuffled.end(), std::mt19937(5));
  EXPECT_EQ(*tpe.Propose(12, finished), *tpe.Propose(12, shuffled));
  EXPECT_NE(*tpe.Propose(12, finished), *tpe.Propose(13, finished));
  // Without the best trial the good density, and so the proposal, changes.
  finished.erase(std::min_element(finished.begin(), finished.end(), [](const auto& a, const auto& b) {
    return a.objective < b.objective;
  }));
  EXPECT_NE(*tpe.Propose(12, finished), *tpe.Propose(12, shuffled));
}

TEST(Samplers, GridWalksEveryCombinationOnceThenEnds) {
  const SearchSpace space = {{"algo", Kind::kCategorical, {"a", "b"}},
                             {"p", Kind::kFloat, {}, 0.5, 1.0},
                             {"n", Kind::kInteger, {}, 4.0, 5.0},
                             {"fixed", Kind::kFloat, {}, 2.0, 2.0}};
  const GridSampler grid(space);
  EXPECT_EQ(grid.Size(), 2 * 3 * 2 * 1);
  std::set<Point> seen;
  for (int64_t trial = 0; trial < grid.Size(); ++trial) seen.insert(*grid.Propose(trial, {}));
  EXPECT_EQ(static_cast<int64_t>(seen.size()), grid.Size());
  EXPECT_TRUE(seen.count({1, 0.75, 5, 2.0}));
  EXPECT_FALSE(grid.Propose(grid.Size(), {}).has_value());
}

// PTQ's shape of space: hist_percent ("p") only matters for algo hist.
const SearchSpace kConditionalSpace = {{"algo", Kind::kCategorical, {"hist", "mse", "avg"}},
                                       {"bias", Kind::kCategorical, {"false", "true"}},
                                       {"p", Kind::kFloat, {}, 0.9, 1.0, Condition{0, "hist"}},
                                       {"n", Kind::kInteger, {}, 1.0, 3.0}};

TEST(SearchSpace, ADimensionWhoseConditionFailsDoesNotTellTrialsApart) {
  EXPECT_TRUE(Matters(kConditionalSpace, 2, {0, 0, 0.95, 2}));
  EXPECT_FALSE(Matters(kConditionalSpace, 2, {1, 0, 0.95, 2}));
  EXPECT_TRUE(SameTrial(kConditionalSpace, {1, 0, 0.95, 2}, {1, 0, 0.91, 2}));
  EXPECT_FALSE(SameTrial(kConditionalSpace, {0, 0, 0.95, 2}, {0, 0, 0.91, 2}));
  EXPECT_FALSE(SameTrial(kConditionalSpace, {1, 0, 0.95, 2}, {0, 0, 0.95, 2}));
  EXPECT_FALSE(SameTrial(kConditionalSpace, {1, 0, 0.95, 2}, {1, 0, 0.95, 3}));
  // The grid leaves out the combinations that differ only where p does not matter:
  // hist x 2 x 3 values of p x 3 values of n, and 2 x 2 x 3 for mse and avg.
  const GridSampler grid(kConditionalSpace);
  EXPECT_EQ(grid.Size(), 2 * 3 * 3 + 2 * 2 * 3);
}

TEST(Samplers, TpeNeverRepeatsAFinishedTrial) {
  // Without p, 3 x 2 x 3 = 18 settings; a budget of 18 distinct ones must try each, and so
  // find the best, where random search finds it in 1 - (17/18)^18 = 64 % of searches.
  const SearchSpace space = {kConditionalSpace[0], kConditionalSpace[1], kConditionalSpace[3]};
  const auto objective = [](const Point& point) { return point[0] + 0.5 * point[1] + point[2]; };
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    const TpeSampler tpe(space, seed, 4);
    std::vector<Observation> finished;
    for (int64_t trial = 0; trial < 18; ++trial) {
      const auto point = *tpe.Propose(trial, finished);
      for (const auto& earlier : finished) {
        ASSERT_FALSE(SameTrial(space, point, earlier.point)) << "seed " << seed << " trial " << trial;
      }
      finished.push_back({trial, point, objective(point)});
    }
    EXPECT_EQ(std::min_element(finished.begin(), finished.end(), [](const auto& a, const auto& b) {
                return a.objective < b.objective;
              })->objective, 1.0);
  }
}

TEST(SearchSpace, PointsRoundTripThroughJsonAndBadValuesAreNamed) {
  const Point point = {2, 0.25, 17};
  const auto json = PointToJson(kMixedSpace, point);
  EXPECT_EQ(json.at("algo"), "c");
  EXPECT_EQ(json.at("n"), 17);
  EXPECT_EQ(PointFromJson(kMixedSpace, json), point);
  auto bad = json;
  bad["algo"] = "z";
  EXPECT_THROW(PointFromJson(kMixedSpace, bad), std::invalid_argument);
  bad = json;
  bad["x"] = 9.0;
  EXPECT_THROW(PointFromJson(kMixedSpace, bad), std::invalid_argument);
  bad.erase("n");
  EXPECT_THROW(PointFromJson(kMixedSpace, bad), std::invalid_argument);
}

// The 1-D Wasserstein distance from its definition: the integral of |F_a - F_b| over the
// merged support of the two empirical distributions.
double WassersteinByCdf(std::vector<double> a, std::vector<double> b) {
  std::vector<double> all = a;
  all.insert(all.end(), b.begin(), b.end());
  std::sort(all.begin(), all.end());
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  const auto cdf = [](const std::vector<double>& sorted, double x) {
    return static_cast<double>(std::upper_bound(sorted.begin(), sorted.end(), x) - sorted.begin()) /
           static_cast<double>(sorted.size());
  };
  double distance = 0;
  for (size_t i = 0; i + 1 < all.size(); ++i) {
    distance += std::abs(cdf(a, all[i]) - cdf(b, all[i])) * (all[i + 1] - all[i]);
  }
  return distance;
}

std::vector<double> Standardised(std::vector<double> values) {
  const double mean = std::accumulate(values.begin(), values.end(), 0.0) / values.size();
  double variance = 0;
  for (double v : values) variance += (v - mean) * (v - mean);
  const double deviation = std::max(std::sqrt(variance / values.size()), 1e-8);
  for (double& v : values) v = (v - mean) / deviation;
  return values;
}

TEST(OutputDistance, MatchesTheCdfDefinitionOnSmallArrays) {
  std::mt19937 engine(3);
  std::normal_distribution<double> normal(0, 1);
  std::exponential_distribution<double> skewed(1);
  for (int round = 0; round < 20; ++round) {
    std::vector<double> a(7 + round);
    std::vector<double> b(a.size());
    for (auto& v : a) v = normal(engine);
    for (auto& v : b) v = round % 2 ? skewed(engine) : normal(engine) * 3 + 1;
    const double expected = WassersteinByCdf(Standardised(a), Standardised(b));
    const auto ta = torch::tensor(a, torch::kFloat64).reshape({1, -1});
    const auto tb = torch::tensor(b, torch::kFloat64);
    EXPECT_NEAR(StandardisedWasserstein(ta, tb), expected, 1e-9) << "round " << round;
  }
}

TEST(OutputDistance, IgnoresShiftAndScaleAndRefusesOtherSizes) {
  const auto a = torch::randn({4, 10}, torch::kFloat32);
  EXPECT_NEAR(StandardisedWasserstein(a, a * 3.5 - 2), 0, 1e-6);
  EXPECT_GT(StandardisedWasserstein(a, a.pow(3)), 0.05);
  EXPECT_EQ(StandardisedWasserstein(torch::ones({5}), torch::ones({5})), 0);
  EXPECT_THROW(StandardisedWasserstein(a, torch::randn({41})), std::invalid_argument);
}

TrialRecord Trial(int64_t k, double objective, bool passed, int64_t bytes) {
  TrialRecord record;
  record.trial = k;
  record.params = {{"ptq_algo", "hist"}};
  record.objective = objective;
  record.passed = passed;
  record.state_bytes = bytes;
  record.learnt_from = 2;
  return record;
}

TEST(TrialLog, KeptTrialFollowsTheCriterionThenSizeThenObjective) {
  std::vector<TrialRecord> records = {Trial(0, 0.3, true, 900), Trial(1, 0.1, false, 800),
                                      Trial(2, 0.2, true, 800), Trial(3, 0.15, true, 800)};
  records.push_back(Trial(4, 0.0, false, 100));
  records.back().failed = true;
  EXPECT_EQ(*ChosenTrial(records, /*has_criterion=*/false), 1u);
  EXPECT_EQ(*ChosenTrial(records, /*has_criterion=*/true), 3u);
  for (size_t i = 0; i < 4; ++i) records[i].passed = false;
  EXPECT_EQ(*ChosenTrial(records, /*has_criterion=*/true), 1u);
  EXPECT_FALSE(ChosenTrial({records.back()}, false).has_value());
}

TEST(TrialLog, RoundTripsAndNamesTheDamagedLine) {
  testing::TempDir dir;
  const auto path = dir.File("trials.jsonl");
  EXPECT_TRUE(ReadTrialLog(path).empty());
  auto failed = Trial(1, 0, false, 0);
  failed.failed = true;
  failed.failure = "not finite";
  WriteTrialLog(path, {Trial(0, 0.25, true, 64), failed});
  const auto records = ReadTrialLog(path);
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0].objective, 0.25);
  EXPECT_EQ(records[0].learnt_from, 2);
  EXPECT_TRUE(std::isinf(records[1].objective));
  EXPECT_EQ(records[1].failure, "not finite");
  dir.Write("trials.jsonl", RecordToJson(records[0]).dump() + "\n{\"trial\": 1\n");
  try {
    ReadTrialLog(path);
    ADD_FAILURE() << "a damaged log was read";
  } catch (const DataError& error) {
    EXPECT_NE(std::string(error.what()).find("trials.jsonl:2"), std::string::npos) << error.what();
  }
}

constexpr const char* kSearchConfig = R"(Global:
  model: builtin:resnet20
  train_data: train.h5
  eval_data: eval.h5
QuantPost:
  batch_size: 8
HyperParameterOptimization:
)";

std::string SearchConfigError(const std::string& section) {
  testing::TempDir dir;
  try {
    strategies::LoadJobConfig(dir.Write("c.yaml", kSearchConfig + section), {});
  } catch (const ConfigError& error) {
    return error.what();
  }
  ADD_FAILURE() << "no ConfigError for " << section;
  return "";
}

TEST(HpoSection, ReadsActsKeysWithTheirDefaults) {
  testing::TempDir dir;
  auto config = strategies::LoadJobConfig(
      dir.Write("c.yaml", std::string(kSearchConfig) +
                              "  ptq_algo: [KL, avg]\n  bias_correct: [True, False]\n"
                              "  hist_percent: [0.99, 0.9999]\n  batch_num: 4\n"),
      {});
  const auto& options = config.StrategyOptionsOf<hpo::HpoOptions>("HyperParameterOptimization");
  EXPECT_EQ(options.ptq_algo, (std::vector<std::string>{"KL", "avg"}));
  EXPECT_EQ(options.bias_correct, (std::vector<bool>{true, false}));
  EXPECT_EQ(options.weight_quantize_type, (std::vector<std::string>{"channel_wise_abs_max"}));
  EXPECT_DOUBLE_EQ(options.hist_percent_high, 0.9999);
  EXPECT_EQ(options.batch_num_low, 4);
  EXPECT_EQ(options.batch_num_high, 4);
  EXPECT_EQ(options.max_quant_count, 20);
  EXPECT_EQ(options.sampler, "tpe");
  EXPECT_EQ(QuantSearchSpace(options).size(), 5u);
}

TEST(HpoSection, BadValuesNameTheKey) {
  EXPECT_NE(SearchConfigError("  ptq_algo: []\n").find("ptq_algo: the candidate list is empty"),
            std::string::npos);
  EXPECT_NE(SearchConfigError("  ptq_algo: [hist, kl]\n").find("ptq_algo"), std::string::npos);
  EXPECT_NE(SearchConfigError("  batch_num: [30, 10]\n").find("batch_num: the range's low end"),
            std::string::npos);
  EXPECT_NE(SearchConfigError("  sampler: smac\n").find("sampler"), std::string::npos);
  EXPECT_NE(SearchConfigError("  accuracy_criterion: {relative: 0.01, absolute: 0.01}\n")
                .find("accuracy_criterion"),
            std::string::npos);
  EXPECT_NE(SearchConfigError("  stop_at_first_pass: true\n").find("needs accuracy_criterion"),
            std::string::npos);
}

}  // namespace
}  // namespace slim::search
