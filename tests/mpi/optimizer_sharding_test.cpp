// ZeRO stage 1: sharding the optimizer state changes nothing in the training. W ranks that
// each step only their share of the parameters end with the parameters, bit for bit, and
// the optimizer state of W ranks that step all of them, with momentum and AdamW, gradient
// clipping and accumulation; each rank holds about 1/W of the state.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "runtime/base/torch_compat.h"
#include "runtime/checkpoint/state_capture.h"
#include "runtime/comm/mpi_communicator.h"
#include "runtime/ddp/gradient_bucketer.h"
#include "runtime/engine/optimizer_factory.h"
#include "runtime/engine/optimizer_sharding.h"

namespace slim::engine {
namespace {

using std::chrono::milliseconds;

constexpr int64_t kWidth = 16;
constexpr int64_t kLayers = 5;
constexpr int64_t kClasses = 4;
constexpr int kSteps = 5;
constexpr int64_t kPerRank = 8;

// The weights and biases of a stack of tanh layers and a classifier, the same on every
// rank (seeded), leaf tensors that require grad.
std::vector<torch::Tensor> StackParameters() {
  torch::manual_seed(7);
  std::vector<torch::Tensor> parameters;
  for (int64_t layer = 0; layer < kLayers; ++layer) {
    parameters.push_back((torch::randn({kWidth, kWidth}) / 4).requires_grad_());
    parameters.push_back((torch::randn({kWidth}) / 4).requires_grad_());
  }
  parameters.push_back((torch::randn({kClasses, kWidth}) / 4).requires_grad_());
  parameters.push_back(torch::zeros({kClasses}).requires_grad_());
  return parameters;
}

torch::Tensor Forward(const std::vector<torch::Tensor>& parameters, torch::Tensor x) {
  for (int64_t layer = 0; layer < kLayers; ++layer) {
    x = torch::tanh(torch::linear(x, parameters[2 * layer], parameters[2 * layer + 1]));
  }
  return torch::linear(x, parameters[2 * kLayers], parameters[2 * kLayers + 1]);
}

config::OptimizerOptions OptimizerOf(const std::string& type) {
  config::OptimizerOptions options;
  options.type = type;
  options.weight_decay = 0.01;
  return options;
}

// Parameters and optimizer of one data-parallel run over `comm`, sharded or not.
struct StackRun {
  StackRun(const std::string& type, comm::Communicator& comm, bool sharded)
      : parameters(StackParameters()),
        optimizer(BuildOptimizer(OptimizerOf(type), parameters, 0.05)),
        bucketer(parameters, comm, /*bucket_cap_mb=*/0.001) {
    if (sharded) sharding = std::make_unique<OptimizerSharding>(*optimizer, type, comm);
  }

  // `steps` steps of two micro-batches each on this rank's rows, clipped to norm 0.5.
  void Train(int steps, const std::vector<torch::Tensor>& inputs,
             const std::vector<torch::Tensor>& labels) {
    for (int step = 0; step < steps; ++step) {
      for (int64_t micro = 0; micro < 2; ++micro) {
        bucketer.SetSyncEnabled(micro == 1);
        const auto rows = torch::arange(micro * kPerRank / 2, (micro + 1) * kPerRank / 2);
        auto logits = Forward(parameters, inputs[step].index_select(0, rows));
        (torch::nn::functional::cross_entropy(logits, labels[step].index_select(0, rows)) / 2)
            .backward();
      }
      bucketer.FinishGradientSync();
      torch::nn::utils::clip_grad_norm_(parameters, 0.5);
      if (sharding) sharding->DropForeignGradients();
      optimizer->step();
      if (sharding) sharding->ShareUpdatedParameters();
      optimizer->zero_grad();
    }
  }

  // The optimizer state of parameter i as CPU tensors (empty when this rank holds none).
  checkpoint::TensorMap StateOf(size_t i) const {
    const auto found = optimizer->state().find(compat::OptimizerStateKey(parameters[i]));
    if (found == optimizer->state().end()) return {};
    return checkpoint::CaptureParamState(*found->second, std::to_string(i));
  }

  std::vector<torch::Tensor> parameters;
  std::unique_ptr<torch::optim::Optimizer> optimizer;
  ddp::GradientBucketer bucketer;
  std::unique_ptr<OptimizerSharding> sharding;
};

class OptimizerShardingTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    world_ = std::make_unique<comm::MpiCommunicator>(MPI_COMM_WORLD, false, milliseconds(30000));
    torch::manual_seed(50 + world_->Rank());  // each rank its own data
    for (int s = 0; s < 2 * kSteps; ++s) {
      inputs_.push_back(torch::randn({kPerRank, kWidth}));
      labels_.push_back(torch::randint(0, kClasses, {kPerRank}));
    }
  }

