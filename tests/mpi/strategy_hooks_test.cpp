// The strategy hooks as the real training loop calls them, on every rank: their order, the
// collectives they may make, masks that the optimizer's momentum must not revive, and a
// structure change (a hidden layer made narrower) after which the optimizer, the gradient
// buckets, the checkpoint and the report follow the smaller model.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>

#include "data/channel_stats.h"
#include "data/hdf5_dataset_writer.h"
#include "data/synthetic_images.h"
#include "runtime/base/torch_compat.h"
#include "runtime/checkpoint/checkpoint_directory.h"
#include "runtime/comm/mpi_communicator.h"
#include "runtime/engine/trainer.h"
#include "strategies/compressor.h"
#include "tests/unit/temp_file.h"

namespace slim::strategies {
namespace {

constexpr int64_t kHidden = 32;
constexpr int64_t kNarrowed = 16;
constexpr int64_t kRestructureAtStep = 3;  // after this many optimizer steps
constexpr int64_t kFeatures = 3 * 32 * 32;

// An MLP over flattened images, as TorchScript.
torch::jit::Module Mlp() {
  torch::jit::Module model("__torch__.slim_test.HookMlp");
  model.register_attribute("training", c10::BoolType::get(), true);
  model.register_parameter("w1", (torch::randn({kHidden, kFeatures}) * 0.02).requires_grad_(), false);
  model.register_parameter("b1", torch::zeros({kHidden}).requires_grad_(), false);
  model.register_parameter("w2", (torch::randn({10, kHidden}) * 0.1).requires_grad_(), false);
  model.register_parameter("b2", torch::zeros({10}).requires_grad_(), false);
  model.define(R"(
    def forward(self, x):
        h = torch.relu(torch.linear(torch.flatten(x, 1), self.w1, self.b1))
        return torch.linear(h, self.w2, self.b2)
  )");
  return model;
}

// Records every hook; masks the first column block of w1 after each optimizer step
// (weights and momentum); keeps the first kNarrowed hidden units at kRestructureAtStep.
class RecordingStrategy : public Strategy {
 public:
  explicit RecordingStrategy(std::vector<std::string>& events) : events_(events) {}

  std::string Name() const override { return "Recording"; }
  void Prepare(torch::jit::Module& model) override { events_.push_back("prepare"); }
  void OnTrainBegin(HookContext& context) override { Record("train_begin", context); }
  void OnTrainEnd(HookContext& context) override { Record("train_end", context); }
  void OnEpochBegin(HookContext& context) override { Record("epoch_begin", context); }
  void OnEpochEnd(HookContext& context) override { Record("epoch_end", context); }
  void OnStepBegin(HookContext& context) override { Record("step_begin", context); }
  void OnBeforeEvaluation(HookContext& context) override { Record("eval_begin", context); }
  void OnAfterEvaluation(HookContext& context, const EvalMetrics& metrics) override {
    Record("eval_end", context);
    EXPECT_GT(metrics.samples, 0);
  }

  void OnBeforeOptimizerStep(HookContext& context) override {
    Record("before_optimizer_step", context);
    // A collective: every rank contributes 1.
    auto ones = torch::ones({1}, torch::kFloat64);
    context.comm.AllReduceSync(ones, comm::ReduceOp::kSum);
    EXPECT_EQ(ones.item<double>(), context.comm.Size());
  }

  void OnAfterOptimizerStep(HookContext& context) override {
    Record("after_optimizer_step", context);
    torch::NoGradGuard no_grad;
    auto w1 = context.model.attr("w1").toTensor();
    w1.narrow(1, 0, kFeatures / 2).zero_();
    auto& state = context.optimizer->state();
    auto found = state.find(compat::OptimizerStateKey(w1));
    ASSERT_NE(found, state.end()) << "the optimizer has no state for w1";
    auto& momentum = static_cast<torch::optim::SGDParamState&>(*found->second);
    momentum.momentum_buffer().narrow(1, 0, kFeatures / 2).zero_();
  }

  bool RestructureModel(HookContext& context) override {
    if (context.step != kRestructureAtStep) return false;
    Record("restructure", context);
    torch::NoGradGuard no_grad;
    auto& state = context.optimizer->state();
    // Keeps hidden units [0, kNarrowed): rows of w1 and b1, columns of w2.
    for (const auto& [name, dim] : std::vector<std::pair<std::string, int64_t>>{
             {"w1", 0}, {"b1", 0}, {"w2", 1}}) {
      auto old = context.model.attr(name).toTensor();
      auto narrowed = old.narrow(dim, 0, kNarrowed).clone().requires_grad_();
      auto found = state.find(compat::OptimizerStateKey(old));
      if (found != state.end()) {
        auto& momentum = static_cast<torch::optim::SGDParamState&>(*found->second);
        auto sliced = std::make_unique<torch::optim::SGDParamState>();
        sliced->momentum_buffer(momentum.momentum_buffer().narrow(dim, 0, kNarrowed).clone());
        state[compat::OptimizerStateKey(narrowed)] = std::move(sliced);
      }
      context.model.setattr(name, narrowed);
    }
    return true;
  }

  std::string Summary() const {
    std::string text;
    for (const auto& event : events_) text += event + "\n";
    return text;
  }

 private:
  void Record(const std::string& hook, const HookContext& context) {
    events_.push_back(hook + "@" + std::to_string(context.step));
  }

