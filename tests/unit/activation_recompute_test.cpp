// Activation recompute: the recomputing forward gives the gradients, buffers and random
// draws of the plain forward, bit for bit, and refuses what it cannot do.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "runtime/base/errors.h"
#include "runtime/engine/activation_recompute.h"
#include "runtime/models/builtin_models.h"
#include "runtime/models/model_loader.h"

namespace slim {
namespace {

using engine::ActivationRecompute;

// The state one training micro-step leaves: the loss, every parameter's gradient, every
// buffer, and the next draw of the CPU generator.
struct StepResult {
  torch::Tensor loss;
  std::vector<torch::Tensor> gradients;
  std::vector<torch::Tensor> buffers;
  torch::Tensor next_draw;
};

StepResult RunStep(torch::jit::Module& model, const torch::Tensor& inputs,
                   const std::function<torch::jit::IValue(const torch::Tensor&)>& forward) {
  for (const auto& parameter : model.parameters()) parameter.mutable_grad() = torch::Tensor();
  StepResult result;
  // Twice: the second forward runs TorchScript's optimized plan.
  for (int pass = 0; pass < 2; ++pass) {
    result.loss = forward(inputs).toTensor().pow(2).mean();
    result.loss.backward();
  }
  for (const auto& parameter : model.parameters()) result.gradients.push_back(parameter.grad());
  for (const auto& buffer : model.buffers()) result.buffers.push_back(buffer.clone());
  result.next_draw = torch::rand({4});
  return result;
}

void ExpectSameStep(const StepResult& plain, const StepResult& recomputed) {
  EXPECT_TRUE(torch::equal(plain.loss, recomputed.loss));
  ASSERT_EQ(plain.gradients.size(), recomputed.gradients.size());
  for (size_t i = 0; i < plain.gradients.size(); ++i) {
    ASSERT_TRUE(recomputed.gradients[i].defined()) << "parameter " << i;
    EXPECT_TRUE(torch::equal(plain.gradients[i], recomputed.gradients[i])) << "parameter " << i;
  }
  ASSERT_EQ(plain.buffers.size(), recomputed.buffers.size());
  for (size_t i = 0; i < plain.buffers.size(); ++i) {
    EXPECT_TRUE(torch::equal(plain.buffers[i], recomputed.buffers[i])) << "buffer " << i;
  }
  EXPECT_TRUE(torch::equal(plain.next_draw, recomputed.next_draw));
}

// Trains one step of two identically initialised copies of `make()`, one plain and one
// recomputing `patterns`, from the same generator state.
void ExpectRecomputeMatchesPlain(const std::function<torch::jit::Module()>& make,
                                 const torch::Tensor& inputs,
                                 const std::vector<std::string>& patterns,
                                 const std::vector<std::string>& expected_paths) {
  torch::manual_seed(7);
  auto plain_model = make();
  torch::manual_seed(7);
  auto recomputed_model = make();
  ActivationRecompute recompute(recomputed_model, patterns, {}, "test.yaml");
  EXPECT_EQ(recompute.Paths(), expected_paths);

  torch::manual_seed(11);
  const auto plain = RunStep(plain_model, inputs, [&](const torch::Tensor& x) {
    return plain_model.forward({x});
  });
  torch::manual_seed(11);
  const auto recomputed = RunStep(recomputed_model, inputs, [&](const torch::Tensor& x) {
    return recompute.Forward(x);
  });
  ExpectSameStep(plain, recomputed);
}

torch::jit::Module ResNet20() {
  return models::BuildBuiltinModel("resnet20", {{3, 16, 16}, 10});
}

TEST(ActivationRecomputeTest, ResNetGradientsAndBatchNormStatisticsAreBitwiseThePlainOnes) {
  const auto inputs = torch::randn({8, 3, 16, 16});
  ExpectRecomputeMatchesPlain(ResNet20, inputs, {"layer2"}, {"layer2"});
  ExpectRecomputeMatchesPlain(ResNet20, inputs, {"layer1.*", "layer3.2"},
                              {"layer1.0", "layer1.1", "layer1.2", "layer3.2"});
}

TEST(ActivationRecomputeTest, TransformerLayersRecomputeBitwise) {
  const auto make = [] { return models::BuildBuiltinModel("transformer", {{12}, 4}); };
  const auto tokens = torch::randint(0, 256, {4, 12}, torch::kInt64);
  ExpectRecomputeMatchesPlain(make, tokens, {"layers.*"}, {"layers.0", "layers.1"});
}

// A parent whose child draws dropout masks and moves a running average that its output
// depends on, as quantizer observers do.
torch::jit::Module DropoutModel() {
  torch::jit::Module block("__torch__.slim.test.NoisyBlock");
  block.register_attribute("training", c10::BoolType::get(), true);
  block.register_parameter("weight", torch::randn({6, 6}).requires_grad_(), false);
  block.register_buffer("running_max", torch::ones({}));
  block.register_attribute("calls", c10::IntType::get(), 0);
  block.define(R"(
    def forward(self, x, scale: float):
        self.calls += 1
        self.running_max = 0.9 * self.running_max + 0.1 * x.detach().abs().max()
        h = torch.dropout(torch.relu(torch.matmul(x, self.weight)), 0.5, self.training)
        return h / self.running_max * scale, self.calls
  )");
  torch::jit::Module model("__torch__.slim.test.NoisyModel");
  model.register_attribute("training", c10::BoolType::get(), true);
  model.register_parameter("weight", torch::randn({6, 6}).requires_grad_(), false);
  model.register_module("block", block);
  model.define(R"(
    def forward(self, x):
        h, calls = self.block.forward(torch.matmul(x, self.weight), 2.0)
        return torch.dropout(h, 0.25, self.training) + x
  )");
  model.train();
  return model;
}

TEST(ActivationRecomputeTest, DropoutMasksAndModuleStateAreReplayed) {
  const auto inputs = torch::randn({16, 6});
  ExpectRecomputeMatchesPlain(DropoutModel, inputs, {"block"}, {"block"});

  torch::manual_seed(3);
  auto model = DropoutModel();
  ActivationRecompute recompute(model, {"block"}, {}, "test.yaml");
  recompute.Forward(inputs).toTensor().sum().backward();
  EXPECT_EQ(model.attr("block").toModule().attr("calls").toInt(), 1)
      << "the backward's second run must not count as a call";
  const auto gradient = model.attr("weight").toTensor().grad();
  ASSERT_TRUE(gradient.defined());
  EXPECT_GT(gradient.abs().sum().item<double>(), 0);
}

TEST(ActivationRecomputeTest, WithoutAutogradItIsThePlainForward) {
  torch::manual_seed(5);
  auto model = ResNet20();
  model.eval();
  ActivationRecompute recompute(model, {"layer*"}, {}, "test.yaml");
  EXPECT_EQ(recompute.Paths(), (std::vector<std::string>{"layer1", "layer2", "layer3"}));
  torch::NoGradGuard no_grad;
  const auto inputs = torch::randn({2, 3, 16, 16});
  EXPECT_TRUE(torch::equal(recompute.Forward(inputs).toTensor(),
                           model.forward({inputs}).toTensor()));
}

TEST(ActivationRecomputeTest, UnknownModuleIsAConfigErrorWithTheClosestName) {
  auto model = ResNet20();
  try {
    ActivationRecompute(model, {"layer4"}, {}, "job.yaml");
    FAIL() << "no error for a module that does not exist";
  } catch (const ConfigError& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("job.yaml"), std::string::npos) << message;
    EXPECT_NE(message.find("TrainConfig.recompute_config.modules"), std::string::npos) << message;
    EXPECT_NE(message.find("'layer4'"), std::string::npos) << message;
    EXPECT_NE(message.find("did you mean 'layer1'"), std::string::npos) << message;
  }
}

TEST(ActivationRecomputeTest, ModuleHoldingADistilledNodeIsRefused) {
  auto model = ResNet20();
  try {
    ActivationRecompute(model, {"layer3"}, {"layer3.2"}, "job.yaml");
    FAIL() << "no error for a recomputed module holding a tapped one";
  } catch (const ConfigError& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("'layer3' holds 'layer3.2'"), std::string::npos) << message;
  }
  EXPECT_NO_THROW(ActivationRecompute(model, {"layer2"}, {"layer3.2"}, "job.yaml"));
}

}  // namespace
}  // namespace slim
