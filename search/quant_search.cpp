#include "search/quant_search.h"

#include <fmt/format.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "runtime/base/errors.h"
#include "runtime/base/fault_injection.h"
#include "runtime/base/logging.h"
#include "runtime/comm/mpi_session.h"
#include "runtime/engine/calibration_run.h"
#include "runtime/engine/run_report.h"
#include "runtime/models/model_loader.h"
#include "search/output_comparison.h"
#include "search/search_coordinator.h"
#include "strategies/compressor.h"
#include "strategies/quant/quant_options.h"

namespace slim::search {

namespace {

using Clock = std::chrono::steady_clock;

const hpo::HpoOptions& SearchOptions(const config::Config& config) {
  return config.StrategyOptionsOf<hpo::HpoOptions>("HyperParameterOptimization");
}

// `text` of the group's rank 0 on every rank of the group, waiting up to `timeout`.
std::string BroadcastText(comm::Communicator& group, const std::string& text,
                          std::chrono::milliseconds timeout) {
  auto length = torch::tensor({static_cast<int64_t>(text.size())}, torch::kInt64);
  group.Broadcast(length, 0)->Wait(timeout);
  auto bytes = torch::zeros({length.item<int64_t>()}, torch::kUInt8);
  if (group.Rank() == 0) std::memcpy(bytes.data_ptr(), text.data(), text.size());
  group.Broadcast(bytes, 0)->Wait(timeout);
  return {reinterpret_cast<const char*>(bytes.data_ptr()), static_cast<size_t>(bytes.numel())};
}

// How long a group waits for its leader between trials: the leader may be exporting a
// model (every format, evaluated and timed) and waiting for the coordinator, which may be
// copying one: the communication deadline plus the output deadline.
std::chrono::milliseconds BetweenTrialsTimeout(const engine::TrainingSetup& setup) {
  return setup.comm->DefaultTimeout() +
         std::chrono::milliseconds(static_cast<int64_t>(setup.config->global.io_timeout_s * 1000));
}

// One request to the coordinator and its reply.
nlohmann::json Ask(comm::MessagePort& port, const nlohmann::json& request,
                   std::chrono::milliseconds timeout) {
  port.Send(0, kCoordinatorTag, request.dump());
  return nlohmann::json::parse(port.Receive(kLeaderTag, timeout).text);
}

// The QuantPost options of one trial: the config's, with the searched keys set.
std::shared_ptr<quant::QuantPostOptions> TrialOptions(const config::Config& config,
                                                      const nlohmann::json& params) {
  auto options = std::make_shared<quant::QuantPostOptions>(
      config.StrategyOptionsOf<quant::QuantPostOptions>("QuantPost"));
  options->ptq_algo = params.at("ptq_algo").get<std::string>();
  options->bias_correct = params.at("bias_correct").get<std::string>() == "true";
  options->weight_quantize_type = params.at("weight_quantize_type").get<std::string>();
  options->hist_percent = params.at("hist_percent").get<double>();
  options->batch_num = params.at("batch_num").get<int64_t>();
  return options;
}

// A quantized model of one trial, ready to score and export.
struct TrialModel {
  config::Config config;  // the job's, with the trial's QuantPost options and output dir
  std::unique_ptr<strategies::Compressor> compressor;
  torch::jit::Module model;
};

class GroupWorker {
 public:
  GroupWorker(const engine::TrainingSetup& setup, const strategies::JobContext& context,
              comm::Communicator& group, int group_index)
      : setup_(setup),
        context_(context),
        group_(group),
        group_index_(group_index),
        comparison_(setup.eval_data, setup.config->global.eval_batch_size, group, setup.device,
                    FloatModel(setup)),
        faults_(setup.comm->Rank()) {}

  // The group's loop; the leader (group rank 0) talks to the coordinator over `port`.
  void Run(comm::MessagePort* port) {
    const auto timeout = BetweenTrialsTimeout(setup_);
    const nlohmann::json float_scores = {{"top1", comparison_.Float().top1},
                                         {"loss", comparison_.Float().loss}};
    while (true) {
      nlohmann::json next;
      if (port) next = Ask(*port, {{"type", "next"}, {"group", group_index_}, {"float", float_scores}}, timeout);
      next = nlohmann::json::parse(BroadcastText(group_, next.dump(), timeout));
      if (next.at("type") == "stop") return;
      const int64_t trial = next.at("trial").get<int64_t>();
      faults_.AtStep(trial + 1);
      const auto start = Clock::now();
      auto quantized = Quantize(trial, next.at("params"));
      const auto scores = comparison_.Score(quantized.model);
      if (!port) continue;
      auto record = Record(next, scores, quantized, Clock::now() - start);
      const bool replay = next.at("replay").get<bool>();
      if (!replay && !Ask(*port, {{"type", "result"}, {"record", RecordToJson(record)}}, timeout)
                          .at("export")
                          .get<bool>()) {
        continue;
      }
      Export(quantized, record);
      Ask(*port, {{"type", "exported"}, {"trial", trial}}, timeout);
    }
  }