  std::vector<std::string>& events_;
};

class StrategyHooks : public ::testing::Test {
 protected:
  void SetUp() override {
    comm_ = std::make_unique<comm::MpiCommunicator>(MPI_COMM_WORLD, false,
                                                    std::chrono::milliseconds(60000));
    // Every rank writes the same data into a directory of its own.
    const auto images = data::GenerateImages(96, 5);
    data::WriteDatasetFile(dir_.File("train.h5"), images, data::ComputeChannelStats(images));
    config_.file = "hooks.yaml";
    config_.global.model = "hook-mlp";
    config_.global.train_data = dir_.File("train.h5");
    config_.global.batch_size = 8;
    config_.global.eval_batch_size = 16;
    config_.global.output_dir = dir_.File("out");
    config_.global.loader_threads = 1;
    config_.train.epochs = 2;
    config_.train.eval_iter = 4;
    config_.train.logging_iter = 100;
    config_.train.learning_rate.learning_rate = 0.05;
    config_.train.checkpoint.every_minutes = 0;
    std::filesystem::create_directories(config_.global.output_dir);
  }

  // Trains a fresh MLP with `strategy` (seeded alike on every rank).
  torch::jit::Module TrainWith(std::unique_ptr<Strategy> strategy) {
    torch::manual_seed(7);
    std::vector<std::unique_ptr<Strategy>> strategies;
    strategies.push_back(std::move(strategy));
    Compressor compressor(std::move(strategies));
    auto model = Mlp();
    compressor.Prepare(model);
    engine::TrainingSetup setup;
    setup.config = &config_;
    setup.comm = comm_.get();
    setup.model = model;
    setup.model_reference = config_.global.model;
    setup.train_data = std::make_shared<const data::Hdf5Dataset>(config_.global.train_data);
    setup.eval_data = setup.train_data;
    setup.compressor = &compressor;
    EXPECT_EQ(engine::Train(setup), engine::TrainingOutcome::kCompleted);
    return model;
  }

  testing::TempDir dir_;
  config::Config config_;
  std::unique_ptr<comm::Communicator> comm_;
};

TEST_F(StrategyHooks, RunInOrderOnEveryRankAndFollowAStructureChange) {
  std::vector<std::string> events;
  auto* recording = new RecordingStrategy(events);
  auto model = TrainWith(std::unique_ptr<Strategy>(recording));
  // 96 samples / (8 x ranks) batches per epoch, 2 epochs.
  const int64_t per_epoch = 96 / (8 * comm_->Size());
  const int64_t steps = 2 * per_epoch;
  const auto count = [&](const std::string& hook) {
    return std::count_if(events.begin(), events.end(),
                         [&](const auto& event) { return event.rfind(hook + "@", 0) == 0; });
  };
  const auto summary = recording->Summary();
  EXPECT_EQ(events.front(), "prepare") << summary;
  EXPECT_EQ(events.at(1), "train_begin@0") << summary;
  EXPECT_EQ(events.back(), "train_end@" + std::to_string(steps)) << summary;
  EXPECT_EQ(count("epoch_begin"), 2) << summary;
  EXPECT_EQ(count("epoch_end"), 2) << summary;
  EXPECT_EQ(count("step_begin"), steps) << summary;
  EXPECT_EQ(count("before_optimizer_step"), steps) << summary;
  EXPECT_EQ(count("after_optimizer_step"), steps) << summary;
  EXPECT_EQ(count("restructure"), 1) << summary;
  EXPECT_EQ(count("eval_begin"), count("eval_end")) << summary;
  EXPECT_GE(count("eval_end"), 1) << summary;
  // The first epoch ends after its last step, the second begins after that.
  const auto end_of_first = std::find(events.begin(), events.end(),
                                      "epoch_end@" + std::to_string(per_epoch));
  ASSERT_NE(end_of_first, events.end()) << summary;
  EXPECT_NE(std::find(end_of_first, events.end(), "epoch_begin@" + std::to_string(per_epoch)),
            events.end())
      << summary;

  // The narrowed model trained on (the gradient buckets followed it) and stayed identical
  // on every rank; the masked block stayed zero although momentum kept running.
  auto w1 = model.attr("w1").toTensor();
  ASSERT_EQ(w1.sizes(), (std::vector<int64_t>{kNarrowed, kFeatures}));
  EXPECT_EQ(model.attr("w2").toTensor().size(1), kNarrowed);
  EXPECT_EQ(w1.narrow(1, 0, kFeatures / 2).abs().max().item<float>(), 0);
  EXPECT_GT(w1.narrow(1, kFeatures / 2, kFeatures / 2).abs().max().item<float>(), 0);
  auto gathered = torch::zeros({comm_->Size(), w1.numel()});
  comm_->AllGather(w1.detach().reshape({-1}).contiguous(), gathered)
      ->Wait(comm_->DefaultTimeout());
  for (int64_t rank = 1; rank < comm_->Size(); ++rank) {
    EXPECT_TRUE(torch::equal(gathered[rank], gathered[0])) << "w1 differs on rank " << rank;
  }

  // The report counts the exported (narrowed) model; the checkpoint holds it.
  if (comm_->Rank() != 0) return;
  std::ifstream report_file(dir_.File("out/report.json"));
  const auto report = nlohmann::json::parse(report_file);
  const int64_t narrowed_parameters = kNarrowed * kFeatures + kNarrowed + 10 * kNarrowed + 10;
  EXPECT_EQ(report.at("parameters").get<int64_t>(), narrowed_parameters);
  const auto saved = checkpoint::LoadNewestValid(
      checkpoint::CheckpointDirectory(config_.global.output_dir));
  ASSERT_TRUE(saved.has_value());
  EXPECT_EQ(saved->state.parameters.at("w1").sizes(), w1.sizes());
}

}  // namespace
}  // namespace slim::strategies
