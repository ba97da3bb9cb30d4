// Mixed precision: float16's loss scaler agrees over the ranks (an overflow on one rank
// skips the step on all of them and shrinks the scale; good steps grow it), and the
// autocast scope switches LibTorch's autocast on and back off.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <limits>

#include "runtime/base/errors.h"
#include "runtime/comm/mpi_communicator.h"
#include "runtime/engine/loss_scaler.h"
#include "runtime/engine/mixed_precision.h"

namespace slim::engine {
namespace {

using std::chrono::milliseconds;

config::AmpOptions Float16(int64_t incr_every_n_steps, bool dynamic = true) {
  config::AmpOptions options;
  options.enable = true;
  options.dtype = "float16";
  options.init_loss_scaling = 1024;
  options.incr_every_n_steps = incr_every_n_steps;
  options.dynamic_loss_scaling = dynamic;
  return options;
}

class LossScalerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    world_ = std::make_unique<comm::MpiCommunicator>(MPI_COMM_WORLD, false, milliseconds(30000));
  }

  // Two parameters whose gradients are `scale` times [1, 2, 3] and [4, 5].
  std::vector<torch::Tensor> ScaledGradients(double scale) {
    std::vector<torch::Tensor> parameters = {torch::zeros({3}).requires_grad_(),
                                             torch::zeros({2}).requires_grad_()};
    parameters[0].mutable_grad() = torch::tensor({1.f, 2.f, 3.f}) * scale;
    parameters[1].mutable_grad() = torch::tensor({4.f, 5.f}) * scale;
    return parameters;
  }

  bool LastRank() const { return world_->Rank() == world_->Size() - 1; }

  std::unique_ptr<comm::Communicator> world_;
};

TEST_F(LossScalerTest, UnscalesTheGradientsOfAGoodStep) {
  LossScaler scaler(Float16(100));
  auto parameters = ScaledGradients(scaler.scale());
  EXPECT_FALSE(scaler.UnscaleAndUpdate(parameters, *world_));
  EXPECT_TRUE(torch::equal(parameters[0].grad(), torch::tensor({1.f, 2.f, 3.f})));
  EXPECT_TRUE(torch::equal(parameters[1].grad(), torch::tensor({4.f, 5.f})));
  EXPECT_EQ(scaler.scale(), 1024);
  EXPECT_EQ(scaler.growth_tracker(), 1);
  EXPECT_TRUE(torch::equal(scaler.Scale(torch::tensor(0.5f)), torch::tensor(512.f)));
}

TEST_F(LossScalerTest, AnOverflowOnOneRankSkipsTheStepOnEveryRankAndHalvesTheScale) {
  LossScaler scaler(Float16(100));
  auto parameters = ScaledGradients(scaler.scale());
  if (LastRank()) parameters[1].grad()[0] = std::numeric_limits<float>::infinity();
  EXPECT_TRUE(scaler.UnscaleAndUpdate(parameters, *world_));
  EXPECT_EQ(scaler.scale(), 512);
  EXPECT_EQ(scaler.growth_tracker(), 0);
  // A NaN does the same.
  parameters = ScaledGradients(scaler.scale());
  if (LastRank()) parameters[0].grad()[2] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_TRUE(scaler.UnscaleAndUpdate(parameters, *world_));
  EXPECT_EQ(scaler.scale(), 256);
}

TEST_F(LossScalerTest, GrowsAfterIncrEveryNGoodStepsInARow) {
  LossScaler scaler(Float16(3));
  for (int step = 0; step < 2; ++step) {
    auto parameters = ScaledGradients(scaler.scale());
    EXPECT_FALSE(scaler.UnscaleAndUpdate(parameters, *world_));
  }
  EXPECT_EQ(scaler.scale(), 1024);
  auto parameters = ScaledGradients(scaler.scale());
  EXPECT_FALSE(scaler.UnscaleAndUpdate(parameters, *world_));
  EXPECT_EQ(scaler.scale(), 2048);
  EXPECT_EQ(scaler.growth_tracker(), 0);
  scaler.Restore(64, 2);
  EXPECT_EQ(scaler.scale(), 64);
  EXPECT_EQ(scaler.growth_tracker(), 2);
}

TEST_F(LossScalerTest, StaticScalingSkipsOverflowsButKeepsItsScale) {
  LossScaler scaler(Float16(1, /*dynamic=*/false));
  auto parameters = ScaledGradients(scaler.scale());
  if (LastRank()) parameters[0].grad()[0] = std::numeric_limits<float>::infinity();
  EXPECT_TRUE(scaler.UnscaleAndUpdate(parameters, *world_));
  parameters = ScaledGradients(scaler.scale());
  EXPECT_FALSE(scaler.UnscaleAndUpdate(parameters, *world_));
  EXPECT_EQ(scaler.scale(), 1024);
}

TEST(AutocastScope, LinearRunsInBfloat16InsideAndFloat32Outside) {
  const auto x = torch::randn({2, 4});
  const auto w = torch::randn({3, 4});
  {
    AutocastScope scope(torch::kCPU, torch::kBFloat16);
    EXPECT_EQ(torch::linear(x, w).scalar_type(), torch::kBFloat16);
    {
      AutocastScope off(torch::kCPU, torch::kFloat);  // AMP off: changes nothing
      EXPECT_EQ(torch::linear(x, w).scalar_type(), torch::kBFloat16);
    }
    // Ops outside the autocast lists run in the type of their input.
    EXPECT_EQ(torch::relu(x).scalar_type(), torch::kFloat);
  }
  EXPECT_EQ(torch::linear(x, w).scalar_type(), torch::kFloat);
}

TEST(AutocastType, DefaultsPerDeviceAndRefusesFloat16OnTheCpu) {
  config::AmpOptions options;
  EXPECT_EQ(AutocastType(options, torch::kCPU, "c.yaml"), torch::kFloat);
  options.enable = true;
  EXPECT_EQ(AutocastType(options, torch::kCPU, "c.yaml"), torch::kBFloat16);
  EXPECT_EQ(AutocastType(options, torch::Device(torch::kCUDA, 0), "c.yaml"), torch::kHalf);
  options.dtype = "float16";
  try {
    AutocastType(options, torch::kCPU, "c.yaml");
    FAIL() << "float16 on the CPU was accepted";
  } catch (const ConfigError& error) {
    EXPECT_NE(std::string(error.what()).find("c.yaml: TrainConfig.amp_config.dtype"),
              std::string::npos)
        << error.what();
  }
}

}  // namespace
}  // namespace slim::engine