 private:
  static torch::jit::Module FloatModel(const engine::TrainingSetup& setup) {
    auto model = setup.input_model->clone();
    model.to(setup.device);
    return model;
  }

  TrialModel Quantize(int64_t trial, const nlohmann::json& params) {
    TrialModel quantized{*setup_.config, nullptr, setup_.input_model->clone()};
    quantized.config.strategies["QuantPost"] = TrialOptions(*setup_.config, params);
    quantized.config.global.output_dir =
        SearchPaths{setup_.config->global.output_dir}.TrialDir(trial);
    quantized.compressor = std::make_unique<strategies::Compressor>(
        quantized.config, strategies::StrategyEnvironment{&group_, context_});
    quantized.compressor->Prepare(quantized.model);
    quantized.model.to(setup_.device);
    const auto needs = quantized.compressor->CalibrationData();
    const auto batches = engine::CalibrationBatches(
        *setup_.train_data, needs.batch_num, needs.batch_size,
        static_cast<uint64_t>(setup_.config->global.seed), group_.Rank(), group_.Size(),
        setup_.device, "HyperParameterOptimization.batch_num x QuantPost.batch_size");
    quantized.compressor->Calibrate(quantized.model, batches);
    return quantized;
  }

  TrialRecord Record(const nlohmann::json& next, const OutputScores& scores,
                     const TrialModel& quantized, Clock::duration elapsed) const {
    const auto& options = SearchOptions(*setup_.config);
    const auto& reference = comparison_.Float();
    TrialRecord record;
    record.trial = next.at("trial").get<int64_t>();
    record.params = next.at("params");
    record.learnt_from = next.at("learnt_from").get<int64_t>();
    record.group = group_index_;
    record.seconds = std::chrono::duration<double>(elapsed).count();
    record.failed = !scores.finite;
    if (record.failed) {
      record.failure = "the quantized model's outputs are not all finite";
      record.objective = std::numeric_limits<double>::infinity();
      record.passed = false;
      return record;
    }
    record.emd = scores.emd;
    record.top1 = scores.top1;
    record.top1_drop = reference.top1 - scores.top1;
    record.objective = options.objective == "emd" ? scores.emd : record.top1_drop;
    const double allowed =
        options.relative_criterion ? options.allowed_drop * reference.top1 : options.allowed_drop;
    record.passed = !options.has_accuracy_criterion || record.top1_drop <= allowed + 1e-12;
    record.state_bytes = models::StateBytes(quantized.compressor->Finalized(quantized.model));
    return record;
  }

  // Leader: writes the trial's model, its other formats and report.json to its trial
  // folder, measured like every run's exports.
  void Export(const TrialModel& quantized, const TrialRecord& record) const {
    std::filesystem::create_directories(quantized.config.global.output_dir);
    engine::TrainingSetup trial_setup = setup_;
    trial_setup.config = &quantized.config;
    trial_setup.model = quantized.model;
    trial_setup.compressor = quantized.compressor.get();
    engine::ExportModelAndReport(trial_setup, {{"trial", RecordToJson(record)}});
  }

