#include "launcher/run_job.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <filesystem>
#include <iostream>
#include <thread>

#include "data/batch_transform.h"
#include "data/hdf5_dataset.h"
#include "export/model_exports.h"
#include "launcher/resume_selection.h"
#include "runtime/base/errors.h"
#include "runtime/base/logging.h"
#include "runtime/base/output_file.h"
#include "runtime/base/text.h"
#include "runtime/checkpoint/state_capture.h"
#include "runtime/comm/training_world.h"
#include "runtime/engine/activation_recompute.h"
#include "runtime/engine/calibration_run.h"
#include "runtime/engine/evaluator.h"
#include "runtime/engine/mixed_precision.h"
#include "runtime/engine/trainer.h"
#include "runtime/models/model_loader.h"
#include "search/quant_search.h"
#include "strategies/prune/channel_sensitivity.h"
#include "strategies/quant/sensitivity_run.h"
#include "strategies/registry.h"

namespace slim::launcher {

namespace {

// The model's per-sample input shape: Global.input_shape if set (it must match the
// data), else the data's.
std::vector<int64_t> InputShape(const config::Config& config, const data::DatasetInfo& data) {
  const auto& wanted = config.global.input_shape;
  if (!wanted.empty() && wanted != data.sample_shape) {
    throw ConfigError(config.file + ": Global.input_shape " + ShapeText(wanted) +
                      " does not match the samples of " + data.path + ", which are " +
                      ShapeText(data.sample_shape) + "; fix input_shape or remove it");
  }
  return data.sample_shape;
}

void CheckSameClasses(const data::DatasetInfo& train, const data::DatasetInfo& eval) {
  if (train.class_names != eval.class_names || train.sample_shape != eval.sample_shape) {
    throw DataError(eval.path + " does not match " + train.path +
                    ": the eval set must have the same class_names and sample shape as the "
                    "training set");
  }
}

void SetIntraOpThreads(const config::GlobalOptions& global, int local_size) {
  int64_t threads = global.intra_op_threads;
  if (threads == 0) {
    const auto cores = static_cast<int64_t>(std::max(1u, std::thread::hardware_concurrency()));
    threads = std::max<int64_t>(1, cores / local_size);
  }
  torch::set_num_threads(static_cast<int>(threads));
}

std::string StrategyList(const strategies::Compressor& compressor) {
  if (compressor.Empty()) return "none (plain training)";
  return JoinedList(compressor.Names()) + (compressor.Trains() ? "" : " (calibration, no training)");
}

// The plan's line for a search, or "".
std::string SearchPlan(const config::Config& config, int world_size) {
  if (!config.HasStrategy("HyperParameterOptimization")) return "";
  const auto& options = config.StrategyOptionsOf<hpo::HpoOptions>("HyperParameterOptimization");
  std::string dimensions;
  for (const auto& dimension : search::QuantSearchSpace(options)) {
    dimensions += (dimensions.empty() ? "" : ", ") + dimension.name;
  }
  return fmt::format("search: {} sampler over {}; {} trials in {} group(s) of {} rank(s), "
                     "objective {}\n",
                     options.sampler, dimensions, options.max_quant_count,
                     world_size / options.trial_group_size, options.trial_group_size,
                     options.objective);
}

void PrintPlan(const config::Config& config, const comm::ProcessPlacement& placement,
               const engine::TrainingSetup& setup) {
  const auto& train = setup.train_data->info();
  const auto* eval = setup.eval_data.get();
  const auto& device = setup.device;
  const auto& model = setup.model;
  const auto plan = engine::PlanTraining(config, train.size, placement.world_size);
  std::cout << "# resolved configuration\n" << config.resolved_yaml << "\n# plan\n"
            << "model: " << config.global.model << " (" << models::ParameterCount(model)
            << " parameters)\n"
            << "strategies: " << StrategyList(*setup.compressor) << "\n"
            << "ranks: " << placement.world_size << " (rank 0 on " << device.str() << ")\n"
            << "train data: " << train.path << " (" << train.size << " samples, "
            << train.class_names.size() << " classes, sample shape "
            << ShapeText(train.sample_shape) << ")\n"
            << "eval data: " << (eval ? eval->info().path : std::string("none")) << "\n"
            << SearchPlan(config, placement.world_size)
            << "steps: " << plan.total_steps << " of " << plan.global_batch
            << " samples (" << plan.batches_per_epoch << " batches per epoch per rank)\n"
            << "resume: "
            << (setup.resume ? setup.resume_path + " (step " +
                                   std::to_string(setup.resume->progress.step) + ")"
                             : std::string("none, starting from step 0"))
            << "\n";
}

// Loads the checkpoint's model state into `model` (all of it, or only the matching
// weights with --resume-weights-only) and, for a full resume, hands it to the trainer.
void ApplyCheckpoint(checkpoint::LoadedCheckpoint& loaded, const CommandLine& command, int rank,
                     torch::jit::Module& model, engine::TrainingSetup& setup) {
  if (rank == 0) {
    for (const auto& reason : loaded.skipped) logging::Warning("skipped " + reason);
  }
  if (command.resume_weights_only) {
    const auto skipped = checkpoint::RestoreMatchingWeights(loaded.state, model);
    logging::Info("--resume-weights-only: loaded the weights of " + loaded.path + " (" +
                  std::to_string(skipped.size()) + " tensor(s) did not match and keep their "
                  "initial values); training starts at step 0");
    if (rank == 0) {
      for (const auto& name : skipped) logging::Warning("not loaded from the checkpoint: " + name);
    }
    return;
  }
  // Strategy state first: it may bring the model to the checkpoint's structure.
  setup.compressor->LoadState(loaded.state.strategy_state, model);
  CheckResumable(loaded, model, *setup.config, setup.compressor->Names());
  checkpoint::RestoreModel(loaded.state, model);
  setup.resume_path = loaded.path;
  setup.resume = std::make_shared<const checkpoint::CheckpointState>(std::move(loaded.state));
}

void PrepareOutputDir(const config::Config& config) {
  const std::filesystem::path dir = config.global.output_dir;
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  if (error) {
    throw OutputError(fmt::format("cannot create the output directory '{}' (Global.output_dir / "
                                  "--output-dir): {}; check the path and permissions",
                                  dir.string(), error.message()));
  }
  files::WriteAtomically((dir / "config.resolved.yaml").string(), config.resolved_yaml);
}

// --analyze quant: calibrates the QuantPost quantizers, then measures each layer's cost.
void AnalyzeQuantization(const engine::TrainingSetup& setup) {
  auto& comm = *setup.comm;
  const auto batches = engine::StrategyCalibrationBatches(setup);
  torch::jit::Module model = setup.model;
  setup.compressor->Calibrate(model, batches);
  engine::Evaluator evaluator(setup.eval_data, comm, setup.device, setup.config->global);
  quant::AnalyzeQuantSensitivity(
      model, [&](torch::jit::Module& evaluated) { return evaluator.Evaluate(evaluated); }, comm,
      setup.config->global.output_dir);
}

// --analyze prune: prunes each selected weight, or each ChannelPrune group of the model as
// loaded, alone to a few ratios.
void AnalyzePruning(const PreparedJob& job) {
  const auto& setup = job.setup;
  engine::Evaluator evaluator(setup.eval_data, *setup.comm, setup.device, setup.config->global);
  if (job.prune_analysis.channels) {
    torch::jit::Module model = setup.input_model->clone();
    model.to(setup.device);
    prune::RunChannelSensitivity(
        model, *job.prune_analysis.channels, *setup.config, job.example,
        [&] { return evaluator.Evaluate(model); }, *setup.comm);
    return;
  }
  torch::jit::Module model = setup.model;
  prune::RunPruneSensitivity(
      model, *setup.config, [&] { return evaluator.Evaluate(model); }, *setup.comm);
}

// JobContext::labelled_batches over `data`: batch b of rank r holds the samples from
// (b x ranks + r) x batch_size on, wrapping around the data's end.
std::function<std::vector<strategies::LabelledBatch>(int64_t)> LabelledBatches(
    std::shared_ptr<const data::Hdf5Dataset> data, int64_t batch_size,
    const comm::ProcessPlacement& placement) {
  return [data, batch_size, placement](int64_t count) {
    const data::BatchTransform transform(data->info(), data::AugmentSettings{});
    std::vector<strategies::LabelledBatch> batches;
    for (int64_t batch = 0; batch < count; ++batch) {
      const int64_t first = (batch * placement.world_size + placement.rank) * batch_size;
      std::vector<int64_t> indices;
      for (int64_t i = 0; i < batch_size; ++i) indices.push_back((first + i) % data->info().size);
      batches.push_back({transform.Apply(data->ReadInputs(indices), indices, 0),
                         data->Labels(indices)});
    }
    return batches;
  };
}

}  // namespace

std::unique_ptr<PreparedJob> PrepareJob(const CommandLine& command,
                                        const comm::MpiSession& session,
                                        const comm::ProcessPlacement& placement) {
  auto job = std::make_unique<PreparedJob>();
  auto overrides = command.overrides;
  if (!command.output_dir.empty()) overrides.push_back("Global.output_dir=" + command.output_dir);
  job->config = strategies::LoadJobConfig(command.config_file, overrides);
  if (command.analyze == "quant") quant::UseQuantPostForAnalysis(job->config);
  if (command.analyze == "prune") job->prune_analysis = prune::UsePruningForAnalysis(job->config);
  const config::Config& config = job->config;
  SetIntraOpThreads(config.global, placement.local_size);
  auto host = session.World(
      std::chrono::milliseconds(static_cast<int64_t>(config.global.comm_timeout_s * 1000)));
  const auto facts = comm::LocalDeviceFacts(placement.local_size);
  const torch::Device device =
      comm::ChooseDevice(config.global.device, placement.local_rank, facts.cuda_devices,
                         comm::AgreedBlocker(comm::BlockerOf(facts), *host));
  job->comm = comm::OpenWorld(std::move(host), device);
  engine::AutocastType(config.train.amp, device, config.file);  // refuses float16 on a CPU

  auto train_data = std::make_shared<const data::Hdf5Dataset>(config.global.train_data);
  std::shared_ptr<const data::Hdf5Dataset> eval_data;
  if (!config.global.eval_data.empty()) {
    eval_data = std::make_shared<const data::Hdf5Dataset>(config.global.eval_data);
    CheckSameClasses(train_data->info(), eval_data->info());
  }
  const auto& info = train_data->info();
  job->setup.config = &job->config;
  const models::ModelShape shape{InputShape(config, info),
                                 static_cast<int64_t>(info.class_names.size())};
  engine::PlanTraining(config, info.size, placement.world_size);  // throws if data too small
  if (config.HasStrategy("HyperParameterOptimization")) {
    search::CheckSearchLayout(config, placement.world_size);
  }

  torch::manual_seed(static_cast<uint64_t>(config.global.seed));
  auto model = models::LoadModel(config.global.model, shape, "Global.model");
  // clone(), not deepcopy(): a copy of its own types, which the strategies extend below.
  job->setup.input_model = model.clone();
  const std::vector<int64_t> first = {0};
  const auto example = data::BatchTransform(info, data::AugmentSettings{})
                          .Apply(train_data->ReadInputs(first), first, 0);
  job->example = example;
  job->context = {config.global.model, shape, example,
                  LabelledBatches(train_data, config.global.batch_size, placement)};
  job->compressor = std::make_unique<strategies::Compressor>(
      config, strategies::StrategyEnvironment{job->comm.get(), job->context});
  job->setup.compressor = job->compressor.get();
  // Graph passes first: a method that ran once keeps its compiled plan.
  job->compressor->Prepare(model);
  models::CheckModelOutput(model, config.global.model, example, shape.num_classes);
  if (!config.train.recompute_modules.empty()) {  // refuses unknown modules before any data
    engine::ActivationRecompute(model, config.train.recompute_modules,
                                job->compressor->TappedModules(), config.file);
  }
  exporting::CheckExportable(job->compressor->Finalized(model), config.global.export_formats,
                             example,
                             config.HasStrategy("QuantAware") || config.HasStrategy("QuantPost"),
                             exporting::ModelOutputFor(config.global.export_quantized_output));
  // An analysis starts from the configured model, never from a checkpoint.
  auto resume = command.analyze.empty() ? FindResumeCheckpoint(command, config) : std::nullopt;
  if (resume) ApplyCheckpoint(*resume, command, placement.rank, model, job->setup);
  model.to(device);

  engine::TrainingSetup& setup = job->setup;
  setup.comm = job->comm.get();
  setup.device = device;
  setup.model = model;
  setup.model_reference = config.global.model;
  setup.train_data = train_data;
  setup.eval_data = eval_data;
  return job;
}

int RunJob(const CommandLine& command, const comm::ProcessPlacement& placement,
           PreparedJob& job) {
  const auto& setup = job.setup;
  if (command.dry_run) {
    if (placement.rank == 0) PrintPlan(job.config, placement, setup);
    return 0;
  }
  if (command.analyze == "quant") {
    AnalyzeQuantization(setup);
    return 0;
  }
  if (command.analyze == "prune") {
    AnalyzePruning(job);
    return 0;
  }
  if (job.config.HasStrategy("HyperParameterOptimization")) {
    if (placement.rank == 0) PrepareOutputDir(job.config);
    search::RunQuantSearch(setup, job.context, command.resume == "none");
    return 0;
  }
  const std::string checkpoints = checkpoint::CheckpointDirectory(job.config.global.output_dir);
  if (command.resume == "none") {
    logging::Info("--resume none: starting from scratch");
    const std::string moved = placement.rank == 0 ? checkpoint::MoveAsideCheckpoints(checkpoints) : "";
    if (!moved.empty()) logging::Info("the previous checkpoints were moved to " + moved);
  } else if (!setup.resume && !command.resume_weights_only) {
    logging::Info("no checkpoint in " + checkpoints + ": starting from scratch");
  }
  const int64_t first_step = setup.resume ? setup.resume->progress.step : 0;
  const std::string moved =
      placement.rank == 0 ? checkpoint::MoveAsideLaterCheckpoints(checkpoints, first_step) : "";
  if (!moved.empty()) {
    logging::Warning(fmt::format("checkpoints after step {} belong to another run; moved to {}",
                                 first_step, moved));
  }
  if (placement.rank == 0) PrepareOutputDir(job.config);
  if (!setup.compressor->Trains()) {
    engine::CalibrateAndExport(setup);
    return 0;
  }
  const auto outcome = engine::Train(setup);
  return outcome == engine::TrainingOutcome::kStopped
             ? static_cast<int>(ExitCode::kStoppedForRequeue)
             : 0;
}

}  // namespace slim::launcher
