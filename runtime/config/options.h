// Typed options, filled once from the YAML config (config_loader.h). Field comments give
// the YAML key, the meaning, the default and the trade-off; docs/configuration.md shows
// the same text.
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace slim::config {

// Global.augment: training-time image augmentation (ignored for text data).
struct AugmentOptions {
  // random_crop_padding: pad by this many pixels (zeros) and crop back at a random
  // offset. 0 disables. Default 4, the CIFAR recipe.
  int64_t random_crop_padding = 4;
  // horizontal_flip: mirror half of the images. Default true.
  bool horizontal_flip = true;
};

// Global: what to train, on which data, where to write.
struct GlobalOptions {
  // model: "builtin:<name>" (resnet20, resnet56, mobilenetv2, fmnist_resnet, transformer)
  // or the path of a TorchScript file saved with torch.jit.save. Required.
  std::string model;
  // input_shape: per-sample shape [C, H, W] or [L]; default: taken from the data.
  std::vector<int64_t> input_shape;
  // train_data / eval_data: HDF5 files in the format of docs/data-format.md. train_data
  // is required; without eval_data no evaluation runs.
  std::string train_data;
  std::string eval_data;
  // batch_size: samples per rank per step (global batch = batch_size x ranks x
  // accumulate_steps). Default 64.
  int64_t batch_size = 64;
  // eval_batch_size: samples per rank per eval step. Default: batch_size.
  int64_t eval_batch_size = 0;
  // seed: seeds model initialisation, shuffling and augmentation. Default 42.
  int64_t seed = 42;
  // output_dir: where metrics, the model and the report go. Default "output".
  std::string output_dir = "output";
  // device: auto (cuda:<local_rank % gpus> when CUDA is available, else cpu), cpu, cuda.
  std::string device = "auto";
  // loader_threads: background threads reading and transforming batches. Default 2.
  int64_t loader_threads = 2;
  // prefetch_batches: batches prepared ahead of the training loop. Default 4; more
  // hides slower storage at the cost of memory.
  int64_t prefetch_batches = 4;
  // drop_last: drop the last incomplete batch of each epoch. Default true.
  bool drop_last = true;
  // comm_timeout_s: how long any collective may take before the job is declared hung and
  // aborted with exit code 4. Default 300.
  double comm_timeout_s = 300;
  // io_timeout_s: how long the other ranks wait for rank 0 to write a checkpoint,
  // model.pt or model_best.pt before the job is declared hung (exit code 4). Default 3600:
  // large models on a slow shared file system take minutes.
  double io_timeout_s = 3600;
  // intra_op_threads: LibTorch threads per rank; 0 = cores on this node / ranks on this
  // node. Default 0.
  int64_t intra_op_threads = 0;
  // export: the formats written at the end of a run, next to each other in output_dir
  // (docs/export.md): torchscript (model.pt, fake-quant or QDQ in float, the default),
  // torchscript_int8 (model_int8.pt, integer kernels) and onnx (model.onnx, QDQ for
  // quantized models). model_best.* likewise. Default [torchscript].
  std::vector<std::string> export_formats = {"torchscript"};
  // export_quantized_output: in torchscript_int8 and a quantized onnx, the model's output
  // (the logits) goes onto an 8-bit grid calibrated on training samples, as
  // torch.ao.quantization puts it, and the classifier runs as an integer kernel: faster,
  // but logits with 256 levels, so near-ties can change the top-1 class. Default false:
  // the classifier stays float, its logits those of model.pt.
  bool export_quantized_output = false;
  AugmentOptions augment;
};

// TrainConfig.learning_rate: a number (constant) or a schedule mapping.
struct LrScheduleOptions {
  // type: Constant, CosineAnnealingDecay, PiecewiseDecay, ExponentialDecay, LinearWarmup.
  std::string type = "Constant";
  // learning_rate: the base rate. Default 0.1.
  double learning_rate = 0.1;
  // CosineAnnealingDecay: T_max (steps; 0 = the whole run) and eta_min.
  int64_t t_max = 0;
  double eta_min = 0;
  // PiecewiseDecay: boundaries (steps) and values (one more than boundaries).
  std::vector<int64_t> boundaries;
  std::vector<double> values;
  // ExponentialDecay: gamma per step.
  double gamma = 1.0;
  // LinearWarmup: warmup_steps from start_lr to end_lr, then `after_warmup`.
  int64_t warmup_steps = 0;
  double start_lr = 0;
  double end_lr = 0;
  std::shared_ptr<const LrScheduleOptions> after_warmup;
};

// TrainConfig.optimizer_builder.
struct OptimizerOptions {
  // optimizer.type: SGD, Momentum, Adam, AdamW. Default Momentum.
  std::string type = "Momentum";
  // optimizer.momentum (Momentum). Default 0.9.
  double momentum = 0.9;
  // optimizer.use_nesterov (Momentum). Default false.
  bool nesterov = false;
  // optimizer.beta1 / beta2 / epsilon (Adam, AdamW).
  double beta1 = 0.9;
  double beta2 = 0.999;
  double epsilon = 1e-8;
  // weight_decay: L2 (SGD, Momentum, Adam) or decoupled (AdamW). Default 0.
  double weight_decay = 0;
  // grad_clip: global-norm clip, a number or {type: ClipGradByGlobalNorm, clip_norm: x};
  // 0 disables. Default 0.
  double grad_clip_norm = 0;
};

// TrainConfig.checkpoint: when HDF5 checkpoints are written (docs/checkpoints.md). A
// checkpoint is also written at the end of training and when a stop signal arrives.
struct CheckpointOptions {
  // every_iter: every this many optimizer steps; 0 = not by step count. Default 0.
  int64_t every_iter = 0;
  // every_minutes: when this many minutes passed since the last one (rank 0's clock);
  // 0 = not by time. Default 30: a preempted run loses at most half an hour.
  double every_minutes = 30;
  // keep: how many of the newest checkpoints stay on disk. Default 3.
  int64_t keep = 3;
};

// TrainConfig.amp_config: automatic mixed precision of the student's forward
// (docs/configuration.md).
struct AmpOptions {
  // On when amp_config is written (ACT's convention), unless enable: false.
  bool enable = false;
  // dtype: float16 (CUDA only) or bfloat16; empty = the device's default (float16 on
  // CUDA, bfloat16 on CPU, as torch.autocast).
  std::string dtype;
  // float16's dynamic loss scaling, with PyTorch GradScaler's defaults (ACT starts at 128).
  double init_loss_scaling = 65536;
  int64_t incr_every_n_steps = 2000;
  double incr_ratio = 2;
  double decr_ratio = 0.5;
  // use_dynamic_loss_scaling: false keeps init_loss_scaling for the whole run.
  bool dynamic_loss_scaling = true;
};

// TrainConfig: how long and how to train.
struct TrainOptions {
  // epochs: passes over the training data. Default 1 unless train_iter is set.
  int64_t epochs = 1;
  // train_iter: optimizer steps; when set it wins over epochs. Default 0 (unset).
  int64_t train_iter = 0;
  // eval_iter: evaluate every this many steps (and at the end). 0 = only at the end.
  int64_t eval_iter = 0;
  // logging_iter: log training metrics every this many steps. Default 10.
  int64_t logging_iter = 10;
  // target_metric: stop early once eval_top1 reaches this. Default: none.
  double target_metric = std::numeric_limits<double>::quiet_NaN();
  // origin_metric: the uncompressed model's metric, reported next to the final one.
  double origin_metric = std::numeric_limits<double>::quiet_NaN();
  // accumulate_steps: micro-batches per optimizer step; only the last one communicates.
  int64_t accumulate_steps = 1;
  // bucket_cap_mb: size of the fused gradient buckets. Default 25 (as PyTorch DDP);
  // smaller buckets start communicating earlier, larger ones make fewer calls.
  double bucket_cap_mb = 25;
  // sharding_config.stage: 1 = ZeRO stage 1, each rank holds the optimizer state of its
  // share of the parameters; 0 (absent or {}) = every rank holds all of it.
  int64_t sharding_stage = 0;
  // recompute_config.modules: module paths or shell patterns (layer2, enc.layers.*) whose
  // activations are freed after the forward and recomputed in backward. Empty = none.
  std::vector<std::string> recompute_modules;
  AmpOptions amp;
  LrScheduleOptions learning_rate;
  OptimizerOptions optimizer;
  CheckpointOptions checkpoint;
};

// Base of the parsed options of one strategy section. Each strategy declares its own
// options type (strategies/<name>/) deriving from this; the strategy registry
// (strategies/registry.h) parses the sections and builds the strategies from them.
struct StrategyOptions {
  virtual ~StrategyOptions() = default;
};

// The whole parsed configuration.
struct Config {
  std::string file;
  GlobalOptions global;
  TrainOptions train;
  // The strategy sections present in the file, by section name (QuantAware, ...).
  std::map<std::string, std::shared_ptr<StrategyOptions>> strategies;
  // Every key with its effective value, as YAML text (config.resolved.yaml).
  std::string resolved_yaml;

  bool HasStrategy(const std::string& section) const { return strategies.count(section) > 0; }
  // The options of `section` as its strategy's type. REQUIRES: HasStrategy(section) and
  // Options is the type that section's parser made.
  template <typename Options>
  Options& StrategyOptionsOf(const std::string& section) const {
    return static_cast<Options&>(*strategies.at(section));
  }
};

}  // namespace slim::config
