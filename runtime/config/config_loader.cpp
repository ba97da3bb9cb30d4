#include "runtime/config/config_loader.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <yaml-cpp/yaml.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <set>

#include "runtime/base/errors.h"
#include "runtime/base/text.h"
#include "runtime/config/act_model_path.h"

namespace slim::config {

namespace {

constexpr int64_t kMaxInt = std::numeric_limits<int64_t>::max();

// Throws ConfigError for a key written twice in one mapping of `node` (YAML forbids it;
// yaml-cpp would silently keep the first).
void RejectDuplicateKeys(const YAML::Node& node, const std::string& path,
                         const std::string& file) {
  if (node.IsSequence()) {
    for (size_t i = 0; i < node.size(); ++i) {
      RejectDuplicateKeys(node[i], path + "[" + std::to_string(i) + "]", file);
    }
  }
  if (!node.IsMap()) return;
  std::map<std::string, int> first_line;
  for (const auto& entry : node) {
    const std::string key = entry.first.Scalar();
    const std::string key_path = path.empty() ? key : path + "." + key;
    const int line = entry.first.Mark().line + 1;
    const auto [found, inserted] = first_line.emplace(key, line);
    if (!inserted) {
      throw ConfigError(fmt::format("{}:{}: {}: written twice (first at line {}); merge the two "
                                    "into one",
                                    file, line, key_path, found->second));
    }
    RejectDuplicateKeys(entry.second, key_path, file);
  }
}

YAML::Node LoadYaml(const std::string& file) {
  std::ifstream probe(file);
  if (!probe) {
    throw ConfigError("config file '" + file + "' cannot be read: check the path");
  }
  std::error_code error;
  if (std::filesystem::is_directory(file, error)) {
    throw ConfigError("config file '" + file + "' is a directory: give the YAML file in it");
  }
  YAML::Node root;
  try {
    root = YAML::LoadFile(file);
  } catch (const YAML::ParserException& e) {
    throw ConfigError(file + ":" + std::to_string(e.mark.line + 1) + ":" +
                      std::to_string(e.mark.column + 1) + ": malformed YAML: " + e.msg);
  }
  RejectDuplicateKeys(root, "", file);
  if (!root.IsMap()) {
    throw ConfigError(file + ": the config must be a mapping with sections such as Global and "
                             "TrainConfig");
  }
  return root;
}

// A copy of `node` without source marks, so messages about it say "--set".
YAML::Node WithoutMarks(const YAML::Node& node) {
  if (node.IsScalar()) return YAML::Node(node.Scalar());
  YAML::Node copy(node.Type() == YAML::NodeType::Map ? YAML::NodeType::Map
                                                      : YAML::NodeType::Sequence);
  if (node.IsSequence()) {
    for (const auto& element : node) copy.push_back(WithoutMarks(element));
  } else if (node.IsMap()) {
    for (const auto& entry : node) copy[entry.first.Scalar()] = WithoutMarks(entry.second);
  }
  return copy;
}

void ApplyOverride(YAML::Node root, const std::string& assignment) {
  const auto equals = assignment.find('=');
  if (equals == std::string::npos || equals == 0) {
    throw ConfigError("--set " + assignment + ": expected KEY.PATH=VALUE, e.g. Global.batch_size=32");
  }
  const std::string path = assignment.substr(0, equals);
  YAML::Node value;
  try {
    value = YAML::Load(assignment.substr(equals + 1));
  } catch (const YAML::Exception& e) {
    throw ConfigError("--set " + assignment + ": the value is not valid YAML: " + e.msg);
  }
  YAML::Node current = root;
  size_t begin = 0;
  for (;;) {
    const auto dot = path.find('.', begin);
    const std::string key = path.substr(begin, dot - begin);
    if (key.empty()) throw ConfigError("--set " + assignment + ": empty key in '" + path + "'");
    if (dot == std::string::npos) {
      current[key] = WithoutMarks(value);
      return;
    }
    if (!current[key] || !current[key].IsMap()) current[key] = YAML::Node(YAML::NodeType::Map);
    YAML::Node next = current[key];
    current.reset(next);
    begin = dot + 1;
  }
}

void ParseAugment(ConfigSection section, AugmentOptions& out) {
  out.random_crop_padding = section.Get<int64_t>("random_crop_padding", out.random_crop_padding);
  section.CheckRange<int64_t>("random_crop_padding", out.random_crop_padding, 0, 64);
  out.horizontal_flip = section.Get<bool>("horizontal_flip", out.horizontal_flip);
  section.RejectUnknownKeys();
}

// Global keys that ACT's example scripts (run.py) read, not ACT itself, grouped by why
// SlimTrain has no use for them.
const std::vector<std::pair<std::vector<std::string>, std::string>> kActScriptGlobalKeys = {
    {{"data_dir", "reader_config", "image_path", "coco_dataset_dir", "coco_train_image_dir",
      "coco_train_anno_path", "coco_val_image_dir", "coco_val_anno_path", "dev_data",
      "dataset", "task_name"},
     "SlimTrain reads its data from train_data and eval_data (HDF5, docs/data-format.md)"},
    {{"img_size", "resize_size", "crop_size", "input_name", "input_names", "max_seq_length",
      "padding", "return_attention_mask", "model_type", "arch", "include_nms", "nms_num_top_k",
      "algorithm", "character_dict_path", "max_text_length", "use_space_char", "Evaluation"},
     "read by ACT's example scripts for Paddle data readers, post-processing and metrics; "
     "SlimTrain feeds the prepared HDF5 samples and evaluates top-1 when eval_data is given"},
    {{"deploy_hardware", "input_shapes"},
     "ACT's automatic strategy search; SlimTrain runs the strategy sections the config "
     "gives (Global.input_shape sets the per-sample shape)"},
};

const std::vector<std::string> kExportFormats = {"torchscript", "torchscript_int8", "onnx"};

// Global.export: known formats, each once, at least one.
void CheckExportFormats(const ConfigSection& section, const std::vector<std::string>& formats) {
  const std::string valid = fmt::format("{}", fmt::join(kExportFormats, ", "));
  if (formats.empty()) section.Fail("export", "name at least one format: " + valid);
  std::set<std::string> seen;
  for (const auto& format : formats) {
    if (std::find(kExportFormats.begin(), kExportFormats.end(), format) == kExportFormats.end()) {
      const std::string nearest = NearestWord(format, kExportFormats);
      section.Fail("export", "unknown format '" + format + "'" +
                                 (nearest.empty() ? "" : "; did you mean '" + nearest + "'?") +
                                 " Valid: " + valid);
    }
    if (!seen.insert(format).second) section.Fail("export", "format '" + format + "' is listed twice");
  }
}

void ParseGlobal(ConfigSection section, GlobalOptions& out) {
  out.model = GetModelPath(section, "model", "", "");
  for (const auto& [keys, why] : kActScriptGlobalKeys) {
    for (const auto& key : keys) section.Ignore(key, why);
  }
  out.input_shape = section.Get<std::vector<int64_t>>("input_shape", {});
  for (int64_t extent : out.input_shape) {
    if (extent <= 0) section.Fail("input_shape", "every extent must be positive");
  }
  out.train_data = section.Require<std::string>("train_data");
  out.eval_data = section.Get<std::string>("eval_data", "");
  out.batch_size = section.Get<int64_t>("batch_size", out.batch_size);
  section.CheckRange<int64_t>("batch_size", out.batch_size, 1, 1 << 20);
  out.eval_batch_size = section.Get<int64_t>("eval_batch_size", out.batch_size);
  section.CheckRange<int64_t>("eval_batch_size", out.eval_batch_size, 1, 1 << 20);
  out.seed = section.Get<int64_t>("seed", out.seed);
  section.CheckRange<int64_t>("seed", out.seed, 0, kMaxInt);
  out.output_dir = section.Get<std::string>("output_dir", out.output_dir);
  out.device = section.Get<std::string>("device", out.device);
  if (out.device != "auto" && out.device != "cpu" && out.device != "cuda") {
    section.Fail("device", "must be auto, cpu or cuda");
  }
  out.loader_threads = section.Get<int64_t>("loader_threads", out.loader_threads);
  section.CheckRange<int64_t>("loader_threads", out.loader_threads, 1, 64);
  out.prefetch_batches = section.Get<int64_t>("prefetch_batches", out.prefetch_batches);
  section.CheckRange<int64_t>("prefetch_batches", out.prefetch_batches, 1, 1024);
  out.drop_last = section.Get<bool>("drop_last", out.drop_last);
  out.comm_timeout_s = section.Get<double>("comm_timeout_s", out.comm_timeout_s);
  section.CheckRange<double>("comm_timeout_s", out.comm_timeout_s, 0.1, 86400);
  out.io_timeout_s = section.Get<double>("io_timeout_s", out.io_timeout_s);
  section.CheckRange<double>("io_timeout_s", out.io_timeout_s, 0.1, 7 * 86400);
  out.intra_op_threads = section.Get<int64_t>("intra_op_threads", out.intra_op_threads);
  section.CheckRange<int64_t>("intra_op_threads", out.intra_op_threads, 0, 1024);
  out.export_formats = section.Get<std::vector<std::string>>("export", out.export_formats);
  CheckExportFormats(section, out.export_formats);
  out.export_quantized_output =
      section.Get<bool>("export_quantized_output", out.export_quantized_output);
  if (out.export_quantized_output && !Contains(out.export_formats, "torchscript_int8") &&
      !Contains(out.export_formats, "onnx")) {
    section.Fail("export_quantized_output",
                 "quantizes the output of integer exports only; add torchscript_int8 or onnx to "
                 "Global.export, or drop the key");
  }
  ParseAugment(section.Section("augment"), out.augment);
  section.RejectUnknownKeys();
}

const std::vector<std::string> kScheduleTypes = {"Constant", "CosineAnnealingDecay",
                                                 "PiecewiseDecay", "ExponentialDecay",
                                                 "LinearWarmup"};

LrScheduleOptions ParseSchedule(ConfigSection section);

// learning_rate under `parent`: a number or a schedule mapping.
LrScheduleOptions ParseLearningRate(ConfigSection& parent, double fallback) {
  if (parent.IsMapping("learning_rate")) return ParseSchedule(parent.Section("learning_rate"));
  LrScheduleOptions constant;
  constant.learning_rate = parent.Get<double>("learning_rate", fallback);
  parent.CheckRange<double>("learning_rate", constant.learning_rate, 0, 1e6);
  return constant;
}

LrScheduleOptions ParseSchedule(ConfigSection section) {
  LrScheduleOptions out;
  out.type = section.Require<std::string>("type");
  if (std::find(kScheduleTypes.begin(), kScheduleTypes.end(), out.type) == kScheduleTypes.end()) {
    const std::string nearest = NearestWord(out.type, kScheduleTypes);
    section.Fail("type", "unknown schedule '" + out.type + "'" +
                             (nearest.empty() ? "" : "; did you mean '" + nearest + "'?") +
                             " Valid: Constant, CosineAnnealingDecay, PiecewiseDecay, "
                             "ExponentialDecay, LinearWarmup");
  }
  if (out.type == "LinearWarmup") {
    out.after_warmup = std::make_shared<LrScheduleOptions>(ParseLearningRate(section, 0.1));
    out.learning_rate = out.after_warmup->learning_rate;
    out.warmup_steps = section.Require<int64_t>("warmup_steps");
    section.CheckRange<int64_t>("warmup_steps", out.warmup_steps, 0, kMaxInt);
    out.start_lr = section.Get<double>("start_lr", 0.0);
    out.end_lr = section.Get<double>("end_lr", out.learning_rate);
  } else if (out.type != "PiecewiseDecay") {
    out.learning_rate = section.Require<double>("learning_rate");
    section.CheckRange<double>("learning_rate", out.learning_rate, 0, 1e6);
  }
  if (out.type == "CosineAnnealingDecay") {
    out.t_max = section.Get<int64_t>("T_max", 0);
    section.CheckRange<int64_t>("T_max", out.t_max, 0, kMaxInt);
    out.eta_min = section.Get<double>("eta_min", 0.0);
  } else if (out.type == "PiecewiseDecay") {
    out.boundaries = section.Require<std::vector<int64_t>>("boundaries");
    out.values = section.Require<std::vector<double>>("values");
    if (out.values.size() != out.boundaries.size() + 1) {
      section.Fail("values", "needs exactly one more entry than boundaries (" +
                                 std::to_string(out.boundaries.size() + 1) + ")");
    }
    if (!std::is_sorted(out.boundaries.begin(), out.boundaries.end())) {
      section.Fail("boundaries", "must be in increasing order");
    }
    for (double value : out.values) section.CheckRange<double>("values", value, 0, 1e6);
    // The rate starts at values[0]; ACT writes no learning_rate here.
    out.learning_rate = section.Get<double>("learning_rate", out.values.front());
    if (out.learning_rate != out.values.front()) {
      section.Fail("learning_rate", fmt::format("is {} but PiecewiseDecay starts at values[0] = "
                                                "{}; remove learning_rate (ACT has none here)",
                                                out.learning_rate, out.values.front()));
    }
  } else if (out.type == "ExponentialDecay") {
    out.gamma = section.Require<double>("gamma");
    section.CheckRange<double>("gamma", out.gamma, 0, 1);
  }
  section.RejectUnknownKeys();
  return out;
}

const std::vector<std::string> kOptimizerTypes = {"SGD", "Momentum", "Adam", "AdamW"};

void ParseOptimizer(ConfigSection builder, OptimizerOptions& out) {
  ConfigSection optimizer = builder.Section("optimizer");
  out.type = optimizer.Get<std::string>("type", out.type);
  if (std::find(kOptimizerTypes.begin(), kOptimizerTypes.end(), out.type) ==
      kOptimizerTypes.end()) {
    const std::string nearest = NearestWord(out.type, kOptimizerTypes);
    optimizer.Fail("type", "unknown optimizer '" + out.type + "'" +
                               (nearest.empty() ? "" : "; did you mean '" + nearest + "'?") +
                               " Valid: SGD, Momentum, Adam, AdamW");
  }
  if (out.type == "Momentum") {
    out.momentum = optimizer.Get<double>("momentum", out.momentum);
    optimizer.CheckRange<double>("momentum", out.momentum, 0, 1);
    out.nesterov = optimizer.Get<bool>("use_nesterov", out.nesterov);
    if (out.nesterov && out.momentum == 0) {
      optimizer.Fail("use_nesterov", "Nesterov momentum needs momentum > 0; set momentum or "
                                     "use_nesterov: false");
    }
  } else if (out.type == "SGD") {
    out.momentum = 0;
  } else {
    out.beta1 = optimizer.Get<double>("beta1", out.beta1);
    out.beta2 = optimizer.Get<double>("beta2", out.beta2);
    for (const auto& [key, beta] : {std::pair{"beta1", out.beta1}, std::pair{"beta2", out.beta2}}) {
      if (!(beta >= 0 && beta < 1)) {
        optimizer.Fail(key, fmt::format("must be in [0, 1) (Adam divides by 1 - {}^t), got {}",
                                        key, beta));
      }
    }
    out.epsilon = optimizer.Get<double>("epsilon", out.epsilon);
    optimizer.CheckRange<double>("epsilon", out.epsilon, 0, 1);
  }
  optimizer.RejectUnknownKeys();
  if (builder.IsWritten("regularizer")) {
    builder.Fail("regularizer", "ACT's regularizer objects are not available; give the L2 "
                                "coefficient as weight_decay (decoupled for AdamW)");
  }
  out.weight_decay = builder.Get<double>("weight_decay", out.weight_decay);
  builder.CheckRange<double>("weight_decay", out.weight_decay, 0, 1);
  if (builder.IsMapping("grad_clip")) {
    ConfigSection clip = builder.Section("grad_clip");
    if (clip.Get<std::string>("type", "ClipGradByGlobalNorm") != "ClipGradByGlobalNorm") {
      clip.Fail("type", "only ClipGradByGlobalNorm is supported");
    }
    out.grad_clip_norm = clip.Require<double>("clip_norm");
    clip.CheckRange<double>("clip_norm", out.grad_clip_norm, 0, 1e12);
    clip.RejectUnknownKeys();
  } else {
    out.grad_clip_norm = builder.Get<double>("grad_clip", out.grad_clip_norm);
    builder.CheckRange<double>("grad_clip", out.grad_clip_norm, 0, 1e12);
  }
  builder.RejectUnknownKeys();
}

// An optional metric in [0, 1]; NaN when absent.
double GetMetric(ConfigSection& section, const std::string& key) {
  if (!section.Has(key)) return std::numeric_limits<double>::quiet_NaN();
  const double value = section.Get<double>(key, 0.0);
  section.CheckRange<double>(key, value, 0, 1);
  return value;
}

void ParseCheckpoint(ConfigSection section, CheckpointOptions& out) {
  out.every_iter = section.Get<int64_t>("every_iter", out.every_iter);
  section.CheckRange<int64_t>("every_iter", out.every_iter, 0, kMaxInt);
  out.every_minutes = section.Get<double>("every_minutes", out.every_minutes);
  section.CheckRange<double>("every_minutes", out.every_minutes, 0, 1e9);
  out.keep = section.Get<int64_t>("keep", out.keep);
  section.CheckRange<int64_t>("keep", out.keep, 1, kMaxInt);
  section.RejectUnknownKeys();
}

// TrainConfig keys of ACT with no counterpart here, and why they change nothing.
const std::vector<std::pair<std::string, std::string>> kActOnlyTrainKeys = {
    {"sparse_model", "the exported model always holds pruned weights as zeros, without masks"},
};

// sharding_config: {stage: 1}. Without `stage` (absent, or {}), or with stage 0 (as
// config.resolved.yaml writes it), sharding stays off.
void ParseSharding(ConfigSection section, TrainOptions& out) {
  section.Ignore("sharding_degree",
                 "the optimizer state is sharded over all data-parallel ranks of the run");
  out.sharding_stage = section.Get<int64_t>("stage", out.sharding_stage);
  if (out.sharding_stage != 0 && out.sharding_stage != 1) {
    section.Fail("stage", fmt::format("stage {} is not supported (stage 2/3 not supported): "
                                      "SlimTrain shards the optimizer state only; write stage: 1, "
                                      "or 0 for no sharding",
                                      out.sharding_stage));
  }
  section.RejectUnknownKeys();
}

// recompute_config: {modules: [...]}. ACT's `checkpoints` name Paddle program variables,
// which a TorchScript model does not have.
void ParseRecompute(ConfigSection section, TrainOptions& out) {
  if (section.Has("checkpoints")) {
    section.Fail("checkpoints", "names Paddle program variables; SlimTrain recomputes modules: "
                                "write modules: [module paths or patterns, e.g. layer2 or "
                                "enc.layers.*]");
  }
  section.Ignore("enable_offload", "recomputed activations are not kept anywhere, host or device");
  section.Ignore("checkpoint_shape", "TorchScript models carry their own shapes");
  out.recompute_modules = section.Get<std::vector<std::string>>("modules", out.recompute_modules);
  section.RejectUnknownKeys();
}

// amp_config: written = on (unless enable: false), as ACT turns AMP on by its presence.
void ParseAmp(ConfigSection& train, AmpOptions& out) {
  if (!train.IsWritten("amp_config")) return;
  ConfigSection amp = train.Section("amp_config");
  for (const char* key : {"custom_white_list", "custom_black_list"}) {
    amp.Ignore(key, "LibTorch's autocast lists are fixed: convolutions, linear and matrix "
                    "products run in the lower precision, losses and reductions in float32 "
                    "(docs/configuration.md)");
  }
  amp.Ignore("use_fp16_guard", "the whole forward of the student is autocast");
  amp.Ignore("decr_every_n_nan_or_inf", "the scale shrinks at every overflow, as PyTorch's "
                                        "GradScaler does");
  if (amp.Get<bool>("use_pure_fp16", false)) {
    amp.Fail("use_pure_fp16", "pure float16 training is not supported; amp_config autocasts "
                              "the forward and keeps float32 weights and optimizer state");
  }
  out.enable = amp.Get<bool>("enable", true);
  out.dtype = amp.Get<std::string>("dtype", out.dtype);
  if (!out.dtype.empty()) amp.CheckChoice("dtype", out.dtype, {"float16", "bfloat16"});
  out.init_loss_scaling = amp.Get<double>("init_loss_scaling", out.init_loss_scaling);
  amp.CheckRange<double>("init_loss_scaling", out.init_loss_scaling, 1, 1e30);
  out.incr_every_n_steps = amp.Get<int64_t>("incr_every_n_steps", out.incr_every_n_steps);
  amp.CheckRange<int64_t>("incr_every_n_steps", out.incr_every_n_steps, 1, kMaxInt);
  out.incr_ratio = amp.Get<double>("incr_ratio", out.incr_ratio);
  amp.CheckRange<double>("incr_ratio", out.incr_ratio, 1, 1e6);
  out.decr_ratio = amp.Get<double>("decr_ratio", out.decr_ratio);
  amp.CheckRange<double>("decr_ratio", out.decr_ratio, 1e-6, 1);
  out.dynamic_loss_scaling = amp.Get<bool>("use_dynamic_loss_scaling", out.dynamic_loss_scaling);
  amp.RejectUnknownKeys();
}

void ParseTrain(ConfigSection section, TrainOptions& out) {
  for (const auto& [key, why] : kActOnlyTrainKeys) section.Ignore(key, why);
  out.train_iter = section.Get<int64_t>("train_iter", 0);
  section.CheckRange<int64_t>("train_iter", out.train_iter, 0, kMaxInt);
  out.epochs = section.Get<int64_t>("epochs", out.epochs);
  section.CheckRange<int64_t>("epochs", out.epochs, 1, 1000000);
  out.eval_iter = section.Get<int64_t>("eval_iter", out.eval_iter);
  section.CheckRange<int64_t>("eval_iter", out.eval_iter, 0, kMaxInt);
  out.logging_iter = section.Get<int64_t>("logging_iter", out.logging_iter);
  section.CheckRange<int64_t>("logging_iter", out.logging_iter, 1, kMaxInt);
  out.target_metric = GetMetric(section, "target_metric");
  out.origin_metric = GetMetric(section, "origin_metric");
  out.accumulate_steps = section.Get<int64_t>("accumulate_steps", out.accumulate_steps);
  section.CheckRange<int64_t>("accumulate_steps", out.accumulate_steps, 1, 1 << 20);
  out.bucket_cap_mb = section.Get<double>("bucket_cap_mb", out.bucket_cap_mb);
  section.CheckRange<double>("bucket_cap_mb", out.bucket_cap_mb, 0.001, 4096);
  out.learning_rate = ParseLearningRate(section, out.learning_rate.learning_rate);
  ParseOptimizer(section.Section("optimizer_builder"), out.optimizer);
  ParseCheckpoint(section.Section("checkpoint"), out.checkpoint);
  ParseSharding(section.Section("sharding_config"), out);
  ParseAmp(section, out.amp);
  ParseRecompute(section.Section("recompute_config"), out);
  section.RejectUnknownKeys();
}

}  // namespace

Config LoadConfig(const std::string& file, const std::vector<std::string>& overrides,
                  const StrategySectionParser& parse_strategies) {
  YAML::Node root = LoadYaml(file);
  for (const auto& assignment : overrides) ApplyOverride(root, assignment);

  YAML::Node resolved(YAML::NodeType::Map);
  ConfigSection top(root, "", file, resolved);
  Config config;
  config.file = file;
  if (!top.Has("Global")) top.Fail("Global", "required section is missing");
  ParseGlobal(top.Section("Global"), config.global);
  ParseTrain(top.Section("TrainConfig"), config.train);
  parse_strategies(top, config);
  top.RejectUnknownKeys();

  YAML::Emitter emitter;
  emitter.SetDoublePrecision(15);
  emitter.SetSeqFormat(YAML::Flow);
  emitter << resolved;
  config.resolved_yaml = std::string(emitter.c_str()) + "\n";
  return config;
}

}  // namespace slim::config