  static void ExpectSameState(const checkpoint::TensorMap& actual,
                              const checkpoint::TensorMap& expected, size_t parameter) {
    ASSERT_EQ(actual.size(), expected.size()) << "parameter " << parameter;
    for (const auto& [name, tensor] : expected) {
      EXPECT_TRUE(torch::equal(actual.at(name), tensor)) << "parameter " << parameter << " " << name;
    }
  }

  std::unique_ptr<comm::Communicator> world_;
  std::vector<torch::Tensor> inputs_;
  std::vector<torch::Tensor> labels_;
};

TEST_P(OptimizerShardingTest, ShardedRanksEndWithTheParametersAndStateOfUnshardedOnes) {
  StackRun plain(GetParam(), *world_, false);
  StackRun sharded(GetParam(), *world_, true);
  plain.Train(kSteps, inputs_, labels_);
  sharded.Train(kSteps, inputs_, labels_);
  for (size_t i = 0; i < plain.parameters.size(); ++i) {
    EXPECT_TRUE(torch::equal(sharded.parameters[i], plain.parameters[i])) << "parameter " << i;
  }
  sharded.sharding->GatherStateOnRankZero();
  if (world_->Rank() == 0) {
    for (size_t i = 0; i < plain.parameters.size(); ++i) {
      ExpectSameState(sharded.StateOf(i), plain.StateOf(i), i);
    }
  }
}

TEST_P(OptimizerShardingTest, EachRankHoldsAboutItsShareOfTheState) {
  StackRun plain(GetParam(), *world_, false);
  StackRun sharded(GetParam(), *world_, true);
  plain.Train(1, inputs_, labels_);
  sharded.Train(1, inputs_, labels_);
  const double whole = static_cast<double>(OptimizerStateBytes(*plain.optimizer));
  auto bytes = torch::tensor({static_cast<double>(OptimizerStateBytes(*sharded.optimizer))},
                             torch::kFloat64);
  auto total = bytes.clone();
  world_->AllReduceSync(total, comm::ReduceOp::kSum);
  EXPECT_DOUBLE_EQ(total.item<double>(), whole);  // every state held exactly once
  // The greedy deal never exceeds the fair share by more than the largest parameter's state.
  const double largest = whole * (kWidth * kWidth) /
                         (kLayers * (kWidth * kWidth + kWidth) + kClasses * kWidth + kClasses);
  EXPECT_LE(bytes.item<double>(), whole / world_->Size() + largest);
  if (world_->Size() > 1) EXPECT_LT(bytes.item<double>(), whole);
}

TEST_P(OptimizerShardingTest, ReshardingAfterTheGroupsChangedKeepsEveryStateAndTheTraining) {
  StackRun plain(GetParam(), *world_, false);
  StackRun sharded(GetParam(), *world_, true);
  plain.Train(2, inputs_, labels_);
  sharded.Train(2, inputs_, labels_);
  // A new order deals the equally sized tensors to other owners; the state must follow.
  auto& params = sharded.optimizer->param_groups().front().params();
  std::reverse(params.begin(), params.end());
  sharded.sharding->Reshard();
  std::vector<torch::Tensor> later_inputs(inputs_.begin() + 2, inputs_.end());
  std::vector<torch::Tensor> later_labels(labels_.begin() + 2, labels_.end());
  plain.Train(2, later_inputs, later_labels);
  sharded.Train(2, later_inputs, later_labels);
  for (size_t i = 0; i < plain.parameters.size(); ++i) {
    EXPECT_TRUE(torch::equal(sharded.parameters[i], plain.parameters[i])) << "parameter " << i;
  }
}

TEST_P(OptimizerShardingTest, AFullStateRestoredOnEveryRankIsDealtOut) {
  StackRun plain(GetParam(), *world_, false);
  plain.Train(2, inputs_, labels_);
  const double whole = static_cast<double>(OptimizerStateBytes(*plain.optimizer));
  // As at resume: every rank restored the whole state, then shards it.
  OptimizerSharding sharding(*plain.optimizer, GetParam(), *world_);
  auto total = torch::tensor({static_cast<double>(OptimizerStateBytes(*plain.optimizer))},
                             torch::kFloat64);
  world_->AllReduceSync(total, comm::ReduceOp::kSum);
  EXPECT_DOUBLE_EQ(total.item<double>(), whole);
}

INSTANTIATE_TEST_SUITE_P(Optimizers, OptimizerShardingTest,
                         ::testing::Values("Momentum", "AdamW"));

TEST(BalancedOwners, DealsLargestFirstToTheLightestRank) {
  EXPECT_EQ(BalancedOwners({10, 40, 30, 20}, 2), (std::vector<int>{0, 0, 1, 1}));
  EXPECT_EQ(BalancedOwners({5, 5, 5}, 4), (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(BalancedOwners({}, 3), std::vector<int>{});
}

}  // namespace
}  // namespace slim::engine
