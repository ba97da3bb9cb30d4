#include "runtime/engine/trainer.h"

#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <iomanip>
#include <optional>
#include <sstream>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "data/batch_loader.h"
#include "data/distributed_sampler.h"
#include "runtime/checkpoint/checkpoint_directory.h"
#include "runtime/checkpoint/checkpoint_writer.h"
#include "runtime/checkpoint/state_capture.h"
#include "runtime/ddp/gradient_bucketer.h"
#include "runtime/ddp/module_sync.h"
#include "runtime/base/errors.h"
#include "runtime/base/fault_injection.h"
#include "runtime/base/logging.h"
#include "runtime/base/memory_usage.h"
#include "runtime/base/stop_signals.h"
#include "runtime/models/model_loader.h"
#include "runtime/base/torch_compat.h"
#include "runtime/engine/activation_recompute.h"
#include "runtime/engine/evaluator.h"
#include "runtime/engine/loss_scaler.h"
#include "runtime/engine/lr_schedule.h"
#include "runtime/engine/metrics_log.h"
#include "runtime/engine/mixed_precision.h"
#include "runtime/engine/optimizer_factory.h"
#include "runtime/engine/optimizer_sharding.h"
#include "runtime/engine/rank_state.h"
#include "runtime/engine/run_report.h"
#include "runtime/engine/resume_point.h"
#include "runtime/engine/step_agreement.h"
#include "runtime/engine/tensor_memory.h"

namespace slim::engine {

namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// The current time in UTC as ISO 8601, e.g. 2026-11-21T10:00:00Z.
std::string UtcNow() {
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  std::ostringstream out;
  out << std::put_time(&utc, "%Y-%m-%dT%H:%M:%SZ");
  return out.str();
}

std::string Fixed(double value, int digits) {
  std::ostringstream out;
  out << std::fixed << std::setprecision(digits) << value;
  return out.str();
}

// One training run; lives for the duration of Train().
class TrainingRun {
 public:
  explicit TrainingRun(TrainingSetup setup);
  TrainingOutcome Run();

 private:
  // Runs the accumulate_steps micro-batches of one optimizer step; returns the summed
  // local loss of the step.
  double Step(int64_t step);
  data::Batch NextBatch();
  void MaybeLog(int64_t step, double step_loss, int64_t epoch);
  // When a new best model is written during an evaluation.
  enum class BestWrite {
    kAtOnce,            // while a checkpoint may still be written in the background
    kAfterCheckpoints,  // once the checkpoint writes have ended (the final evaluation)
  };
  // Evaluates (collective); returns true when target_metric is reached.
  bool EvaluateAndKeepBest(int64_t step, BestWrite best_write = BestWrite::kAtOnce);
  void WriteReport(int64_t steps_done, bool stopped_early, json memory);
  // Every rank's peak resident memory, peak tensor memory on its device since training
  // began (tensor_memory.h) and optimizer-state size in MiB, in rank order: {"peak_rss_mb":
  // [...], "peak_tensor_mb": [...], "optimizer_state_mb": [...]}. Collective.
  json MemoryByRank() const;
  // Where the loop stands, for the strategies' hooks.
  strategies::HookContext Context(int64_t steps_done);
  // After a strategy replaced parameters: the optimizer's groups and the gradient buckets
  // follow the model's current tensors.
  void FollowRestructuredModel();
  // The student's training forward: recomputes recompute_config's modules in backward.
  void BuildRecompute();
  torch::jit::IValue StudentForward(const torch::Tensor& inputs);
  // Throws DataError when micro-batch `micro_batch`'s inputs hold NaN or Inf, naming the
  // file and the first such sample.
  void CheckFiniteInputs(const torch::Tensor& inputs, int64_t micro_batch);
  // Runs OnEpochBegin when the next micro-batch starts a new epoch.
  void MaybeBeginEpoch(int64_t steps_done);
  // This rank's own floating-point buffers from a checkpoint written by as many ranks.
  void RestoreOwnBuffers(const checkpoint::TensorMap& rank_buffers);
  // Checks that every rank found the same checkpoint (or none). Collective.
  void AgreeOnResumeStep();
  // Continues from setup_.resume: optimizer state, data position, step, RNG, logging
  // window and best metric.
  void Resume(const checkpoint::CheckpointState& saved);
  // Snapshots the whole training state after `steps_done` steps and hands it to the
  // background writer (rank 0). Collective: averages BatchNorm statistics and gathers
  // per-rank values.
  void SaveCheckpoint(int64_t steps_done, bool finished);
  // Throws ModelError when a parameter or buffer holds NaN or Inf. Every rank holds the
  // same tensors here (buffers just averaged), so all ranks throw together.
  void RefuseNonFiniteState(int64_t steps_done,
                            const checkpoint::TensorMap& rank_buffers) const;
  // Waits until the last checkpoint is on disk (rank 0), then for all ranks.
  void FinishCheckpoints();
  // Waits, on every rank, until rank 0 has finished its file writes of the moment, for up
  // to Global.io_timeout_s rather than comm_timeout_s. Collective.
  void WaitForRankZeroIo();
  bool WritesOutputs() const { return comm_.Rank() == 0; }
  std::string OutputPath(const std::string& name) const {
    return (std::filesystem::path(options_.global.output_dir) / name).string();
  }

