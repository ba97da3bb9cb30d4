// Pruning masks across ranks and through the optimizer: ranks with identical weights hold
// bit-identical masks, a rank whose weights drifted is caught, and pruned weights stay
// zero through optimizer steps with momentum, weight decay and Adam's moments. Head
// importance by KL divergence averages over every rank's samples.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "runtime/base/errors.h"
#include "runtime/comm/mpi_communicator.h"
#include "runtime/models/builtin_models.h"
#include "strategies/prune/asp_prune.h"
#include "strategies/prune/channel_graph.h"
#include "strategies/prune/encoder_importance.h"
#include "strategies/prune/encoder_layers.h"
#include "strategies/prune/unstructure_prune.h"

namespace slim::prune {
namespace {

class PruneAcrossRanks : public ::testing::Test {
 protected:
  void SetUp() override {
    comm_ = std::make_unique<comm::MpiCommunicator>(MPI_COMM_WORLD, false,
                                                    std::chrono::milliseconds(30000));
    torch::manual_seed(5);  // the same model on every rank
    model_ = models::BuildBuiltinModel("resnet20", {{3, 8, 8}, 4});
  }

  UnstructurePruneOptions GlobalHalf() const {
    UnstructurePruneOptions options;
    options.ratio = 0.5;
    options.prune_params_type = "none";
    return options;
  }

  // `steps` optimizer steps, calling the hooks the training loop calls, with `optimizer`
  // over the model's parameters. Every rank draws the same batches (gradients are not
  // averaged here), so the weights stay identical across ranks.
  void Train(strategies::Strategy& strategy, torch::optim::Optimizer& optimizer, int steps) {
    strategies::HookContext context{model_, &optimizer, *comm_, 0, steps};
    strategy.OnTrainBegin(context);
    for (int step = 0; step < steps; ++step) {
      torch::manual_seed(static_cast<uint64_t>(100 + step));
      optimizer.zero_grad();
      const auto logits = model_.forward({torch::randn({4, 3, 8, 8})}).toTensor();
      torch::nn::functional::cross_entropy(logits, torch::randint(0, 4, {4})).backward();
      strategy.OnBeforeOptimizerStep(context);
      optimizer.step();
      context.step = step + 1;
      strategy.OnAfterOptimizerStep(context);
    }
  }

  std::vector<torch::Tensor> Parameters() const {
    std::vector<torch::Tensor> parameters;
    for (const auto& parameter : model_.parameters()) parameters.push_back(parameter);
    return parameters;
  }

