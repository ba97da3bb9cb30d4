// Quantization statistics across ranks: every rank sees a different shard, yet all ranks
// end with bit-identical activation scales, for QAT (per-step observer sync) and PTQ
// (calibration merged over the ranks).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "runtime/base/errors.h"
#include "runtime/comm/mpi_communicator.h"
#include "runtime/models/builtin_models.h"
#include "strategies/graph/layer_finder.h"
#include "strategies/quant/quant_aware.h"
#include "strategies/quant/quant_post.h"

namespace slim::quant {
namespace {

using std::chrono::milliseconds;

class QuantizationAcrossRanks : public ::testing::Test {
 protected:
  void SetUp() override {
    comm_ = std::make_unique<comm::MpiCommunicator>(MPI_COMM_WORLD, false, milliseconds(30000));
    torch::manual_seed(11);  // the same model on every rank
    model_ = models::BuildBuiltinModel("resnet20", {{3, 8, 8}, 4});
  }

  // This rank's input: its own draw, scaled by rank + 1 so that the shards' maxima differ.
  torch::Tensor ShardInput(int64_t seed) const {
    torch::manual_seed(static_cast<uint64_t>(seed * 100 + comm_->Rank()));
    return torch::randn({6, 3, 8, 8}) * static_cast<double>(comm_->Rank() + 1);
  }

  // Every rank's value of `value`, gathered.
  torch::Tensor Gathered(const torch::Tensor& value) const {
    auto input = value.detach().to(torch::kFloat32).contiguous().reshape({-1});
    auto output = torch::empty({comm_->Size(), input.numel()});
    comm_->AllGather(input, output)->Wait(comm_->DefaultTimeout());
    return output;
  }

  // Asserts that every rank holds the same bits in `value`.
  void ExpectIdenticalOnAllRanks(const torch::Tensor& value, const std::string& what) const {
    const auto all = Gathered(value);
    for (int64_t rank = 1; rank < comm_->Size(); ++rank) {
      EXPECT_TRUE(torch::equal(all[rank], all[0])) << what << " differs on rank " << rank;
    }
  }

  // The input quantizer of the layer at `path` in model_.
  torch::jit::Module InputQuantizer(const std::string& path) const {
    return graph::ModulesByPath(model_).at(path).attr("input_quant").toModule();
  }

