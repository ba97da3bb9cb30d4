// PaddleSlim ACT's published example configs (example/auto_compression of PaddleSlim
// 9f3e9b2), ported the way docs/configuration.md ("Porting an ACT config") says: only the
// Paddle paths are replaced (model_dir/model_filename name a TorchScript file; train_data
// and eval_data are added) and the Paddle tensor names become module paths. The ports are
// the files in tests/act_configs/ (shared with tests/e2e/distillation_test.py), each with a
// header comment on line 1. Each loads and resolves to the options ACT would use; ACT
// spellings that conflict, or strategies this version does not have, are refused with the
// key named.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>

#include "runtime/base/errors.h"
#include "runtime/config/config_loader.h"
#include "strategies/distill/distill_options.h"
#include "strategies/prune/prune_options.h"
#include "strategies/quant/quant_options.h"
#include "strategies/registry.h"
#include "tests/unit/temp_file.h"

namespace slim::config {
namespace {

using Names = std::vector<std::string>;
using NodePairs = std::vector<std::vector<std::string>>;

// The Global keys a port adds: data in SlimTrain's HDF5 format (for the snippets below;
// the files in tests/act_configs/ have them).
constexpr const char* kData = "  train_data: @DATA@/train.h5\n  eval_data: @DATA@/eval.h5\n";

// The text of tests/act_configs/`name`, its placeholders (@ROOT@, @DATA@, @OUT@, as the e2e
// suite's write_config fills them) not yet replaced.
std::string ActConfig(const std::string& name) {
  const std::string path = std::string(SLIM_SOURCE_DIR "/tests/act_configs/") + name;
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// A config loaded from `yaml` (with @ROOT@ replaced by a directory in a temporary directory,
// where the TorchScript files would be, @DATA@ by "data" and @OUT@ by a directory beside
// @ROOT@), and what the load wrote to stderr (its warnings).
struct Loaded {
  Config config;
  std::string warnings;
  std::string dir;  // what @ROOT@ became
};

// `yaml` with every `placeholder` replaced by `value`.
std::string Substituted(std::string yaml, const std::string& placeholder,
                        const std::string& value) {
  for (auto at = yaml.find(placeholder); at != std::string::npos;
       at = yaml.find(placeholder, at + value.size())) {
    yaml.replace(at, placeholder.size(), value);
  }
  return yaml;
}

Loaded Load(const std::string& yaml) {
  testing::TempDir dir;
  auto text = Substituted(yaml, "@ROOT@", dir.File("models"));
  text = Substituted(text, "@DATA@", "data");
  text = Substituted(text, "@OUT@", dir.File("out"));
  const auto path = dir.Write("act.yaml", text);
  ::testing::internal::CaptureStderr();
  Loaded loaded;
  try {
    loaded.config = strategies::LoadJobConfig(path, {});
  } catch (...) {
    ::testing::internal::GetCapturedStderr();
    throw;
  }
  loaded.warnings = ::testing::internal::GetCapturedStderr();
  loaded.dir = dir.File("models");
  return loaded;
}

// The message of the ConfigError that loading `yaml` throws.
std::string ErrorOf(const std::string& yaml) {
  try {
    Load(yaml);
  } catch (const ConfigError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no ConfigError for:\n" << yaml;
  return "";
}

const quant::QuantAwareOptions& QuantAwareOf(const Config& config) {
  return config.StrategyOptionsOf<quant::QuantAwareOptions>("QuantAware");
}

const distill::DistillOptions& DistillationOf(const Config& config,
                                              const std::string& section = "Distillation") {
  return config.StrategyOptionsOf<distill::DistillOptions>(section);
}

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// image_classification/configs/MobileNetV1/qat_dis.yaml
TEST(ActConfigs, ClassificationQatWithDistillationAndCosineDecay) {
  const auto loaded = Load(ActConfig("mobilenetv1_qat_dis.yaml"));
  const auto& config = loaded.config;
  EXPECT_EQ(config.global.model, loaded.dir + "/MobileNetV1_infer/model.pt");
  EXPECT_EQ(config.global.batch_size, 32);
  EXPECT_EQ(config.global.train_data, "data/train.h5");
  const auto& quant = QuantAwareOf(config);
  // matmul_v2 is Paddle 2's op of nn.Linear and of activation products alike.
  EXPECT_EQ(quant.quantize_op_types, (Names{"conv2d", "depthwise_conv2d", "matmul", "linear"}));
  EXPECT_TRUE(quant.use_pact);
  EXPECT_TRUE(quant.onnx_format);
  EXPECT_EQ(quant.not_quant_pattern, Names{"skip_quant"});
  const auto& teacher = DistillationOf(config).teachers.at(0);
  EXPECT_EQ(teacher.teacher_model, "self");
  EXPECT_EQ(teacher.node, NodePairs{{"fc"}});
  EXPECT_EQ(teacher.loss, Names{"l2"});
  EXPECT_DOUBLE_EQ(DistillationOf(config).label_loss_weight, 0);  // ACT: distillation only
  EXPECT_EQ(config.train.learning_rate.type, "CosineAnnealingDecay");
  EXPECT_DOUBLE_EQ(config.train.learning_rate.learning_rate, 0.015);
  EXPECT_EQ(config.train.learning_rate.t_max, 0);  // the whole run, as run.py sets it
  EXPECT_EQ(config.train.optimizer.type, "Momentum");
  EXPECT_DOUBLE_EQ(config.train.optimizer.momentum, 0.9);
  EXPECT_DOUBLE_EQ(config.train.optimizer.weight_decay, 2e-5);
  EXPECT_DOUBLE_EQ(config.train.origin_metric, 0.70898);
  EXPECT_TRUE(Contains(loaded.warnings, "act.yaml:5: Global.params_filename: ignored"))
      << loaded.warnings;
  EXPECT_TRUE(Contains(loaded.warnings, "act.yaml:7: Global.data_dir: ignored"))
      << loaded.warnings;
  // The resolved config reloads as it is: ACT's spelling of the model, not both.
  EXPECT_TRUE(Contains(config.resolved_yaml, "model_filename: model.pt"));
  EXPECT_FALSE(Contains(config.resolved_yaml, "  model: "));
}

// detection/configs/rtdetr_r50vd_qat_dis.yaml
TEST(ActConfigs, DetectionTransformerQuantizesMatmulV2) {
  const auto loaded = Load(ActConfig("rtdetr_r50vd_qat_dis.yaml"));
  const auto& config = loaded.config;
  EXPECT_EQ(config.global.model, loaded.dir + "/rtdetr_r50vd_6x_coco/model.pt");
  EXPECT_EQ(QuantAwareOf(config).quantize_op_types,
            (Names{"conv2d", "depthwise_conv2d", "linear", "matmul"}));
  EXPECT_FALSE(QuantAwareOf(config).use_pact);
  const auto& teacher = DistillationOf(config).teachers.at(0);
  EXPECT_EQ(teacher.node, NodePairs{{"logits"}});  // ACT: the model's final outputs
  EXPECT_EQ(teacher.loss, Names{"soft_label"});
  EXPECT_EQ(config.train.train_iter, 500);
  EXPECT_EQ(config.train.eval_iter, 100);
  EXPECT_EQ(config.train.learning_rate.t_max, 10000);
  EXPECT_EQ(config.train.optimizer.type, "SGD");
  EXPECT_DOUBLE_EQ(config.train.optimizer.momentum, 0);
  EXPECT_DOUBLE_EQ(config.train.optimizer.weight_decay, 4e-5);
  for (const auto* key : {"reader_config", "include_nms", "Evaluation"}) {
    EXPECT_TRUE(Contains(loaded.warnings, std::string("Global.") + key + ": ignored"))
        << key << "\n" << loaded.warnings;
  }
}

// semantic_segmentation/configs/BiSeNetV2/BiSeNetV2_qat.yaml: QAT with distillation on one
// feature map and a PiecewiseDecay written as ACT does, without learning_rate.
TEST(ActConfigs, SegmentationPiecewiseDecayWithoutLearningRate) {
  const auto loaded = Load(ActConfig("bisenetv2_qat.yaml"));
  const auto& config = loaded.config;
  EXPECT_EQ(config.global.model, loaded.dir + "/RES-paddle2-BiSeNetV2/model");
  EXPECT_EQ(config.global.batch_size, 4);
  const auto& lr = config.train.learning_rate;
  EXPECT_EQ(lr.type, "PiecewiseDecay");
  EXPECT_EQ(lr.boundaries, std::vector<int64_t>{2});
  EXPECT_EQ(lr.values, (std::vector<double>{1e-5, 1e-6}));
  EXPECT_DOUBLE_EQ(lr.learning_rate, 1e-5);  // the rate it starts at
  EXPECT_EQ(config.train.logging_iter, 100);
  EXPECT_EQ(DistillationOf(config).teachers.at(0).node, NodePairs{{"head.conv_out"}});
  EXPECT_EQ(QuantAwareOf(config).quantize_op_types, (Names{"conv2d", "depthwise_conv2d"}));
}

// pytorch_huggingface/configs/cola.yaml
TEST(ActConfigs, HuggingFaceQuantizesLinearLayersAndMatmulsWithAdamW) {
  const auto loaded = Load(ActConfig("huggingface_cola.yaml"));
  const auto& config = loaded.config;
  EXPECT_EQ(config.global.model, loaded.dir + "/x2torch_cola/model.pt");
  EXPECT_EQ(config.global.batch_size, 1);
  EXPECT_EQ(QuantAwareOf(config).quantize_op_types, (Names{"matmul", "linear"}));
  EXPECT_EQ(DistillationOf(config).teachers.at(0).loss, Names{"soft_label"});
  EXPECT_EQ(config.train.epochs, 3);
  EXPECT_EQ(config.train.learning_rate.type, "Constant");
  EXPECT_DOUBLE_EQ(config.train.learning_rate.learning_rate, 1e-6);
  EXPECT_EQ(config.train.optimizer.type, "AdamW");
  EXPECT_DOUBLE_EQ(config.train.optimizer.weight_decay, 0.01);
  EXPECT_DOUBLE_EQ(config.train.origin_metric, 0.6006);
  for (const auto* key : {"input_names", "model_type", "task_name", "dataset", "max_seq_length",
                          "padding", "return_attention_mask"}) {
    EXPECT_TRUE(Contains(loaded.warnings, std::string("Global.") + key + ": ignored"))
        << key << "\n" << loaded.warnings;
  }
}

// pytorch_yolo_series/configs/yolov5s_qat_dis.yaml: model_dir alone names the model file.
TEST(ActConfigs, YoloQatTakesModelDirAsTheFile) {
  const auto loaded = Load(ActConfig("yolov5s_qat_dis.yaml"));
  const auto& config = loaded.config;
  EXPECT_EQ(config.global.model, loaded.dir + "/yolov5s.pt");
  EXPECT_EQ(config.train.train_iter, 3000);
  EXPECT_DOUBLE_EQ(config.train.target_metric, 0.365);
  EXPECT_TRUE(QuantAwareOf(config).use_pact);
  EXPECT_TRUE(Contains(loaded.warnings, "Global.coco_val_anno_path: ignored"))
      << loaded.warnings;
}

// ocr/configs/ppocrv3_rec_qat_dist.yaml: list-form loss [skd, l2] on grouped nodes, a YAML
// anchor, and the PostProcess, Metric, Train and Eval sections of ACT's OCR script.
TEST(ActConfigs, OcrRecognitionSkdAndL2WithScriptSectionsIgnored) {
  const auto loaded = Load(ActConfig("ppocrv3_rec_qat_dist.yaml"));
  const auto& config = loaded.config;
  EXPECT_EQ(config.global.model, loaded.dir + "/rec.pt");
  const auto& teacher = DistillationOf(config).teachers.at(0);
  EXPECT_EQ(teacher.node, (NodePairs{{"fc"}, {"fc"}}));
  EXPECT_EQ(teacher.loss, (Names{"skd", "l2"}));
  EXPECT_EQ(teacher.alpha, (std::vector<double>{1.0, 1.0}));
  EXPECT_EQ(config.train.optimizer.type, "Adam");
  EXPECT_DOUBLE_EQ(config.train.learning_rate.learning_rate, 5e-5);
  for (const auto* section : {"PostProcess", "Metric", "Train", "Eval"}) {
    EXPECT_TRUE(Contains(loaded.warnings, std::string(": ") + section + ": ignored: ACT does "
                                          "not read the " + section + " section"))
        << section << "\n" << loaded.warnings;
  }
  EXPECT_TRUE(Contains(loaded.warnings, "act.yaml:8: Global.character_dict_path: ignored"))
      << loaded.warnings;
  EXPECT_FALSE(Contains(config.resolved_yaml, "PostProcess"));
}

// nlp/configs/ernie3.0/tnews.yaml: the legacy Prune section ACT ignores, and QuantPost
// written with ACT's names for SlimTrain's keys.
TEST(ActConfigs, NlpQuantPostWithActNames) {
  const auto loaded = Load(ActConfig("ernie3_tnews.yaml"));
  const auto& config = loaded.config;
  ASSERT_TRUE(config.HasStrategy("QuantPost"));
  const auto& quant = config.StrategyOptionsOf<quant::QuantPostOptions>("QuantPost");
  EXPECT_EQ(quant.ptq_algo, "KL");
  EXPECT_EQ(quant.batch_num, 4);
  EXPECT_EQ(quant.batch_size, 8);
  EXPECT_TRUE(quant.bias_correct);
  EXPECT_TRUE(quant.onnx_format);
  EXPECT_EQ(quant.quantize_op_types,
            (Names{"depthwise_conv2d", "conv2d", "linear", "matmul"}));
  EXPECT_TRUE(Contains(loaded.warnings, "Prune: ignored")) << loaded.warnings;
  // Resolved under SlimTrain's names, so the file reloads without an alias conflict.
  EXPECT_TRUE(Contains(config.resolved_yaml, "ptq_algo: KL")) << config.resolved_yaml;
  EXPECT_TRUE(Contains(config.resolved_yaml, "batch_num: 4"));
  EXPECT_FALSE(Contains(config.resolved_yaml, " algo:"));
  EXPECT_FALSE(Contains(config.resolved_yaml, "batch_nums"));
}

// MultiTeacherDistillation in ACT's parallel-list form (strategy_config.py and the API
// docs; no example config uses it): one entry per teacher in every list, each node entry
// [teacher, student, ...] pairs.
TEST(ActConfigs, MultiTeacherParallelListsBecomeOneTeacherEach) {
  const auto loaded = Load(ActConfig("multi_teacher_distillation.yaml"));
  const auto& distill = DistillationOf(loaded.config, "MultiTeacherDistillation");
  ASSERT_EQ(distill.teachers.size(), 2u);
  const auto& a = distill.teachers[0];
  EXPECT_EQ(a.config_key, "MultiTeacherDistillation.teacher_model_dir[0]");
  EXPECT_EQ(a.teacher_model, loaded.dir + "/teacher_a/model.pt");
  EXPECT_EQ(a.node, (NodePairs{{"layer3", "layer3"}, {"layer2", "layer2"}}));
  EXPECT_EQ(a.loss, (Names{"l2", "l2"}));
  EXPECT_EQ(a.alpha, (std::vector<double>{1.0, 1.0}));
  const auto& b = distill.teachers[1];
  EXPECT_EQ(b.teacher_model, loaded.dir + "/teacher_b/model.pt");
  EXPECT_EQ(b.node, (NodePairs{{"logits", "logits"}}));
  EXPECT_EQ(b.loss, Names{"soft_label"});
  EXPECT_EQ(b.alpha, std::vector<double>{0.5});
  EXPECT_TRUE(Contains(loaded.warnings, "MultiTeacherDistillation.teacher_params_filename: "
                                        "ignored"))
      << loaded.warnings;
}

// nlp/README.md's Distillation with an external teacher.
TEST(ActConfigs, DistillationTeacherFromActDirectoryAndFileName) {
  const auto loaded = Load(std::string("Global:\n  model: builtin:resnet20\n") + kData + R"(
QuantAware: {}
Distillation:
  teacher_model_dir: @ROOT@/afqmc
  teacher_model_filename: teacher.pt
  teacher_params_filename: inference.pdiparams
)");
  EXPECT_EQ(DistillationOf(loaded.config).teachers.at(0).teacher_model,
            loaded.dir + "/afqmc/teacher.pt");
  EXPECT_TRUE(Contains(loaded.warnings, "Distillation.teacher_params_filename: ignored"))
      << loaded.warnings;
}

TEST(ActConfigs, TrainConfigKeysWithoutCounterpartWarn) {
  const auto loaded = Load(std::string("Global:\n  model: builtin:resnet20\n") + kData + R"(
TrainConfig:
  amp_config: {custom_white_list: [conv2d]}
  recompute_config: {enable_offload: true, modules: [layer2, 'layer3.*']}
  sparse_model: false
)");
  EXPECT_EQ(loaded.config.train.recompute_modules,
            (std::vector<std::string>{"layer2", "layer3.*"}));
  for (const auto* key : {"recompute_config.enable_offload", "sparse_model",
                          "amp_config.custom_white_list"}) {
    EXPECT_TRUE(Contains(loaded.warnings, std::string("TrainConfig.") + key + ": ignored"))
        << key << "\n" << loaded.warnings;
  }
}

TEST(ActConfigs, AmpConfigTurnsMixedPrecisionOnByItsPresence) {
  const std::string global = std::string("Global:\n  model: builtin:resnet20\n") + kData;
  const auto amp = Load(global + "TrainConfig:\n  amp_config: {init_loss_scaling: 128}\n").config.train.amp;
  EXPECT_TRUE(amp.enable);
  EXPECT_EQ(amp.dtype, "");
  EXPECT_EQ(amp.init_loss_scaling, 128);
  EXPECT_FALSE(Load(global).config.train.amp.enable);
  EXPECT_FALSE(Load(global + "TrainConfig: {amp_config: {enable: false}}\n").config.train.amp.enable);
  EXPECT_TRUE(Contains(ErrorOf(global + "TrainConfig: {amp_config: {dtype: float8}}\n"),
                       "TrainConfig.amp_config.dtype"));
  EXPECT_TRUE(Contains(ErrorOf(global + "TrainConfig: {amp_config: {use_pure_fp16: true}}\n"),
                       "TrainConfig.amp_config.use_pure_fp16: pure float16 training is not supported"));
  EXPECT_TRUE(Contains(ErrorOf(global + "TrainConfig: {amp_config: {decr_ratio: 2}}\n"),
                       "TrainConfig.amp_config.decr_ratio"));
}

// Every ported config that loads writes a config.resolved.yaml that loads to the same
// values.
TEST(ActConfigs, ResolvedFormsLoadAgain) {
  int checked = 0;
  for (const auto& entry :
       std::filesystem::directory_iterator(SLIM_SOURCE_DIR "/tests/act_configs")) {
    SCOPED_TRACE(entry.path().string());
    std::optional<Loaded> loaded;
    try {
      loaded = Load(ActConfig(entry.path().filename().string()));
    } catch (const ConfigError&) {
      continue;  // refused on purpose; the tests below say why
    }
    try {
      EXPECT_EQ(Load(loaded->config.resolved_yaml).config.resolved_yaml,
                loaded->config.resolved_yaml);
    } catch (const ConfigError& e) {
      ADD_FAILURE() << e.what();
    }
    ++checked;
  }
  EXPECT_GE(checked, 6);
}

TEST(ActConfigs, ShardingConfigStageOneShardsTheOptimizerStateZeroIsOffOtherStagesAreRefused) {
  const std::string global = std::string("Global:\n  model: builtin:resnet20\n") + kData;
  EXPECT_EQ(Load(global + "TrainConfig: {sharding_config: {stage: 1}}\n").config.train.sharding_stage, 1);
  const auto empty = Load(global + "TrainConfig: {sharding_config: {sharding_degree: 8}}\n");
  EXPECT_EQ(empty.config.train.sharding_stage, 0);
  EXPECT_TRUE(Contains(empty.warnings, "TrainConfig.sharding_config.sharding_degree: ignored"))
      << empty.warnings;
  EXPECT_EQ(
      Load(global + "TrainConfig: {sharding_config: {stage: 0}}\n").config.train.sharding_stage, 0);
  for (const char* stage : {"-1", "2", "3"}) {
    EXPECT_TRUE(Contains(ErrorOf(global + "TrainConfig: {sharding_config: {stage: " + stage + "}}\n"),
                         "TrainConfig.sharding_config.stage: stage " + std::string(stage) +
                             " is not supported (stage 2/3 not supported)"))
        << stage;
  }
  EXPECT_TRUE(Contains(ErrorOf(global + "TrainConfig: {sharding_config: {stag: 1}}\n"),
                       "did you mean 'stage'?"));
}

TEST(ActConfigs, KeysWithoutMeaningHereWarnOrAreRefusedWithTheReason) {
  const std::string global = std::string("Global:\n  model: builtin:resnet20\n") + kData;
  const auto transposed =
      Load(global + "QuantAware: {quantize_op_types: [conv2d, conv2d_transpose], dtype: int8, "
                    "for_tensorrt: false}\n");
  EXPECT_EQ(QuantAwareOf(transposed.config).quantize_op_types, Names{"conv2d"});
  EXPECT_TRUE(Contains(transposed.warnings, "conv2d_transpose: transposed convolutions are not "
                                            "quantized"))
      << transposed.warnings;
  EXPECT_TRUE(Contains(ErrorOf(global + "QuantAware: {quantize_op_types: [conv2d_transpose]}\n"),
                       "QuantAware.quantize_op_types: names no op type SlimTrain quantizes"));
  EXPECT_TRUE(Contains(ErrorOf(global + "QuantAware: {for_tensorrt: true}\n"),
                       "QuantAware.for_tensorrt: ACT's TensorRT op list"));
  EXPECT_TRUE(Contains(ErrorOf(global + "QuantAware: {dtype: uint8}\n"), "QuantAware.dtype"));
  EXPECT_TRUE(Contains(ErrorOf(global + "QuantPost: {recon_level: layer-wise}\n"),
                       "QuantPost.recon_level: layer-wise and region-wise reconstruction"));
  const auto recon_keys = Load(global + "QuantPost: {epochs: 20, lr: 0.1, skip_tensor_list: "
                                        "[conv2d_0.w_0]}\n");
  EXPECT_TRUE(Contains(recon_keys.warnings, "QuantPost.lr: ignored: only reconstruction"));
  EXPECT_TRUE(Contains(recon_keys.warnings, "QuantPost.skip_tensor_list: ignored"));
  EXPECT_TRUE(Contains(ErrorOf(global + "TrainConfig:\n  optimizer_builder:\n    regularizer: "
                                        "{type: L2Decay, coeff: 4.0e-05}\n"),
                       "optimizer_builder.regularizer: ACT's regularizer objects are not "
                       "available; give the L2 coefficient as weight_decay"));
}

TEST(ActConfigs, AliasAndItsNameTogetherAreRefusedNamingBoth) {
  const std::string global = std::string("Global:\n  model: builtin:resnet20\n") + kData;
  EXPECT_TRUE(Contains(ErrorOf(global + "QuantPost:\n  ptq_algo: hist\n  algo: KL\n"),
                       "act.yaml:7: QuantPost.algo: is ACT's name for QuantPost.ptq_algo, which "
                       "is also given"));
  EXPECT_TRUE(Contains(ErrorOf(global + "QuantPost: {batch_num: 2, batch_nums: 4}\n"),
                       "QuantPost.batch_nums: is ACT's name for QuantPost.batch_num"));
  EXPECT_TRUE(Contains(ErrorOf(global + "QuantPost: {bias_correct: true, bias_correction: "
                                        "true}\n"),
                       "QuantPost.bias_correction: is ACT's name for QuantPost.bias_correct"));
  EXPECT_TRUE(Contains(ErrorOf(global + "QuantPost: {algo: kl}\n"),
                       "QuantPost.algo: unknown value 'kl'; did you mean 'KL'?"));
  EXPECT_TRUE(Contains(ErrorOf("Global:\n  model: a.pt\n  model_dir: m\n  model_filename: b.pt\n" +
                               std::string(kData)),
                       "Global.model_dir: and model both name the model"));
  EXPECT_TRUE(Contains(ErrorOf(std::string("Global:\n  model_filename: b.pt\n") + kData),
                       "Global.model_filename: needs model_dir"));
  EXPECT_TRUE(Contains(ErrorOf(global + "Distillation: {teacher_model: a.pt, teacher_model_dir: "
                                        "m}\n"),
                       "Distillation.teacher_model_dir: and teacher_model both name the model"));
  EXPECT_TRUE(Contains(ErrorOf(global + "TrainConfig:\n  learning_rate: {type: PiecewiseDecay, "
                                        "learning_rate: 0.1, boundaries: [5], values: [0.2, "
                                        "0.02]}\n"),
                       "PiecewiseDecay starts at values[0] = 0.2"));
}

// multi_teacher_distillation.yaml with the value of `key` (its line and the list items below it) replaced.
std::string MultiTeacherWith(const std::string& key, const std::string& value) {
  std::string yaml = ActConfig("multi_teacher_distillation.yaml");
  const auto start = yaml.find("  " + key + ":");
  auto end = yaml.find('\n', start);
  while (yaml.compare(end + 1, 6, "    - ") == 0) end = yaml.find('\n', end + 1);
  return yaml.replace(start, end - start, "  " + key + ": " + value);
}

TEST(ActConfigs, ParallelListOfTheWrongLengthIsRefusedNamingTheKey) {
  EXPECT_TRUE(Contains(ErrorOf(MultiTeacherWith("loss", "[l2, l2, l2]")),
                       "MultiTeacherDistillation.loss: has 3 entries for 2 teachers"));
  EXPECT_TRUE(Contains(ErrorOf(MultiTeacherWith("alpha", "[1.0]")),
                       "MultiTeacherDistillation.alpha: has 1 entries for 2 teachers"));
  EXPECT_TRUE(Contains(ErrorOf(MultiTeacherWith("teacher_model_filename", "[model.pt]")),
                       "MultiTeacherDistillation.teacher_model_filename: has 1 entries"));
  EXPECT_TRUE(Contains(ErrorOf(MultiTeacherWith("node", "[[logits, logits]]")),
                       "MultiTeacherDistillation.node: has 1 entries for 2 teachers"));
  EXPECT_TRUE(Contains(ErrorOf(MultiTeacherWith("node", "[[layer3], [logits, logits]]")),
                       "MultiTeacherDistillation.node: teacher 1 of 2: lists 1 names"));
  // One value for every teacher is fine.
  const auto shared = Load(MultiTeacherWith("loss", "soft_label"));
  for (const auto& teacher : DistillationOf(shared.config, "MultiTeacherDistillation").teachers) {
    EXPECT_EQ(teacher.loss.front(), "soft_label");
  }
  EXPECT_TRUE(Contains(ErrorOf(MultiTeacherWith("alpha", "[1.0, 0.5]\n  teachers: "
                                                         "[{teacher_model: self}]")),
                       "MultiTeacherDistillation.teachers: and teacher_model_dir both list"));
}

// semantic_segmentation/configs/pp_liteseg/pp_liteseg_sparse.yaml: GMP to 75 % on the 1x1
// convolutions, with distillation.
TEST(ActConfigs, SegmentationSparseGmpWithDistillation) {
  const auto loaded = Load(ActConfig("pp_liteseg_sparse.yaml"));
  const auto& prune =
      loaded.config.StrategyOptionsOf<prune::UnstructurePruneOptions>("UnstructurePrune");
  EXPECT_EQ(prune.prune_strategy, "gmp");
  EXPECT_EQ(prune.prune_mode, "ratio");
  EXPECT_DOUBLE_EQ(prune.ratio, 0.75);
  EXPECT_EQ(prune.gmp_config.pruning_iterations, 4500);
  EXPECT_EQ(prune.gmp_config.tunning_iterations, 4500);
  EXPECT_EQ(prune.gmp_config.pruning_steps, 100);
  EXPECT_DOUBLE_EQ(prune.gmp_config.initial_ratio, 0.15);
  EXPECT_EQ(prune.gmp_config.schedule, "cubic");  // ACT's curve
  EXPECT_EQ(prune.prune_params_type, "conv1x1_only");
  EXPECT_TRUE(prune.local_sparsity);
  EXPECT_EQ(DistillationOf(loaded.config).teachers.at(0).node, NodePairs{{"head.conv_out"}});
}

// nlp/configs/pp-minilm/auto/cluewsc.yaml: ACT prunes with distillation, then searches
// post-training quantization, in stages; here those are two runs, and the message says so.
TEST(ActConfigs, StagedTransformerPruneAndQuantPostAreExplained) {
  const auto staged = ErrorOf(ActConfig("pp_minilm_cluewsc.yaml"));
  EXPECT_TRUE(Contains(staged, "prune in one run, then quantize its model.pt with QuantPost in a "
                               "second")) << staged;
}

}  // namespace
}  // namespace slim::config
