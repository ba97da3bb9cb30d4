#include "runtime/models/builtin_models.h"

#include <gtest/gtest.h>

#include "runtime/base/errors.h"
#include "runtime/models/model_loader.h"
#include "tests/unit/temp_file.h"

namespace slim::models {
namespace {

torch::Tensor ExampleInput(const std::string& name, int64_t batch) {
  if (name == "transformer") return torch::randint(0, 256, {batch, 16}, torch::kInt64);
  return torch::randn({batch, 3, 16, 16});
}

ModelShape ShapeFor(const std::string& name) {
  return name == "transformer" ? ModelShape{{16}, 5} : ModelShape{{3, 16, 16}, 5};
}

class BuiltinModelTest : public ::testing::TestWithParam<std::string> {};

TEST_P(BuiltinModelTest, TrainsSavesAndReloads) {
  const std::string name = GetParam();
  torch::manual_seed(0);
  auto model = BuildBuiltinModel(name, ShapeFor(name));
  const auto input = ExampleInput(name, 4);
  auto logits = model.forward({input}).toTensor();
  ASSERT_EQ(logits.sizes(), (std::vector<int64_t>{4, 5}));
  logits.sum().backward();
  for (const auto& parameter : model.parameters()) {
    ASSERT_TRUE(parameter.grad().defined());
  }

  model.eval();
  const auto expected = model.forward({input}).toTensor();
  testing::TempDir dir;
  model.save(dir.File("m.pt"));
  auto reloaded = LoadModel(dir.File("m.pt"), ShapeFor(name), "Global.model");
  reloaded.eval();
  EXPECT_TRUE(torch::equal(reloaded.forward({input}).toTensor(), expected));
}

TEST_P(BuiltinModelTest, SameSeedSameWeights) {
  const std::string name = GetParam();
  torch::manual_seed(3);
  auto first = BuildBuiltinModel(name, ShapeFor(name));
  torch::manual_seed(3);
  auto second = BuildBuiltinModel(name, ShapeFor(name));
  auto a = first.parameters().begin();
  for (const auto& b : second.parameters()) EXPECT_TRUE(torch::equal(*a++, b));
}

INSTANTIATE_TEST_SUITE_P(AllBuiltins, BuiltinModelTest,
                         ::testing::Values("resnet20", "resnet56", "mobilenetv2", "fmnist_resnet",
                                           "transformer"));

TEST(BuiltinModels, UnknownNameListsValidOnes) {
  try {
    BuildBuiltinModel("resnet21", ModelShape{{3, 32, 32}, 10});
    FAIL() << "no ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("resnet20, resnet56"), std::string::npos) << e.what();
  }
}

TEST(BuiltinModels, WrongInputRankIsAModelError) {
  EXPECT_THROW(BuildBuiltinModel("resnet20", ModelShape{{128}, 10}), ModelError);
  EXPECT_THROW(BuildBuiltinModel("transformer", ModelShape{{3, 32, 32}, 10}), ModelError);
}

TEST(ModelLoader, OutputShapeMismatchNamesBothShapes) {
  auto model = BuildBuiltinModel("resnet20", ModelShape{{3, 16, 16}, 10});
  try {
    CheckModelOutput(model, "builtin:resnet20", torch::randn({1, 3, 16, 16}), 7);
    FAIL() << "no ModelError";
  } catch (const ModelError& e) {
    EXPECT_NE(std::string(e.what()).find("[1, 10]"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("7 classes"), std::string::npos) << e.what();
  }
}

TEST(ModelLoader, MissingAndCorruptFilesAreModelErrors) {
  testing::TempDir dir;
  EXPECT_THROW(LoadModel(dir.File("absent.pt"), ModelShape{}, "Global.model"), ModelError);
  EXPECT_THROW(LoadModel(dir.Write("bad.pt", "garbage"), ModelShape{}, "Global.model"), ModelError);
}

}  // namespace
}  // namespace slim::models