  std::unique_ptr<comm::Communicator> comm_;
  torch::jit::Module model_;
};

TEST_F(QuantizationAcrossRanks, QatScalesAreBitIdenticalAfterEveryStep) {
  quant::QuantAwareOptions options;
  options.quantize_op_types = {"conv2d", "linear"};
  QuantAware strategy(options, {comm_.get(), {}});
  strategy.Prepare(model_);
  auto first = model_.attr("conv1").toModule().attr("input_quant").toModule();
  for (int64_t step = 0; step < 3; ++step) {
    model_.forward({ShardInput(step)}).toTensor().sum().backward();
    // Before the sync each rank observed its own shard: the maxima differ.
    const auto local = Gathered(first.attr("batch_max").toTensor());
    EXPECT_FALSE(torch::equal(local[0], local[comm_->Size() - 1])) << "step " << step;
    strategies::HookContext context{model_, nullptr, *comm_, step};
    strategy.OnBeforeOptimizerStep(context);
    for (const auto& entry : model_.named_modules()) {
      if (!entry.value.hasattr("input_quant")) continue;
      ExpectIdenticalOnAllRanks(entry.value.attr("input_quant").toModule().attr("scale").toTensor(),
                                entry.name + " scale at step " + std::to_string(step));
    }
    // The first layer sees the input itself: after one step its threshold is the largest
    // |x| over all shards (moving average of one value).
    if (step == 0) {
      EXPECT_FLOAT_EQ(first.attr("scale").toTensor().item<float>(),
                      local.max().item<float>() / 127);
    }
  }
  ExpectIdenticalOnAllRanks(strategy.SaveState().at("accum"), "moving-average state");
}

TEST_F(QuantizationAcrossRanks, QatKeepsTheUnsignedGridUntilAnyRankSeesANegativeValue) {
  quant::QuantAwareOptions options;
  options.quantize_op_types = {"conv2d", "linear"};
  options.unsigned_activations = true;
  QuantAware strategy(options, {comm_.get(), {}});
  strategy.Prepare(model_);
  const auto first = InputQuantizer("conv1");
  const auto after_relu = InputQuantizer("layer1.0.conv2");
  const bool last_rank = comm_->Rank() == comm_->Size() - 1;
  // Step 1: non-negative inputs everywhere; step 2: negative ones on the last rank only;
  // step 3: non-negative again.
  const std::vector<int64_t> expected_first_min = {0, -127, -127};
  const std::vector<int64_t> expected_first_max = {255, 127, 127};
  for (int64_t step = 0; step < 3; ++step) {
    auto input = ShardInput(step);
    if (step != 1 || !last_rank) input = input.abs();
    model_.forward({input}).toTensor().sum().backward();
    const auto seen = Gathered(after_relu.attr("batch_max").toTensor()).max();
    strategies::HookContext context{model_, nullptr, *comm_, step};
    strategy.OnBeforeOptimizerStep(context);
    if (step == 0) {  // a moving average of one value: the largest |x| over the shards
      EXPECT_FLOAT_EQ(after_relu.attr("scale").toTensor().item<float>() * 255, seen.item<float>());
    }
    EXPECT_EQ(first.attr("quant_max").toInt(), expected_first_max[step]) << "step " << step;
    EXPECT_EQ(first.attr("quant_min").toInt(), expected_first_min[step]) << "step " << step;
    EXPECT_EQ(after_relu.attr("quant_min").toInt(), 0) << "step " << step;
    EXPECT_EQ(after_relu.attr("quant_max").toInt(), 255) << "step " << step;
    ExpectIdenticalOnAllRanks(first.attr("scale").toTensor(), "conv1 scale");
  }
  // A resumed run restores the grids with the observer state.
  const auto saved = strategy.SaveState();
  torch::manual_seed(11);
  model_ = models::BuildBuiltinModel("resnet20", {{3, 8, 8}, 4});
  QuantAware resumed(options, {comm_.get(), {}});
  resumed.Prepare(model_);
  resumed.LoadState(saved, model_);
  EXPECT_EQ(InputQuantizer("conv1").attr("quant_max").toInt(), 127);
  EXPECT_EQ(InputQuantizer("layer1.0.conv2").attr("quant_max").toInt(), 255);
  // A checkpoint from before the unsigned grid restores the symmetric grid everywhere.
  auto older = saved;
  older.erase("negative_seen");
  older.erase("unsigned_grid");
  resumed.LoadState(older, model_);
  EXPECT_EQ(InputQuantizer("layer1.0.conv2").attr("quant_max").toInt(), 127);
  // Its scales are for its grids: a run without the option does not take it.
  options.unsigned_activations = false;
  model_ = models::BuildBuiltinModel("resnet20", {{3, 8, 8}, 4});
  QuantAware symmetric(options, {comm_.get(), {}});
  symmetric.Prepare(model_);
  EXPECT_THROW(symmetric.LoadState(saved, model_), ModelError);
}

TEST_F(QuantizationAcrossRanks, PtqUsesTheUnsignedGridWhereNoRankSawANegativeValue) {
  quant::QuantPostOptions options;
  options.quantize_op_types = {"conv2d", "linear"};
  options.ptq_algo = "KL";
  options.unsigned_activations = true;
  QuantPost strategy(options, {comm_.get(), {}});
  strategy.Prepare(model_);
  // The input is negative on the last rank only.
  const bool last_rank = comm_->Rank() == comm_->Size() - 1;
  const auto input = last_rank ? ShardInput(1) : ShardInput(1).abs();
  strategy.Calibrate(model_, {input});
  EXPECT_EQ(InputQuantizer("conv1").attr("quant_min").toInt(), -127);
  for (const auto* path : {"layer1.0.conv1", "layer2.0.downsample.0", "fc"}) {
    const auto quantizer = InputQuantizer(path);
    EXPECT_EQ(quantizer.attr("quant_min").toInt(), 0) << path;
    EXPECT_EQ(quantizer.attr("quant_max").toInt(), 255) << path;
    ExpectIdenticalOnAllRanks(quantizer.attr("scale").toTensor(), std::string(path) + " scale");
  }
}

TEST_F(QuantizationAcrossRanks, PtqCalibrationMergesAllShards) {
  quant::QuantPostOptions options;
  options.quantize_op_types = {"conv2d", "linear"};
  options.ptq_algo = "KL";
  QuantPost strategy(options, {comm_.get(), {}});
  strategy.Prepare(model_);
  const std::vector<torch::Tensor> batches = {ShardInput(1), ShardInput(2)};
  strategy.Calibrate(model_, batches);
  for (const auto& entry : model_.named_modules()) {
    if (!entry.value.hasattr("input_quant")) continue;
    ExpectIdenticalOnAllRanks(entry.value.attr("input_quant").toModule().attr("scale").toTensor(),
                              entry.name + " scale");
  }
}

}  // namespace
}  // namespace slim::quant