  std::unique_ptr<comm::Communicator> comm_;
  torch::jit::Module model_;
};

TEST_F(PruneAcrossRanks, RanksWithIdenticalWeightsHoldIdenticalMasks) {
  UnstructurePrune strategy(GlobalHalf(), {comm_.get(), {}});
  strategy.Prepare(model_);
  torch::optim::SGD optimizer(Parameters(), torch::optim::SGDOptions(0.1));
  Train(strategy, optimizer, 1);  // the check runs inside, and throws on a mismatch
  const auto masks = strategy.SaveState();
  for (const auto& [name, mask] : masks) {
    if (mask.dim() == 0) continue;
    auto gathered = torch::zeros({comm_->Size(), mask.numel()}, torch::kFloat32);
    comm_->AllGather(mask.to(torch::kFloat32).reshape({-1}).contiguous(), gathered)
        ->Wait(comm_->DefaultTimeout());
    for (int64_t rank = 1; rank < comm_->Size(); ++rank) {
      EXPECT_TRUE(torch::equal(gathered[rank], gathered[0])) << name << " on rank " << rank;
    }
  }
}

TEST_F(PruneAcrossRanks, RankWhoseWeightsDriftedIsCaught) {
  if (comm_->Size() < 2) GTEST_SKIP() << "needs two ranks";
  UnstructurePrune strategy(GlobalHalf(), {comm_.get(), {}});
  strategy.Prepare(model_);
  if (comm_->Rank() == 1) {
    torch::NoGradGuard no_grad;
    for (auto parameter : model_.parameters()) parameter.mul_(torch::rand_like(parameter));
  }
  torch::optim::SGD optimizer(Parameters(), torch::optim::SGDOptions(0.1));
  strategies::HookContext context{model_, &optimizer, *comm_, 0, 1};
  try {
    strategy.OnTrainBegin(context);
    FAIL() << "no CommError on rank " << comm_->Rank();
  } catch (const CommError& error) {
    EXPECT_NE(std::string(error.what()).find("UnstructurePrune: the pruning masks differ"),
              std::string::npos)
        << error.what();
  }
}

// Every weight `strategy` pruned is still exactly zero, and so is the optimizer's state there.
void ExpectPrunedStayZero(const strategies::Strategy& strategy, const torch::jit::Module& model,
                          torch::optim::Optimizer& optimizer) {
  const auto parameters = model.named_parameters();
  for (const auto& [name, mask] : strategy.SaveState()) {
    if (mask.dim() == 0) continue;
    torch::Tensor weight;
    for (const auto& parameter : parameters) {
      if (parameter.name == name) weight = parameter.value;
    }
    ASSERT_TRUE(weight.defined()) << name;
    const auto pruned = mask == 0;
    ASSERT_GT(pruned.sum().item<int64_t>(), 0) << name;
    EXPECT_EQ(weight.masked_select(pruned).abs().max().item<float>(), 0) << name;
    const auto& state = optimizer.state().at(c10::guts::to_string(weight.unsafeGetTensorImpl()));
    torch::Tensor moment;
    if (auto* sgd = dynamic_cast<torch::optim::SGDParamState*>(state.get())) {
      moment = sgd->momentum_buffer();
    } else if (auto* adam = dynamic_cast<torch::optim::AdamParamState*>(state.get())) {
      moment = adam->exp_avg();
    }
    ASSERT_TRUE(moment.defined()) << name;
    EXPECT_EQ(moment.masked_select(pruned).abs().max().item<float>(), 0) << name;
  }
}

TEST_F(PruneAcrossRanks, PrunedWeightsStayZeroWithMomentumAndWeightDecay) {
  // GMP: the ratio rises at steps 2 and 4, after momentum has built up on dense weights.
  auto options = GlobalHalf();
  options.prune_strategy = "gmp";
  options.gmp_config.stable_iterations = 2;
  options.gmp_config.pruning_iterations = 2;
  options.gmp_config.pruning_steps = 1;
  UnstructurePrune strategy(options, {comm_.get(), {}});
  strategy.Prepare(model_);
  torch::optim::SGD optimizer(
      Parameters(), torch::optim::SGDOptions(0.1).momentum(0.9).weight_decay(0.01).nesterov(true));
  Train(strategy, optimizer, 6);
  ExpectPrunedStayZero(strategy, model_, optimizer);
}

TEST_F(PruneAcrossRanks, TwoFourWeightsStayZeroWithAdam) {
  AspPrune strategy(AspPruneOptions{}, {comm_.get(), {}});
  strategy.Prepare(model_);
  torch::optim::Adam optimizer(Parameters(), torch::optim::AdamOptions(0.01).weight_decay(0.01));
  Train(strategy, optimizer, 3);
  ExpectPrunedStayZero(strategy, model_, optimizer);
}

// The KL divergence of the output distributions with and without one head, computed
// here with torch's kl_div over `inputs`: summed over samples.
double AblationDivergenceSum(torch::jit::Module& model, const std::string& out_weight,
                             int64_t head, int64_t head_dim, const torch::Tensor& inputs) {
  torch::NoGradGuard no_grad;
  model.eval();
  const auto full = torch::softmax(model.forward({inputs}).toTensor().to(torch::kDouble), -1);
  auto weight = TensorAt(model, out_weight);
  const auto saved = weight.clone();
  weight.narrow(1, head * head_dim, head_dim).zero_();
  const auto without = torch::log_softmax(model.forward({inputs}).toTensor().to(torch::kDouble), -1);
  weight.copy_(saved);
  return torch::kl_div(without, full, at::Reduction::Sum).item<double>();
}

TEST(HeadImportanceAcrossRanks, KlDivergenceAveragesEveryRanksSamples) {
  comm::MpiCommunicator comm(MPI_COMM_WORLD, false, std::chrono::milliseconds(30000));
  torch::manual_seed(5);  // the same model on every rank
  auto model = models::BuildBuiltinModel("transformer", {{12}, 5});
  const auto layers = FindEncoderLayers(model);
  ASSERT_EQ(layers.size(), 2u);
  {
    torch::NoGradGuard no_grad;  // head 2 of layer 1 does nothing
    TensorAt(model, layers[1].attention.out_weight).narrow(1, 2 * 16, 16).zero_();
  }
  const auto rank_inputs = [](int rank) {
    torch::manual_seed(static_cast<uint64_t>(40 + rank));
    return torch::randint(0, 256, {3 + rank, 12}, torch::kInt64);  // ranks differ in count
  };
  const auto before = TensorAt(model, layers[0].attention.out_weight).clone();
  const auto divergences = HeadAblationDivergences(
      model, layers, {{rank_inputs(comm.Rank()), torch::zeros({3 + comm.Rank()}, torch::kInt64)}},
      comm);
  EXPECT_TRUE(torch::equal(before, TensorAt(model, layers[0].attention.out_weight)));
  ASSERT_EQ(divergences.size(), 2u);
  ASSERT_EQ(divergences[1].size(), 4u);
  EXPECT_EQ(divergences[1][2], 0.0);
  double sum = 0;
  int64_t samples = 0;
  for (int rank = 0; rank < comm.Size(); ++rank) {
    const auto inputs = rank_inputs(rank);
    sum += AblationDivergenceSum(model, layers[0].attention.out_weight, 1, 16, inputs);
    samples += inputs.size(0);
  }
  EXPECT_GT(divergences[0][1], 1e-6);
  EXPECT_NEAR(divergences[0][1], sum / static_cast<double>(samples), 1e-9 + 1e-6 * sum / samples);
}

}  // namespace
}  // namespace slim::prune
