// Capturing and restoring training state, the resume point arithmetic and the metrics
// log a resume trims.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>

#include "runtime/checkpoint/state_capture.h"
#include "runtime/config/options.h"
#include "runtime/models/model_loader.h"
#include "runtime/engine/metrics_log.h"
#include "runtime/engine/optimizer_factory.h"
#include "runtime/engine/resume_point.h"
#include "tests/unit/temp_file.h"

namespace slim {
namespace {

torch::jit::Module TinyModel(int64_t outputs = 3) {
  torch::jit::Module model("__torch__.slim.test.Tiny");
  model.register_parameter("weight", torch::randn({outputs, 4}).requires_grad_(), false);
  model.register_parameter("bias", torch::randn({outputs}).requires_grad_(), false);
  model.register_buffer("calls", torch::zeros({}, torch::kInt64));
  model.define(R"(
    def forward(self, x):
        self.calls += 1
        return torch.matmul(x, self.weight.t()) + self.bias
  )");
  return model;
}

// Runs `steps` optimizer steps on fixed data.
void TrainSteps(torch::jit::Module& model, torch::optim::Optimizer& optimizer, int steps) {
  for (int i = 0; i < steps; ++i) {
    auto x = torch::arange(8, torch::kFloat32).reshape({2, 4}) / (i + 1);
    auto loss = model.forward({x}).toTensor().pow(2).sum();
    optimizer.zero_grad();
    loss.backward();
    optimizer.step();
  }
}

class StateCaptureTest : public ::testing::TestWithParam<std::string> {};

TEST_P(StateCaptureTest, RestoredRunContinuesBitForBit) {
  config::OptimizerOptions options;
  options.type = GetParam();
  options.weight_decay = 0.01;
  torch::manual_seed(1);
  auto original = TinyModel();
  auto optimizer = engine::BuildOptimizer(options, models::TrainableParameters(original), 0.01);
  TrainSteps(original, *optimizer, 3);

  checkpoint::CheckpointState state;
  checkpoint::CaptureModel(original, state);
  checkpoint::CaptureOptimizer(*optimizer, options.type, original, state);
  ASSERT_EQ(state.optimizer_state.size(), 2u);

  torch::manual_seed(2);  // different initial values, all overwritten by the restore
  auto resumed = TinyModel();
  ASSERT_TRUE(checkpoint::ModelDifferences(state, resumed).empty());
  checkpoint::RestoreModel(state, resumed);
  auto resumed_optimizer =
      engine::BuildOptimizer(options, models::TrainableParameters(resumed), 0.01);
  checkpoint::RestoreOptimizer(state, *resumed_optimizer, resumed);

  TrainSteps(original, *optimizer, 2);
  TrainSteps(resumed, *resumed_optimizer, 2);
  EXPECT_TRUE(torch::equal(original.attr("weight").toTensor(), resumed.attr("weight").toTensor()));
  EXPECT_TRUE(torch::equal(original.attr("bias").toTensor(), resumed.attr("bias").toTensor()));
  EXPECT_EQ(resumed.attr("calls").toTensor().item<int64_t>(), 5);
}

INSTANTIATE_TEST_SUITE_P(Optimizers, StateCaptureTest,
                         ::testing::Values("Momentum", "Adam", "AdamW"));

TEST(StateCaptureTest, DifferencesNameEveryMismatchedTensor) {
  checkpoint::CheckpointState state;
  checkpoint::CaptureModel(TinyModel(3), state);
  state.parameters["extra.weight"] = torch::zeros({1});
  state.buffers.erase("calls");
  const auto differences = checkpoint::ModelDifferences(state, TinyModel(5));
  ASSERT_EQ(differences.size(), 4u);
  EXPECT_EQ(differences[0], "parameter weight: checkpoint [3, 4] Float, model [5, 4] Float");
  EXPECT_EQ(differences[1], "parameter bias: checkpoint [3] Float, model [5] Float");
  EXPECT_EQ(differences[2], "not in the model: parameter extra.weight");
  EXPECT_EQ(differences[3], "missing in the checkpoint: buffer calls");

  auto model = TinyModel(5);
  const auto before = model.attr("weight").toTensor().clone();
  const auto skipped = checkpoint::RestoreMatchingWeights(state, model);
  EXPECT_EQ(skipped, (std::vector<std::string>{"weight", "bias", "calls"}));
  EXPECT_TRUE(torch::equal(model.attr("weight").toTensor(), before));
}

checkpoint::TrainingProgress Progress(int64_t step, int64_t micro_batch, int64_t per_epoch,
                                      int64_t global_micro_batch, int64_t accumulate) {
  checkpoint::TrainingProgress progress;
  progress.step = step;
  progress.micro_batch = micro_batch;
  progress.batches_per_epoch = per_epoch;
  progress.global_micro_batch = global_micro_batch;
  progress.accumulate_steps = accumulate;
  return progress;
}

TEST(ResumePointTest, SameGlobalBatchContinuesExactly) {
  const auto point = engine::ResumePointFor(Progress(7, 14, 12, 32, 2), 12, 32, 2);
  EXPECT_TRUE(point.exact);
  EXPECT_EQ(point.step, 7);
  EXPECT_EQ(point.micro_batch, 14);
}

TEST(ResumePointTest, LargerGlobalBatchContinuesAtTheSampleOffset) {
  // Stopped after 5 batches of 32 in epoch 1 (sample 160); batches of 64 resume at 192.
  const auto point = engine::ResumePointFor(Progress(17, 17, 12, 32, 1), 6, 64, 1);
  EXPECT_FALSE(point.exact);
  EXPECT_EQ(point.micro_batch, 6 + 3);
  EXPECT_EQ(point.step, 9);
  EXPECT_NE(point.note.find("sample 160 of epoch 1"), std::string::npos) << point.note;
  EXPECT_NE(point.note.find("sample 192 of epoch 1"), std::string::npos) << point.note;
}

TEST(ResumePointTest, RoundsUpToAWholeStepAcrossTheEpochEnd) {
  // Sample 352 of 384 with batches of 64 and 2 per step: the next step starts epoch 1.
  const auto point = engine::ResumePointFor(Progress(11, 11, 12, 32, 1), 6, 64, 2);
  EXPECT_EQ(point.micro_batch, 6);
  EXPECT_EQ(point.step, 3);
}

TEST(MetricsLogTest, ResumeKeepsTheLinesTheCheckpointSaw) {
  testing::TempDir dir;
  const std::string path = dir.Write("metrics.jsonl", "{\"step\":1}\n{\"step\":2}\n{\"step\":3}\n");
  {
    engine::MetricsLog log(path, 2);
    EXPECT_EQ(log.LinesWritten(), 2);
    log.Write({{"step", 9}});
    EXPECT_EQ(log.LinesWritten(), 3);
  }
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, "{\"step\":1}\n{\"step\":2}\n{\"step\":9}\n");
  engine::MetricsLog fresh(path, 0);
  EXPECT_EQ(fresh.LinesWritten(), 0);
}

}  // namespace
}  // namespace slim