  const engine::TrainingSetup& setup_;
  const strategies::JobContext& context_;
  comm::Communicator& group_;
  int group_index_;
  OutputComparison comparison_;
  FaultInjector faults_;
};

// Moves an earlier search's folder aside (--resume none), never deleting it.
void MoveAsideEarlierSearch(const SearchPaths& paths) {
  if (!std::filesystem::exists(paths.Dir())) return;
  const auto stamp = std::chrono::duration_cast<std::chrono::seconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
  const auto moved = fmt::format("{}.moved-{}", paths.Dir(), stamp);
  std::filesystem::rename(paths.Dir(), moved);
  logging::Info("--resume none: the earlier search was moved to " + moved);
}

// Logs the error in flight and ends the whole job with its exit code: on rank 0 the
// coordinator's thread must not outlive a failure of either thread.
[[noreturn]] void AbortSearch(const std::string& where) {
  try {
    throw;
  } catch (const SlimError& error) {
    logging::Error(error.what());
    comm::MpiSession::AbortJob(static_cast<int>(error.exit_code()));
  } catch (const c10::Error& error) {
    logging::Error(where + ": LibTorch: " + error.what_without_backtrace());
  } catch (const std::exception& error) {
    logging::Error(where + ": " + error.what());
  }
  comm::MpiSession::AbortJob(static_cast<int>(ExitCode::kDataOrModel));
}

// Runs `coordinator` on a thread of its own; a failure there ends the whole job.
std::thread StartCoordinator(SearchCoordinator& coordinator, comm::MessagePort& port) {
  return std::thread([&coordinator, &port] {
    try {
      coordinator.Serve(port);
    } catch (...) {
      AbortSearch("the search coordinator failed");
    }
  });
}

}  // namespace

SearchSpace QuantSearchSpace(const hpo::HpoOptions& options) {
  using Kind = Dimension::Kind;
  std::vector<std::string> bias_correct;
  for (const bool value : options.bias_correct) bias_correct.push_back(value ? "true" : "false");
  return {{"ptq_algo", Kind::kCategorical, options.ptq_algo, 0, 0, std::nullopt},
          {"bias_correct", Kind::kCategorical, bias_correct, 0, 0, std::nullopt},
          {"weight_quantize_type", Kind::kCategorical, options.weight_quantize_type, 0, 0,
           std::nullopt},
          {"hist_percent",
           Kind::kFloat,
           {},
           options.hist_percent_low,
           options.hist_percent_high,
           Condition{0, "hist"}},
          {"batch_num",
           Kind::kInteger,
           {},
           static_cast<double>(options.batch_num_low),
           static_cast<double>(options.batch_num_high),
           std::nullopt}};
}

void CheckSearchLayout(const config::Config& config, int world_size) {
  const auto& options = SearchOptions(config);
  if (world_size % options.trial_group_size != 0) {
    throw ConfigError(fmt::format(
        "{}: HyperParameterOptimization.trial_group_size: {} ranks do not split into groups of "
        "{}; choose a divisor of the number of ranks",
        config.file, world_size, options.trial_group_size));
  }
  if (config.global.eval_data.empty()) {
    throw ConfigError(config.file + ": HyperParameterOptimization scores each trial on "
                                    "Global.eval_data, which is not set; add it");
  }
}

void RunQuantSearch(const engine::TrainingSetup& setup, const strategies::JobContext& context,
                    bool fresh) {
  auto& world = *setup.comm;
  const auto& config = *setup.config;
  const auto& options = SearchOptions(config);
  const int group_size = static_cast<int>(options.trial_group_size);
  const int group_index = world.Rank() / group_size;
  const int groups = world.Size() / group_size;
  const SearchPaths paths{config.global.output_dir};
  if (world.Rank() == 0) {
    if (fresh) MoveAsideEarlierSearch(paths);
    std::filesystem::create_directories(paths.Dir());
  }
  auto group = world.Split(group_index, world.Rank());
  auto port = world.OpenMessagePort();
  logging::Info(fmt::format("search: {} sampler, objective {}, {} trial(s) in {} group(s) of {} "
                            "rank(s)",
                            options.sampler, options.objective, options.max_quant_count, groups,
                            group_size));
  std::unique_ptr<SearchCoordinator> coordinator;
  std::thread serving;
  if (world.Rank() == 0) {
    const auto seed = static_cast<uint64_t>(options.seed >= 0 ? options.seed : config.global.seed);
    const double slack_s = config.global.comm_timeout_s + config.global.io_timeout_s;
    coordinator = std::make_unique<SearchCoordinator>(options, QuantSearchSpace(options), seed,
                                                      paths, groups, slack_s);
    serving = StartCoordinator(*coordinator, *port);
  }
  try {
    GroupWorker worker(setup, context, *group, group_index);
    worker.Run(group->Rank() == 0 ? port.get() : nullptr);
  } catch (...) {
    if (!serving.joinable()) throw;
    AbortSearch("trial of group 0");
  }
  if (serving.joinable()) serving.join();
  const auto io_deadline = std::chrono::duration<double>(config.global.io_timeout_s);
  world.Barrier()->Wait(std::chrono::duration_cast<std::chrono::milliseconds>(io_deadline));
  logging::Info("done; outputs in " + config.global.output_dir);
}

}  // namespace slim::search
