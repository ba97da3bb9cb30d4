// Data-parallel training is mathematically the same as one process with the global batch:
// W ranks with per-rank batch B end with the same parameters as one rank with batch W*B.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "runtime/comm/mpi_communicator.h"
#include "runtime/ddp/gradient_bucketer.h"
#include "runtime/ddp/module_sync.h"
#include "runtime/models/model_loader.h"

namespace slim::ddp {
namespace {

using std::chrono::milliseconds;

constexpr int64_t kFeatures = 12;
constexpr int64_t kClasses = 5;

// A two-layer perceptron as TorchScript, initialised from the current generator.
torch::jit::Module Mlp() {
  torch::jit::Module model("__torch__.slim_test.Mlp");
  model.register_attribute("training", c10::BoolType::get(), true);
  model.register_parameter("w1", torch::randn({32, kFeatures}).requires_grad_(), false);
  model.register_parameter("b1", torch::randn({32}).requires_grad_(), false);
  model.register_parameter("w2", torch::randn({kClasses, 32}).requires_grad_(), false);
  model.register_parameter("b2", torch::randn({kClasses}).requires_grad_(), false);
  model.define(R"(
    def forward(self, x):
        return torch.linear(torch.tanh(torch.linear(x, self.w1, self.b1)), self.w2, self.b2)
  )");
  return model;
}

// The (inputs, labels) micro-batches of one optimizer step.
using MicroBatches = std::vector<std::pair<torch::Tensor, torch::Tensor>>;

// Runs `steps` SGD-momentum steps; in step s this rank's micro-batches are `batches(s)`.
void Train(torch::jit::Module& model, comm::Communicator& comm, int steps,
           const std::function<MicroBatches(int)>& batches, double bucket_cap_mb) {
  auto parameters = models::TrainableParameters(model);
  GradientBucketer bucketer(parameters, comm, bucket_cap_mb);
  torch::optim::SGD optimizer(parameters, torch::optim::SGDOptions(0.1).momentum(0.9));
  for (int step = 0; step < steps; ++step) {
    const auto micro = batches(step);
    for (size_t m = 0; m < micro.size(); ++m) {
      bucketer.SetSyncEnabled(m + 1 == micro.size());
      auto logits = model.forward({micro[m].first}).toTensor();
      (torch::nn::functional::cross_entropy(logits, micro[m].second) /
       static_cast<double>(micro.size()))
          .backward();
    }
    bucketer.FinishGradientSync();
    optimizer.step();
    optimizer.zero_grad();
  }
}

class DataParallelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    world_ = std::make_unique<comm::MpiCommunicator>(MPI_COMM_WORLD, false, milliseconds(30000));
    rank_ = world_->Rank();
    size_ = world_->Size();
    // The global data of each step, identical on every rank.
    torch::manual_seed(1234);
    for (int s = 0; s < kSteps; ++s) {
      inputs_.push_back(torch::randn({kPerRank * size_, kFeatures}));
      labels_.push_back(torch::randint(0, kClasses, {kPerRank * size_}));
    }
    // Different initial weights on every rank: the broadcast must fix that.
    torch::manual_seed(100 + rank_);
    model_ = Mlp();
    BroadcastModelState(model_, *world_);
    reference_ = Mlp();
    torch::NoGradGuard no_grad;
    auto source = model_.parameters().begin();
    for (const auto& parameter : reference_.parameters()) parameter.copy_(*source++);
    // Every rank trains the reference alone, in a group of its own.
    alone_ = world_->Split(rank_, 0);
  }

  // This rank's rows of step s: rank, rank + W, ... (the sampler's layout).
  torch::Tensor Shard(const torch::Tensor& all) const {
    return all.slice(0, rank_, c10::nullopt, size_);
  }

  // This rank's shard of step s as one micro-batch.
  MicroBatches ShardOf(int s) const { return {{Shard(inputs_[s]), Shard(labels_[s])}}; }
  // The whole global batch of step s, as one process with batch W*B sees it.
  MicroBatches GlobalBatchOf(int s) const { return {{inputs_[s], labels_[s]}}; }

  // Trains the reference alone on the global batches.
  void TrainReference() {
    Train(reference_, *alone_, kSteps, [&](int s) { return GlobalBatchOf(s); }, 25);
  }

  void ExpectSameParameters() {
    auto expected = reference_.parameters().begin();
    for (const auto& actual : model_.parameters()) {
      EXPECT_TRUE(torch::allclose(actual, *expected, 1e-4, 1e-5))
          << "max difference " << (actual - *expected).abs().max().item<float>();
      ++expected;
    }
  }

  static constexpr int kSteps = 4;
  static constexpr int64_t kPerRank = 8;
  std::unique_ptr<comm::Communicator> world_;
  std::unique_ptr<comm::Communicator> alone_;
  int rank_ = 0;
  int size_ = 1;
  std::vector<torch::Tensor> inputs_;
  std::vector<torch::Tensor> labels_;
  torch::jit::Module model_;
  torch::jit::Module reference_;
};

TEST_F(DataParallelTest, RanksWithBatchBMatchOneRankWithBatchWB) {
  // A tiny bucket cap gives one bucket per parameter, so several are in flight at once.
  Train(model_, *world_, kSteps, [&](int s) { return ShardOf(s); }, /*bucket_cap_mb=*/0.0001);
  TrainReference();
  ExpectSameParameters();
}

TEST_F(DataParallelTest, AccumulationMatchesTheFullBatch) {
  Train(model_, *world_, kSteps,
        [&](int s) {
          auto x = Shard(inputs_[s]);
          auto y = Shard(labels_[s]);
          return MicroBatches{{x.slice(0, 0, kPerRank / 2), y.slice(0, 0, kPerRank / 2)},
                              {x.slice(0, kPerRank / 2), y.slice(0, kPerRank / 2)}};
        },
        25);
  TrainReference();
  ExpectSameParameters();
}

TEST_F(DataParallelTest, ReplicasStayBitIdentical) {
  Train(model_, *world_, kSteps, [&](int s) { return ShardOf(s); }, 0.001);
  for (const auto& parameter : model_.parameters()) {
    auto from_root = parameter.detach().clone();
    world_->BroadcastSync(from_root, 0);
    EXPECT_TRUE(torch::equal(from_root, parameter));
  }
}

}  // namespace
}  // namespace slim::ddp