  TrainingSetup setup_;
  const config::Config& options_;
  comm::Communicator& comm_;
  TrainingPlan plan_;
  torch::jit::Module& model_;
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  std::unique_ptr<ddp::GradientBucketer> bucketer_;
  std::unique_ptr<OptimizerSharding> sharding_;  // with sharding_config
  std::unique_ptr<LossScaler> scaler_;  // with float16 autocast
  std::unique_ptr<ActivationRecompute> recompute_;  // with recompute_config
  data::DistributedSampler sampler_;
  data::BatchLoader loader_;
  std::unique_ptr<Evaluator> evaluator_;
  std::unique_ptr<MetricsLog> metrics_;
  FaultInjector faults_;
  StepAgreement agreement_;
  torch::ScalarType autocast_type_;  // of the student's forward
  std::unique_ptr<checkpoint::CheckpointWriter> writer_;  // rank 0

  int64_t first_step_ = 0;
  bool finished_ = false;      // resumed from the checkpoint of a run that had ended
  int64_t last_checkpoint_step_ = -1;
  int64_t micro_batch_ = 0;  // micro-batches consumed since the start of training
  int64_t loaded_epoch_ = -1;
  int64_t hooked_epoch_ = -1;  // the last epoch OnEpochBegin ran for
  // Logging window.
  double window_loss_ = 0;
  int64_t window_steps_ = 0;
  Clock::time_point window_start_ = Clock::now();
  Clock::time_point run_start_ = Clock::now();
  double train_seconds_ = 0;
  // Evaluation.
  double best_top1_ = -1;
  int64_t best_step_ = -1;
  EvalResult last_eval_;
  bool evaluated_ = false;
  int64_t last_eval_step_ = -1;
};

TrainingRun::TrainingRun(TrainingSetup setup)
    : setup_(std::move(setup)),
      options_(*setup_.config),
      comm_(*setup_.comm),
      plan_(PlanTraining(options_, setup_.train_data->info().size, comm_.Size())),
      model_(setup_.model),
      sampler_(data::SamplerOptions{setup_.train_data->info().size, comm_.Rank(), comm_.Size(),
                                    options_.global.batch_size, /*shuffle=*/true,
                                    options_.global.drop_last,
                                    static_cast<uint64_t>(options_.global.seed)}),
      loader_(setup_.train_data,
              data::BatchTransform(setup_.train_data->info(),
                                   data::AugmentSettings{
                                       true, options_.global.augment.random_crop_padding,
                                       options_.global.augment.horizontal_flip,
                                       static_cast<uint64_t>(options_.global.seed)}),
              options_.global.loader_threads, options_.global.prefetch_batches),
      faults_(comm_.Rank()),
      agreement_(options_.train.checkpoint, comm_),
      autocast_type_(AutocastType(options_.train.amp, setup_.device, options_.file)) {
  CountCpuTensorMemory();
  if (autocast_type_ != torch::kFloat) {
    logging::Info(fmt::format("mixed precision: the student's forward autocasts to {}{}",
                              c10::toString(autocast_type_),
                              autocast_type_ == torch::kHalf ? " with dynamic loss scaling" : ""));
  }
  if (autocast_type_ == torch::kHalf) scaler_ = std::make_unique<LossScaler>(options_.train.amp);
  ddp::BroadcastModelState(model_, comm_);
  auto parameters = models::TrainableParameters(model_);
  const auto groups = setup_.compressor->ParameterGroups();
  optimizer_ = BuildOptimizer(options_.train.optimizer, WithoutGroups(parameters, groups),
                              LearningRateAt(options_.train.learning_rate, 0, plan_.total_steps));
  AddParameterGroups(*optimizer_, groups);
  bucketer_ = std::make_unique<ddp::GradientBucketer>(parameters, comm_,
                                                      options_.train.bucket_cap_mb);
  if (setup_.eval_data) {
    evaluator_ =
        std::make_unique<Evaluator>(setup_.eval_data, comm_, setup_.device, options_.global);
  }
  window_loss_ = 0;
  AgreeOnResumeStep();
  if (setup_.resume) Resume(*setup_.resume);
  if (options_.train.sharding_stage == 1) {
    sharding_ = std::make_unique<OptimizerSharding>(*optimizer_, options_.train.optimizer.type,
                                                    comm_);
    logging::Info(fmt::format("ZeRO stage 1: the optimizer state is sharded over {} rank(s); "
                              "this rank steps {} parameter tensor(s)",
                              comm_.Size(), sharding_->OwnedParameterCount()));
  }
  BuildRecompute();
  if (recompute_) {
    logging::Info(fmt::format("activation recompute: the activations of {} are recomputed in "
                              "backward",
                              fmt::join(recompute_->Paths(), ", ")));
  }
  if (WritesOutputs()) {
    const int64_t keep_lines = setup_.resume ? setup_.resume->trainer.metrics_lines : 0;
    metrics_ = std::make_unique<MetricsLog>(OutputPath("metrics.jsonl"), keep_lines);
    writer_ = std::make_unique<checkpoint::CheckpointWriter>(
        checkpoint::CheckpointDirectory(options_.global.output_dir),
        options_.train.checkpoint.keep, setup_.resume_path,
        [this](int64_t step) { faults_.InCheckpointWrite(step); });
  }
}

void TrainingRun::RestoreOwnBuffers(const checkpoint::TensorMap& rank_buffers) {
  torch::NoGradGuard no_grad;
  for (const auto& item : model_.named_buffers()) {
    const auto found = rank_buffers.find(item.name);
    if (found != rank_buffers.end()) item.value.copy_(found->second[comm_.Rank()]);
  }
}

void TrainingRun::AgreeOnResumeStep() {
  // Every rank looked for the checkpoint itself; -1 stands for none.
  const int64_t step = setup_.resume ? setup_.resume->progress.step : -1;
  auto steps = torch::tensor({step, -step}, torch::kInt64);
  comm_.AllReduceSync(steps, comm::ReduceOp::kMax);
  const int64_t highest = steps[0].item<int64_t>();
  const int64_t lowest = -steps[1].item<int64_t>();
  if (highest == lowest) return;
  const auto describe = [](int64_t value) {
    return value < 0 ? std::string("no checkpoint") : fmt::format("the checkpoint of step {}", value);
  };
  throw ConfigError(fmt::format(
      "the ranks found different checkpoints to resume from ({} on some, {} on others) in {}; "
      "Global.output_dir must be on a file system all ranks share",
      describe(lowest), describe(highest),
      checkpoint::CheckpointDirectory(options_.global.output_dir)));
}

void TrainingRun::Resume(const checkpoint::CheckpointState& saved) {
  checkpoint::RestoreOptimizer(saved, *optimizer_, model_);
  const auto point = ResumePointFor(saved.progress, plan_.batches_per_epoch,
                                    options_.global.batch_size * comm_.Size(),
                                    options_.train.accumulate_steps);
  if (!point.exact) logging::Warning(point.note);
  first_step_ = point.step;
  micro_batch_ = point.micro_batch;
  finished_ = saved.trainer.finished;
  last_checkpoint_step_ = saved.progress.step;
  best_top1_ = saved.trainer.best_top1;
  best_step_ = saved.trainer.best_step;
  const bool same_ranks = saved.world_size == comm_.Size() && point.exact;
  if (same_ranks) {
    window_loss_ = saved.trainer.window_loss.at(comm_.Rank());
    window_steps_ = saved.trainer.window_steps;
  } else if (comm_.Rank() == 0) {
    for (double loss : saved.trainer.window_loss) window_loss_ += loss;
    window_steps_ = saved.trainer.window_steps;
  }
  if (same_ranks) RestoreOwnBuffers(saved.rank_buffers);
  if (scaler_ && saved.trainer.loss_scale > 0) {
    scaler_->Restore(saved.trainer.loss_scale, saved.trainer.loss_scale_growth);
  }
  RestoreGeneratorState(DefaultGenerator(torch::kCPU), saved.cpu_rng_states, comm_.Rank());
  if (setup_.device.is_cuda()) {
    RestoreGeneratorState(DefaultGenerator(setup_.device), saved.cuda_rng_states, comm_.Rank());
  }
  logging::Info("resuming from " + setup_.resume_path + " at step " + std::to_string(first_step_) +
                " (epoch " + std::to_string(micro_batch_ / plan_.batches_per_epoch) + ", written by " +
                std::to_string(saved.world_size) + " rank(s) on " + saved.created + ")");
}

void TrainingRun::RefuseNonFiniteState(int64_t steps_done,
                                       const checkpoint::TensorMap& rank_buffers) const {
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (const auto& item : model_.named_parameters()) {
    tensors.emplace_back("parameter " + item.name, item.value);
  }
  for (const auto& [name, values] : rank_buffers) tensors.emplace_back("buffer " + name, values);
  for (const auto& [what, tensor] : tensors) {
    if (!tensor.is_floating_point() || torch::isfinite(tensor).all().item().toBool()) continue;
    throw ModelError(fmt::format(
        "the model's {} became NaN or infinite by step {}, so the optimisation diverged; it is "
        "not checkpointed. Lower TrainConfig.learning_rate or set "
        "TrainConfig.optimizer_builder.grad_clip, and resume from the last checkpoint",
        what, steps_done));
  }
}

void TrainingRun::SaveCheckpoint(int64_t steps_done, bool finished) {
  const auto start = Clock::now();
  // Every rank's own buffers, gathered without touching them: a checkpoint must not change
  // the run it observes.
  auto rank_buffers = ddp::GatherFloatingBuffers(model_, comm_);
  RefuseNonFiniteState(steps_done, rank_buffers);
  const auto rng_states = GatherGeneratorStates(DefaultGenerator(torch::kCPU), comm_);
  const auto cuda_rng_states = setup_.device.is_cuda()
                                   ? GatherGeneratorStates(DefaultGenerator(setup_.device), comm_)
                                   : torch::Tensor();
  const auto window_losses = GatherValues(window_loss_, comm_);
  agreement_.MarkCheckpointed();
  last_checkpoint_step_ = steps_done;
  // The checkpoint holds the whole optimizer state in the unsharded layout.
  auto state = std::make_shared<checkpoint::CheckpointState>();
  if (sharding_) sharding_->GatherStateOnRankZero();
  if (WritesOutputs()) {
    checkpoint::CaptureOptimizer(*optimizer_, options_.train.optimizer.type, model_, *state);
  }
  if (sharding_) sharding_->Reshard();
  if (!WritesOutputs()) {
    WaitForRankZeroIo();  // rank 0 may first wait for its previous write
    return;
  }
  state->libtorch_version = compat::TorchVersionString();
  state->world_size = comm_.Size();
  state->created = UtcNow();
  state->model_reference = setup_.model_reference;
  state->config_yaml = options_.resolved_yaml;
  state->strategies = setup_.compressor->Names();
  state->strategy_state = setup_.compressor->SaveState();
  auto& progress = state->progress;
  progress.step = steps_done;
  progress.micro_batch = micro_batch_;
  progress.batches_per_epoch = plan_.batches_per_epoch;
  progress.global_micro_batch = options_.global.batch_size * comm_.Size();
  progress.accumulate_steps = options_.train.accumulate_steps;
  progress.epoch = micro_batch_ / plan_.batches_per_epoch;
  progress.samples_seen = micro_batch_ * progress.global_micro_batch;
  progress.learning_rate =
      LearningRateAt(options_.train.learning_rate, std::max<int64_t>(steps_done - 1, 0),
                     plan_.total_steps);
  state->trainer = {window_losses, window_steps_, best_top1_, best_step_,
                    metrics_->LinesWritten(), finished};
  if (scaler_) {
    state->trainer.loss_scale = scaler_->scale();
    state->trainer.loss_scale_growth = scaler_->growth_tracker();
  }
  checkpoint::CaptureModel(model_, *state);
  for (const auto& [name, values] : rank_buffers) state->buffers[name] = values.mean(0);
  state->rank_buffers = std::move(rank_buffers);
  state->cpu_rng_states = rng_states;
  state->cuda_rng_states = cuda_rng_states;
  writer_->Start(std::move(state));
  logging::Info("checkpoint at step " + std::to_string(steps_done) + ": training paused " +
                Fixed(SecondsSince(start) * 1000, 1) + " ms for the snapshot; writing in the "
                "background");
  WaitForRankZeroIo();
}

void TrainingRun::FinishCheckpoints() {
  if (writer_) writer_->Wait();
  WaitForRankZeroIo();
}

void TrainingRun::WaitForRankZeroIo() {
  const auto deadline = std::chrono::duration<double>(options_.global.io_timeout_s);
  comm_.Barrier()->Wait(std::chrono::duration_cast<std::chrono::milliseconds>(deadline));
}

strategies::HookContext TrainingRun::Context(int64_t steps_done) {
  return {model_,          optimizer_.get(),
          comm_,           steps_done,
          plan_.total_steps, micro_batch_ / plan_.batches_per_epoch,
          micro_batch_};
}

void TrainingRun::CheckFiniteInputs(const torch::Tensor& inputs, int64_t micro_batch) {
  const auto finite_rows = torch::isfinite(inputs).reshape({inputs.size(0), -1}).all(1);
  if (finite_rows.all().item<bool>()) return;
  const int64_t row = torch::logical_not(finite_rows).nonzero()[0][0].item<int64_t>();
  const auto indices = sampler_.BatchIndices(micro_batch / plan_.batches_per_epoch,
                                             micro_batch % plan_.batches_per_epoch);
  throw DataError(fmt::format(
      "sample {} of {} is NaN or infinite after normalisation (step {}): check its values and "
      "the file's mean and std attributes (docs/data-format.md)",
      indices.at(row), setup_.train_data->info().path, micro_batch / options_.train.accumulate_steps + 1));
}

void TrainingRun::MaybeBeginEpoch(int64_t steps_done) {
  const int64_t epoch = micro_batch_ / plan_.batches_per_epoch;
  if (epoch == hooked_epoch_) return;
  hooked_epoch_ = epoch;
  auto context = Context(steps_done);
  setup_.compressor->OnEpochBegin(context);
}

void TrainingRun::BuildRecompute() {
  if (options_.train.recompute_modules.empty()) return;
  recompute_.reset();  // its regions go before the new ones come
  recompute_ = std::make_unique<ActivationRecompute>(
      model_, options_.train.recompute_modules, setup_.compressor->TappedModules(),
      options_.file);
}

torch::jit::IValue TrainingRun::StudentForward(const torch::Tensor& inputs) {
  return recompute_ ? recompute_->Forward(inputs) : model_.forward({inputs});
}

void TrainingRun::FollowRestructuredModel() {
  BuildRecompute();
  auto parameters = models::TrainableParameters(model_);
  RepointParameterGroups(*optimizer_, parameters, setup_.compressor->ParameterGroups());
  if (sharding_) sharding_->Reshard();
  bucketer_ = std::make_unique<ddp::GradientBucketer>(parameters, comm_,
                                                      options_.train.bucket_cap_mb);
  logging::Info("the model's structure changed: " + std::to_string(models::ParameterCount(model_)) +
                " parameters, " + std::to_string(bucketer_->BucketCount()) + " gradient bucket(s)");
}

data::Batch TrainingRun::NextBatch() {
  const int64_t epoch = micro_batch_ / plan_.batches_per_epoch;
  if (epoch != loaded_epoch_) {
    std::vector<std::vector<int64_t>> batches;
    for (int64_t b = micro_batch_ % plan_.batches_per_epoch; b < plan_.batches_per_epoch; ++b) {
      batches.push_back(sampler_.BatchIndices(epoch, b));
    }
    loader_.Start(std::move(batches), epoch);
    loaded_epoch_ = epoch;
  }
  ++micro_batch_;
  auto batch = loader_.Next();
  batch.inputs = batch.inputs.to(setup_.device);
  batch.labels = batch.labels.to(setup_.device);
  return batch;
}

double TrainingRun::Step(int64_t step) {
  const int64_t accumulate = options_.train.accumulate_steps;
  double step_loss = 0;
  auto begin = Context(step);
  setup_.compressor->OnStepBegin(begin);
  for (int64_t micro = 0; micro < accumulate; ++micro) {
    MaybeBeginEpoch(step);
    const int64_t micro_batch = micro_batch_;
    auto batch = NextBatch();
    bucketer_->SetSyncEnabled(micro == accumulate - 1);
    torch::Tensor loss;
    try {
      torch::Tensor logits;
      {
        AutocastScope autocast(setup_.device, autocast_type_);
        logits = StudentForward(batch.inputs).toTensor();
      }
      // The losses (and teachers' forwards) run in float32 outside the autocast scope.
      loss = setup_.compressor->Loss(batch.inputs, logits.to(torch::kFloat), batch.labels) /
             accumulate;
      (scaler_ ? scaler_->Scale(loss) : loss).backward();
    } catch (const c10::Error& error) {
      RefuseMissingLowPrecisionKernel(error, autocast_type_, options_.file);
      throw;
    }
    const double value = loss.item<double>();
    if (!std::isfinite(value)) CheckFiniteInputs(batch.inputs, micro_batch);
    step_loss += value;
  }
  bucketer_->FinishGradientSync();
  const bool overflow =
      scaler_ && scaler_->UnscaleAndUpdate(OptimizerParameters(*optimizer_), comm_);
  if (overflow) {
    logging::Warning(fmt::format("step {}: float16 gradients overflowed; the step is skipped on "
                                 "every rank and the loss scale is now {}",
                                 step + 1, scaler_->scale()));
  }
  auto before = Context(step);
  setup_.compressor->OnBeforeOptimizerStep(before);
  if (options_.train.optimizer.grad_clip_norm > 0) {
    torch::nn::utils::clip_grad_norm_(OptimizerParameters(*optimizer_),
                                      options_.train.optimizer.grad_clip_norm);
  }
  SetLearningRate(*optimizer_,
                  LearningRateAt(options_.train.learning_rate, step, plan_.total_steps));
  if (!overflow) {
    if (sharding_) sharding_->DropForeignGradients();
    optimizer_->step();
    if (sharding_) sharding_->ShareUpdatedParameters();
  }
  optimizer_->zero_grad();
  auto after = Context(step + 1);
  setup_.compressor->OnAfterOptimizerStep(after);
  if (setup_.compressor->RestructureModel(after)) FollowRestructuredModel();
  const int64_t batches = plan_.batches_per_epoch;
  if (micro_batch_ / batches != (micro_batch_ - accumulate) / batches) {
    setup_.compressor->OnEpochEnd(after);
  }
  return step_loss;
}

void TrainingRun::MaybeLog(int64_t step, double step_loss, int64_t epoch) {
  window_loss_ += step_loss;
  ++window_steps_;
  const int64_t done = step + 1;
  if (done % options_.train.logging_iter != 0 && done != plan_.total_steps) return;
  // Mean loss over the window and all ranks: one small collective per log line.
  auto totals = torch::tensor({window_loss_, static_cast<double>(window_steps_)}, torch::kFloat64);
  comm_.AllReduceSync(totals, comm::ReduceOp::kSum);
  const double loss = totals[0].item<double>() / totals[1].item<double>();
  const double seconds = SecondsSince(window_start_);
  const double samples_per_s = window_steps_ * plan_.global_batch / std::max(seconds, 1e-9);
  const double lr = LearningRateAt(options_.train.learning_rate, step, plan_.total_steps);
  const double eta_s = (plan_.total_steps - done) * seconds / window_steps_;
  const json memory = MemoryByRank();
  logging::Info("step " + std::to_string(done) + "/" + std::to_string(plan_.total_steps) +
                " epoch " + std::to_string(epoch) + " loss " + Fixed(loss, 4) + " lr " +
                Fixed(lr, 6) + " " + Fixed(samples_per_s, 1) + " samples/s eta " +
                Fixed(eta_s, 0) + " s");
  if (metrics_) {
    json line = {{"event", "train"}, {"step", done}, {"epoch", epoch}, {"loss", loss},
                 {"lr", lr}, {"samples_per_s", samples_per_s}, {"eta_s", eta_s}};
    line.update(memory);
    metrics_->Write(line);
  }
  window_loss_ = 0;
  window_steps_ = 0;
  window_start_ = Clock::now();
}

bool TrainingRun::EvaluateAndKeepBest(int64_t step, BestWrite best_write) {
  ddp::AverageBuffers(model_, comm_);
  auto context = Context(step);
  setup_.compressor->OnBeforeEvaluation(context);
  last_eval_ = evaluator_->Evaluate(model_);
  setup_.compressor->OnAfterEvaluation(context, last_eval_);
  evaluated_ = true;
  last_eval_step_ = step;
  logging::Info("eval at step " + std::to_string(step) + ": loss " + Fixed(last_eval_.loss, 4) +
                " top1 " + Fixed(last_eval_.top1, 4) + " on " +
                std::to_string(last_eval_.samples) + " samples");
  if (metrics_) {
    metrics_->Write({{"event", "eval"}, {"step", step}, {"eval_loss", last_eval_.loss},
                     {"eval_top1", last_eval_.top1}});
  }
  if (last_eval_.top1 > best_top1_) {
    best_top1_ = last_eval_.top1;
    best_step_ = step;
    // The evaluation overlapped the final checkpoint's write; on a nearly full file system
    // model_best.* and that checkpoint would compete for the last free space.
    if (best_write == BestWrite::kAfterCheckpoints) FinishCheckpoints();
    if (WritesOutputs()) {
      ExportBestModel(setup_, model_);
    }
    WaitForRankZeroIo();
  }
  const double target = options_.train.target_metric;
  return !std::isnan(target) && last_eval_.top1 >= target;
}

TrainingOutcome TrainingRun::Run() {
  logging::Info("training " + setup_.model_reference + " on " + std::to_string(comm_.Size()) +
                " rank(s): " + std::to_string(plan_.total_steps) + " steps of " +
                std::to_string(plan_.global_batch) + " samples, " +
                std::to_string(bucketer_->BucketCount()) + " gradient bucket(s)");
  run_start_ = window_start_ = Clock::now();
  ResetPeakTensorBytes(setup_.device);
  bool stop_loop = finished_;
  auto begin = Context(first_step_);
  setup_.compressor->OnTrainBegin(begin);
  int64_t step = first_step_;
  std::optional<DeferredStopSignals> stop_at_step_boundary(std::in_place);
  for (; step < plan_.total_steps && !stop_loop; ++step) {
    const int64_t epoch = micro_batch_ / plan_.batches_per_epoch;
    faults_.AtStep(step + 1);
    const double step_loss = Step(step);
    const int64_t done = step + 1;
    const auto decision =
        agreement_.Decide(done, step_loss, writer_ != nullptr && writer_->FatalFailure());
    if (decision.checkpoint_failed) {
      if (writer_) writer_->Wait();  // rank 0 throws the writer's own message
      throw OutputError("rank 0 could not write a checkpoint and none is left to resume from; "
                        "see its message");
    }
    if (decision.loss_not_finite) {
      // Thrown before any checkpoint of this step: no file ever holds the damaged weights.
      throw ModelError(fmt::format(
          "the training loss became NaN or infinite at step {} on some rank while the input "
          "data was finite, so the optimisation diverged; lower TrainConfig.learning_rate, set "
          "TrainConfig.optimizer_builder.grad_clip, and resume from the last checkpoint",
          done));
    }
    MaybeLog(step, step_loss, epoch);
    const int64_t eval_iter = options_.train.eval_iter;
    if (evaluator_ && eval_iter > 0 && done % eval_iter == 0 && done != plan_.total_steps) {
      stop_loop = EvaluateAndKeepBest(done);
      if (stop_loop) logging::Info("target_metric reached; stopping early");
    }
    if (decision.stop) {
      SaveCheckpoint(done, /*finished=*/stop_loop || done == plan_.total_steps);
      FinishCheckpoints();
      logging::Info("stopped by a signal after step " + std::to_string(done) +
                    "; resume with the same command (exit code 75)");
      return TrainingOutcome::kStopped;
    }
    // The final checkpoint below covers the last step.
    if (decision.checkpoint && !stop_loop && done != plan_.total_steps) SaveCheckpoint(done, false);
  }
  stop_at_step_boundary.reset();  // from here on a signal ends the process at once
  train_seconds_ = SecondsSince(run_start_);
  const bool stopped_early = step < plan_.total_steps;
  if (!finished_) SaveCheckpoint(step, /*finished=*/true);
  if (evaluator_ && last_eval_step_ != step) {
    EvaluateAndKeepBest(step, BestWrite::kAfterCheckpoints);
  } else if (!evaluator_) {
    ddp::AverageBuffers(model_, comm_);
  }
  auto end = Context(step);
  if (!finished_) setup_.compressor->OnTrainEnd(end);
  const json memory = MemoryByRank();
  // model.pt and the exports are written once the final checkpoint is on disk: on a nearly
  // full file system the two would compete for the last free space.
  FinishCheckpoints();
  if (WritesOutputs()) WriteReport(step, stopped_early, memory);
  WaitForRankZeroIo();
  logging::Info("done in " + Fixed(SecondsSince(run_start_), 1) + " s; outputs in " +
                options_.global.output_dir);
  return TrainingOutcome::kCompleted;
}

json TrainingRun::MemoryByRank() const {
  const std::vector<std::string> names = {"peak_rss_mb", "peak_tensor_mb", "optimizer_state_mb"};
  const auto mine = torch::tensor({static_cast<double>(PeakResidentBytes()),
                                   static_cast<double>(PeakTensorBytes(setup_.device)),
                                   static_cast<double>(OptimizerStateBytes(*optimizer_))},
                                  torch::kFloat64);
  auto all = torch::empty({comm_.Size(), static_cast<int64_t>(names.size())}, torch::kFloat64);
  comm_.AllGather(mine, all)->Wait(comm_.DefaultTimeout());
  constexpr double kMiB = 1 << 20;
  json memory;
  for (size_t i = 0; i < names.size(); ++i) {
    json by_rank = json::array();
    for (int rank = 0; rank < comm_.Size(); ++rank) {
      by_rank.push_back(all[rank][static_cast<int64_t>(i)].item<double>() / kMiB);
    }
    memory[names[i]] = by_rank;
  }
  return memory;
}

void TrainingRun::WriteReport(int64_t steps_done, bool stopped_early, json memory) {
  json fields = {
      {"steps", steps_done},
      {"global_batch", plan_.global_batch},
      {"stopped_early", stopped_early},
      {"train_wall_time_s", train_seconds_},
      {"wall_time_s", SecondsSince(run_start_)},
      {"train_samples_per_s", steps_done * plan_.global_batch / std::max(train_seconds_, 1e-9)},
      {"sharding_stage", options_.train.sharding_stage},
      {"autocast_dtype", c10::toString(autocast_type_)},
      {"memory", std::move(memory)},
  };
  if (evaluated_) {
    fields["final"] = {{"eval_loss", last_eval_.loss}, {"eval_top1", last_eval_.top1}};
    fields["best"] = {{"step", best_step_}, {"eval_top1", best_top1_}};
  }
  if (scaler_) fields["loss_scale"] = scaler_->scale();
  if (!std::isnan(options_.train.origin_metric)) {
    fields["origin_metric"] = options_.train.origin_metric;
  }
  ExportModelAndReport(setup_, std::move(fields));
}

}  // namespace

TrainingPlan PlanTraining(const config::Config& config, int64_t train_size, int world_size) {
  TrainingPlan plan;
  const int64_t accumulate = config.train.accumulate_steps;
  data::DistributedSampler sampler(data::SamplerOptions{train_size, 0, world_size,
                                                        config.global.batch_size, true,
                                                        config.global.drop_last, 0});
  plan.batches_per_epoch = sampler.BatchesPerEpoch();
  plan.global_batch = config.global.batch_size * world_size * accumulate;
  if (plan.batches_per_epoch < accumulate) {
    throw ConfigError(config.file + ": Global.batch_size " +
                      std::to_string(config.global.batch_size) + " x " +
                      std::to_string(world_size) + " ranks x accumulate_steps " +
                      std::to_string(accumulate) + " needs more than the " +
                      std::to_string(train_size) +
                      " training samples; lower the batch size or use fewer ranks");
  }
  plan.total_steps = config.train.train_iter > 0
                         ? config.train.train_iter
                         : config.train.epochs * plan.batches_per_epoch / accumulate;
  return plan;
}

TrainingOutcome Train(TrainingSetup setup) { return TrainingRun(std::move(setup)).Run(); }

}  // namespace slim::engine
