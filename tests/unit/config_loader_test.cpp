#include "runtime/config/config_loader.h"
#include "runtime/config/config_section.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "runtime/base/errors.h"
#include "strategies/distill/distill_options.h"
#include "strategies/prune/prune_options.h"
#include "strategies/quant/quant_options.h"
#include "strategies/registry.h"
#include "tests/unit/temp_file.h"

namespace slim::config {
namespace {

constexpr const char* kMinimal = R"(Global:
  model: builtin:resnet20
  train_data: train.h5
TrainConfig:
  epochs: 2
)";

// The message of the ConfigError that loading `yaml` with `overrides` throws.
std::string ErrorOf(const std::string& yaml, const std::vector<std::string>& overrides = {}) {
  testing::TempDir dir;
  const auto path = dir.Write("c.yaml", yaml);
  try {
    strategies::LoadJobConfig(path, overrides);
  } catch (const ConfigError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no ConfigError for:\n" << yaml;
  return "";
}

Config Load(const std::string& yaml, const std::vector<std::string>& overrides = {}) {
  testing::TempDir dir;
  return strategies::LoadJobConfig(dir.Write("c.yaml", yaml), overrides);
}

TEST(ConfigLoader, AppliesDefaultsAndReadsValues) {
  const auto config = Load(kMinimal);
  EXPECT_EQ(config.global.model, "builtin:resnet20");
  EXPECT_EQ(config.global.batch_size, 64);
  EXPECT_EQ(config.global.eval_batch_size, 64);
  EXPECT_EQ(config.train.epochs, 2);
  EXPECT_EQ(config.train.optimizer.type, "Momentum");
  EXPECT_DOUBLE_EQ(config.train.learning_rate.learning_rate, 0.1);
  EXPECT_NE(config.resolved_yaml.find("batch_size: 64"), std::string::npos);
  EXPECT_NE(config.resolved_yaml.find("momentum: 0.9"), std::string::npos);
}

TEST(ConfigLoader, UnknownKeyNamesLineAndSuggestsNearest) {
  const auto message = ErrorOf(std::string(kMinimal) + "  learning_rat: 0.1\n");
  EXPECT_NE(message.find("c.yaml:6"), std::string::npos) << message;
  EXPECT_NE(message.find("TrainConfig.learning_rat"), std::string::npos) << message;
  EXPECT_NE(message.find("did you mean 'learning_rate'"), std::string::npos) << message;
}

TEST(ConfigLoader, UnknownSectionSuggestsNearest) {
  const auto message = ErrorOf(std::string(kMinimal) + "TrainConfg: {}\n");
  EXPECT_NE(message.find("did you mean 'TrainConfig'"), std::string::npos) << message;
}

TEST(ConfigLoader, WrongTypeNamesKeyAndValue) {
  const auto message =
      ErrorOf("Global:\n  model: m.pt\n  train_data: t.h5\n  batch_size: lots\n");
  EXPECT_NE(message.find("c.yaml:4"), std::string::npos) << message;
  EXPECT_NE(message.find("Global.batch_size"), std::string::npos) << message;
  EXPECT_NE(message.find("expected an integer, got 'lots'"), std::string::npos) << message;
}

TEST(ConfigLoader, OutOfRangeValueIsRefused) {
  const auto message = ErrorOf(std::string(kMinimal) + "  accumulate_steps: 0\n");
  EXPECT_NE(message.find("TrainConfig.accumulate_steps"), std::string::npos) << message;
  EXPECT_NE(message.find("out of range"), std::string::npos) << message;
}

TEST(ConfigLoader, MissingRequiredKeyIsNamed) {
  const auto message = ErrorOf("Global:\n  train_data: t.h5\n");
  EXPECT_NE(message.find("Global.model: required key is missing"), std::string::npos) << message;
}

TEST(ConfigLoader, MalformedYamlReportsLineAndColumn) {
  const auto message = ErrorOf("Global:\n  model: [unclosed\n  train_data: x\n");
  EXPECT_NE(message.find("malformed YAML"), std::string::npos) << message;
  EXPECT_NE(message.find("c.yaml:"), std::string::npos) << message;
}

TEST(ConfigLoader, MissingFileIsAConfigError) {
  EXPECT_THROW(strategies::LoadJobConfig("/nonexistent/slim.yaml", {}), ConfigError);
  testing::TempDir dir;
  try {
    strategies::LoadJobConfig(dir.File(""), {});
    ADD_FAILURE() << "a directory was read as a config";
  } catch (const ConfigError& error) {
    EXPECT_NE(std::string(error.what()).find("is a directory"), std::string::npos) << error.what();
  }
}

TEST(ConfigLoader, SetOverridesAnyKeyWithTheSameChecks) {
  const auto config = Load(kMinimal, {"Global.batch_size=8", "TrainConfig.learning_rate=0.5",
                                      "Global.input_shape=[3, 8, 8]"});
  EXPECT_EQ(config.global.batch_size, 8);
  EXPECT_DOUBLE_EQ(config.train.learning_rate.learning_rate, 0.5);
  EXPECT_EQ(config.global.input_shape, (std::vector<int64_t>{3, 8, 8}));

  const auto message = ErrorOf(kMinimal, {"Global.batch_sise=8"});
  EXPECT_NE(message.find("(or --set)"), std::string::npos) << message;
  EXPECT_NE(message.find("did you mean 'batch_size'"), std::string::npos) << message;
  EXPECT_NE(ErrorOf(kMinimal, {"Global.batch_size"}).find("KEY.PATH=VALUE"), std::string::npos);
}

TEST(ConfigLoader, ParsesNestedSchedulesAndOptimizers) {
  const auto config = Load(std::string(kMinimal) + R"(  learning_rate:
    type: LinearWarmup
    warmup_steps: 5
    start_lr: 0.001
    learning_rate:
      type: PiecewiseDecay
      learning_rate: 0.1
      boundaries: [10, 20]
      values: [0.1, 0.01, 0.001]
  optimizer_builder:
    optimizer: {type: AdamW, beta2: 0.99}
    weight_decay: 0.01
    grad_clip: {type: ClipGradByGlobalNorm, clip_norm: 1.5}
)");
  const auto& lr = config.train.learning_rate;
  EXPECT_EQ(lr.type, "LinearWarmup");
  ASSERT_TRUE(lr.after_warmup);
  EXPECT_EQ(lr.after_warmup->boundaries, (std::vector<int64_t>{10, 20}));
  EXPECT_EQ(config.train.optimizer.type, "AdamW");
  EXPECT_DOUBLE_EQ(config.train.optimizer.beta2, 0.99);
  EXPECT_DOUBLE_EQ(config.train.optimizer.grad_clip_norm, 1.5);
}

TEST(ConfigLoader, RejectsInconsistentPiecewiseSchedule) {
  const auto message = ErrorOf(std::string(kMinimal) +
                               "  learning_rate: {type: PiecewiseDecay, learning_rate: 0.1, "
                               "boundaries: [10], values: [0.1]}\n");
  EXPECT_NE(message.find("one more entry than boundaries"), std::string::npos) << message;
}

TEST(ConfigLoader, UnknownOptimizerSuggestsNearest) {
  const auto message = ErrorOf(std::string(kMinimal) +
                               "  optimizer_builder: {optimizer: {type: Adamw}}\n");
  EXPECT_NE(message.find("did you mean 'AdamW'"), std::string::npos) << message;
}

TEST(ConfigLoader, EmptyStrategySectionTakesTheDefaults) {
  const auto config = Load(std::string(kMinimal) + "QuantAware:\n  # weight_bits: 4\n");
  ASSERT_TRUE(config.HasStrategy("QuantAware"));
  EXPECT_EQ(config.StrategyOptionsOf<quant::QuantAwareOptions>("QuantAware").weight_bits, 8);
  const auto transformer = Load(std::string(kMinimal) + "TransformerPrune:\n");
  const auto& prune = transformer.StrategyOptionsOf<prune::TransformerPruneOptions>("TransformerPrune");
  EXPECT_DOUBLE_EQ(prune.head_ratio, 0.25);
  EXPECT_DOUBLE_EQ(prune.ffn_ratio, 0.25);
  EXPECT_EQ(prune.importance, "weight_norm");
}

TEST(ConfigLoader, KeyWrittenTwiceIsRefusedWithBothLines) {
  const auto message = ErrorOf(std::string(kMinimal) + "Global:\n  batch_size: 8\n");
  EXPECT_NE(message.find("c.yaml:6: Global: written twice (first at line 1)"), std::string::npos)
      << message;
  const auto nested = ErrorOf(std::string(kMinimal) + "QuantAware:\n  weight_bits: 4\n"
                              "  weight_bits: 8\n");
  EXPECT_NE(nested.find("QuantAware.weight_bits: written twice"), std::string::npos) << nested;
}

TEST(ConfigLoader, OptimizerSettingsLibTorchCannotRunAreRefused) {
  const auto adam = [](const std::string& key) {
    return ErrorOf(std::string(kMinimal) + "  optimizer_builder:\n    optimizer: {type: Adam, " +
                   key + ": 1}\n");
  };
  EXPECT_NE(adam("beta1").find("optimizer.beta1: must be in [0, 1)"), std::string::npos);
  EXPECT_NE(adam("beta2").find("optimizer.beta2: must be in [0, 1)"), std::string::npos);
  const auto nesterov = ErrorOf(std::string(kMinimal) + "  optimizer_builder:\n    optimizer: "
                                "{type: Momentum, momentum: 0, use_nesterov: true}\n");
  EXPECT_NE(nesterov.find("use_nesterov: Nesterov momentum needs momentum > 0"),
            std::string::npos)
      << nesterov;
}

TEST(ConfigLoader, OnnxFormatRefusesMoreThanEightBits) {
  const auto message = ErrorOf(std::string(kMinimal) +
                               "QuantAware: {onnx_format: true, weight_bits: 16}\n");
  EXPECT_NE(message.find("QuantAware.onnx_format: stores int8"), std::string::npos) << message;
  EXPECT_NO_THROW(Load(std::string(kMinimal) + "QuantAware: {onnx_format: true, weight_bits: 4}\n"));
}

TEST(ConfigLoader, QuantizedOutputNeedsAnIntegerExport) {
  const auto with_global = [](const std::string& keys) {
    return "Global:\n" + keys + std::string(kMinimal).substr(std::string("Global:\n").size());
  };
  const std::string quantized = "  export_quantized_output: true\n";
  const auto message = ErrorOf(with_global(quantized));
  EXPECT_NE(message.find("Global.export_quantized_output: quantizes the output of integer "
                         "exports only"),
            std::string::npos)
      << message;
  const auto config = Load(with_global(quantized + "  export: [torchscript, onnx]\n"));
  EXPECT_TRUE(config.global.export_quantized_output);
}

TEST(ConfigLoader, TransformerPruneRatiosFollowPrunedRatioAndStayBelowOne) {
  const auto config = Load(std::string(kMinimal) +
                           "TransformerPrune: {pruned_ratio: 0.5, ffn_ratio: 0.75}\n");
  const auto& prune = config.StrategyOptionsOf<prune::TransformerPruneOptions>("TransformerPrune");
  EXPECT_DOUBLE_EQ(prune.head_ratio, 0.5);
  EXPECT_DOUBLE_EQ(prune.ffn_ratio, 0.75);
  const auto whole = ErrorOf(std::string(kMinimal) + "TransformerPrune: {head_ratio: 1.0}\n");
  EXPECT_NE(whole.find("TransformerPrune.head_ratio: must lie in [0, 1)"), std::string::npos) << whole;
  const auto batches = ErrorOf(std::string(kMinimal) + "TransformerPrune: {batch_num: 4}\n");
  EXPECT_NE(batches.find("is read with importance: loss_sensitivity"), std::string::npos) << batches;
}

TEST(ConfigLoader, QuantizationSectionsTakeActKeysAndDefaults) {
  const auto config =
      Load(std::string(kMinimal) + "QuantAware: {quantize_op_types: [conv2d, mul, elementwise_add]}\n");
  ASSERT_TRUE(config.HasStrategy("QuantAware"));
  const auto& quant_aware = config.StrategyOptionsOf<quant::QuantAwareOptions>("QuantAware");
  EXPECT_EQ(quant_aware.quantize_op_types, (std::vector<std::string>{"conv2d", "linear", "add"}));
  EXPECT_EQ(quant_aware.weight_bits, 8);
  EXPECT_EQ(quant_aware.weight_quantize_type, "channel_wise_abs_max");
  EXPECT_EQ(quant_aware.activation_quantize_type, "moving_average_abs_max");
  EXPECT_DOUBLE_EQ(quant_aware.moving_rate, 0.9);
  EXPECT_FALSE(quant_aware.unsigned_activations);
  EXPECT_FALSE(config.HasStrategy("QuantPost"));
  const auto post = Load(std::string(kMinimal) + "QuantPost: {unsigned_activations: true}\n");
  EXPECT_TRUE(post.StrategyOptionsOf<quant::QuantPostOptions>("QuantPost").unsigned_activations);
  const auto message = ErrorOf(std::string(kMinimal) + "QuantPost: {ptq_algo: kl}\n");
  EXPECT_NE(message.find("QuantPost.ptq_algo"), std::string::npos) << message;
  EXPECT_NE(message.find("did you mean 'KL'"), std::string::npos) << message;
  EXPECT_NE(ErrorOf(std::string(kMinimal) + "QuantAware: {activation_bits: 1}\n")
                .find("QuantAware.activation_bits"),
            std::string::npos);
}

TEST(ConfigLoader, DistillationReadsNamesPairsAndPerPairLists) {
  const auto defaults = Load(std::string(kMinimal) + "Distillation: {}\n");
  ASSERT_TRUE(defaults.HasStrategy("Distillation"));
  const auto& distill = defaults.StrategyOptionsOf<distill::DistillOptions>("Distillation");
  const auto& teacher = distill.teachers.at(0);
  EXPECT_EQ(teacher.teacher_model, "self");
  EXPECT_EQ(teacher.node, (std::vector<std::vector<std::string>>{{"logits"}}));
  EXPECT_EQ(teacher.loss, (std::vector<std::string>{"l2"}));
  EXPECT_DOUBLE_EQ(distill.label_loss_weight, 0);
  const auto config = Load(std::string(kMinimal) +
                           "Distillation:\n  node: [layer3, [layer2.1, layer2.0], logits]\n"
                           "  loss: [fsp, fsp, soft_label]\n  alpha: 2\n");
  const auto& read =
      config.StrategyOptionsOf<distill::DistillOptions>("Distillation").teachers.at(0);
  EXPECT_EQ(read.node, (std::vector<std::vector<std::string>>{
                           {"layer3"}, {"layer2.1", "layer2.0"}, {"logits"}}));
  EXPECT_EQ(read.alpha, (std::vector<double>{2, 2, 2}));
  const auto multi = Load(std::string(kMinimal) +
                          "MultiTeacherDistillation:\n  teachers:\n    - {teacher_model: a.pt}\n"
                          "    - {teacher_model: self, loss: cosine}\n");
  const auto& teachers =
      multi.StrategyOptionsOf<distill::DistillOptions>("MultiTeacherDistillation");
  ASSERT_EQ(teachers.teachers.size(), 2u);
  EXPECT_EQ(teachers.section, "MultiTeacherDistillation");
  EXPECT_EQ(teachers.teachers[1].loss, (std::vector<std::string>{"cosine"}));
  EXPECT_EQ(teachers.teachers[1].config_key, "MultiTeacherDistillation.teachers[1].teacher_model");
}

TEST(ConfigLoader, DistillationRefusesInconsistentSections) {
  const auto section = [](const std::string& body) {
    return ErrorOf(std::string(kMinimal) + body);
  };
  EXPECT_NE(section("Distillation: {node: [a, b], loss: [l2, l2, l2]}\n")
                .find("Distillation.loss: has 3 entries for 2 node pair(s)"),
            std::string::npos);
  EXPECT_NE(section("Distillation: {node: [a, b], loss: [fsp, l2]}\n").find("no partner"),
            std::string::npos);
  EXPECT_NE(section("Distillation: {node: [[a, b, c]]}\n").find("entry 0 has 3 names"),
            std::string::npos);
  EXPECT_NE(section("Distillation: {loss: soft_lable}\n").find("did you mean 'soft_label'"),
            std::string::npos);
  EXPECT_NE(section("MultiTeacherDistillation:\n  teachers: [{teacher_modle: a.pt}]\n")
                .find("MultiTeacherDistillation.teachers[0].teacher_modle: unknown key"),
            std::string::npos);
  EXPECT_NE(section("MultiTeacherDistillation: {teachers: []}\n").find("list the teachers"),
            std::string::npos);
  EXPECT_NE(section("Distillation: {}\nMultiTeacherDistillation: {teachers: [{}]}\n")
                .find("are alternatives"),
            std::string::npos);
  EXPECT_NE(section("Distillation: {}\nQuantPost: {}\n").find("nothing to distil into"),
            std::string::npos);
}

// The config.resolved.yaml of `config` loads to the same values.
void ExpectResolvedFormLoads(const Config& config) {
  testing::TempDir dir;
  try {
    const auto again =
        strategies::LoadJobConfig(dir.Write("config.resolved.yaml", config.resolved_yaml), {});
    EXPECT_EQ(again.resolved_yaml, config.resolved_yaml);
  } catch (const ConfigError& e) {
    ADD_FAILURE() << e.what();
  }
}

// Each bundled config loads, and so does its config.resolved.yaml (act_configs_test.cpp
// checks the ported PaddleSlim ACT configs alike).
TEST(ConfigLoader, EveryBundledConfigAndItsResolvedFormLoad) {
  int loaded = 0;
  for (const auto& entry : std::filesystem::directory_iterator(SLIM_SOURCE_DIR "/configs")) {
    SCOPED_TRACE(entry.path().string());
    try {
      ExpectResolvedFormLoads(strategies::LoadJobConfig(entry.path().string(), {}));
    } catch (const ConfigError& e) {
      ADD_FAILURE() << e.what();
    }
    ++loaded;
  }
  EXPECT_GE(loaded, 6);
}

TEST(EditDistance, CountsEdits) {
  EXPECT_EQ(EditDistance("epochs", "epochs"), 0u);
  EXPECT_EQ(EditDistance("epoch", "epochs"), 1u);
  EXPECT_EQ(EditDistance("kitten", "sitting"), 3u);
  EXPECT_EQ(NearestWord("zzzzzz", {"epochs", "model"}), "");
}

}  // namespace
}  // namespace slim::config
