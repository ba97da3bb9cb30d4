#include "search/search_coordinator.h"

#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "runtime/base/errors.h"
#include "runtime/base/logging.h"
#include "runtime/base/output_file.h"
#include "search/search_report.h"

namespace slim::search {

namespace {

// Before the first trial has finished nothing says how long one takes: wait this long.
constexpr auto kFirstTrialDeadline = std::chrono::hours(24);
// Afterwards a group that has not reported for this many times the longest trial so far
// (plus the communication and output deadlines) is taken as lost.
constexpr double kTrialDeadlineFactor = 4;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  if (!in || !bytes) throw OutputError("cannot read " + path);
  return bytes.str();
}

// The trial whose model is in the output directory, unless its copy was under way.
std::optional<int64_t> ReadPromotedTrial(const std::string& path) {
  if (!std::filesystem::exists(path)) return std::nullopt;
  try {
    const auto best = nlohmann::json::parse(ReadFile(path));
    if (best.value("pending", false)) return std::nullopt;
    return best.at("trial").get<int64_t>();
  } catch (const std::exception&) {
    logging::Warning(path + " is not readable; the chosen trial's model is exported again");
    return std::nullopt;
  }
}

// The settings a trial log is only valid under.
nlohmann::json SearchSettings(const hpo::HpoOptions& options, uint64_t seed) {
  return {{"sampler", options.sampler},
          {"seed", seed},
          {"objective", options.objective},
          {"accuracy_criterion", options.has_accuracy_criterion
                                     ? nlohmann::json{{options.relative_criterion ? "relative"
                                                                                  : "absolute",
                                                       options.allowed_drop}}
                                     : nlohmann::json()}};
}

// Writes the settings next to a new log, or refuses a log written under others.
void CheckSettings(const SearchPaths& paths, const nlohmann::json& settings, bool has_trials) {
  if (!has_trials || !std::filesystem::exists(paths.Settings())) {
    files::WriteAtomically(paths.Settings(), settings.dump(2) + "\n");
    return;
  }
  const auto earlier = nlohmann::json::parse(ReadFile(paths.Settings()), nullptr, false);
  if (earlier != settings) {
    throw ConfigError(fmt::format(
        "{} was searched with {}, this config asks for {}; resume with the "
        "HyperParameterOptimization section it was run with, or start afresh with --resume none "
        "(the earlier search is moved aside)",
        paths.TrialLog(), earlier.dump(), settings.dump()));
  }
}

std::string JoinedTrials(const std::set<int64_t>& trials) {
  std::string text;
  for (const auto trial : trials) text += (text.empty() ? "" : ", ") + std::to_string(trial);
  return text.empty() ? "none" : text;
}

}  // namespace

SearchCoordinator::SearchCoordinator(const hpo::HpoOptions& options, SearchSpace space,
                                     uint64_t resolved_seed, SearchPaths paths, int groups,
                                     double wait_slack_s)
    : options_(options),
      space_(std::move(space)),
      sampler_(MakeSampler(options.sampler, space_, resolved_seed, options.max_quant_count)),
      paths_(std::move(paths)),
      groups_left_(groups),
      wait_slack_s_(wait_slack_s),
      start_(std::chrono::steady_clock::now()),
      records_(ReadTrialLog(paths_.TrialLog())),
      promoted_(ReadPromotedTrial(paths_.Best())) {
  for (const auto& record : records_) {
    try {
      PointFromJson(space_, record.params);
    } catch (const std::invalid_argument& error) {
      throw ConfigError(fmt::format(
          "{}: trial {} was run with settings outside this config's search space ({}); resume "
          "with the HyperParameterOptimization section it was run with, or start afresh with "
          "--resume none (the earlier search is moved aside)",
          paths_.TrialLog(), record.trial, error.what()));
    }
  }
  CheckSettings(paths_, SearchSettings(options_, resolved_seed), !records_.empty());
  if (!records_.empty()) {
    logging::Info(fmt::format("resuming the search of {}: {} trial(s) finished", paths_.TrialLog(),
                              records_.size()));
  }
}

std::chrono::milliseconds SearchCoordinator::ReportDeadline() const {
  double longest = 0;
  for (const auto& record : records_) longest = std::max(longest, record.seconds);
  if (longest == 0) return kFirstTrialDeadline;
  return std::chrono::milliseconds(
      static_cast<int64_t>((kTrialDeadlineFactor * longest + wait_slack_s_) * 1000));
}

void SearchCoordinator::Serve(comm::MessagePort& port) {
  while (groups_left_ > 0) {
    comm::Message message;
    try {
      message = port.Receive(kCoordinatorTag, ReportDeadline());
    } catch (const CommError&) {
      throw CommError(fmt::format("the search coordinator heard from no rank group for {} s "
                                  "while trial(s) {} ran; a rank stopped answering",
                                  ReportDeadline().count() / 1000.0, JoinedTrials(in_flight_)));
    }
    const auto received = std::chrono::steady_clock::now();
    const auto request = nlohmann::json::parse(message.text);
    const auto type = request.at("type").get<std::string>();
    nlohmann::json reply = nlohmann::json::object();
    if (type == "next") {
      float_scores_ = request.at("float");
      reply = NextTrial(request.at("group").get<int>());
    } else if (type == "result") {
      reply = TakeResult(request.at("record"));
    } else if (type == "exported") {
      Promote(request.at("trial").get<int64_t>());
    } else {
      throw CommError(fmt::format("the search coordinator got an unknown request '{}' from rank "
                                  "{}",
                                  type, message.source));
    }
    port.Send(message.source, kLeaderTag, reply.dump());
    busy_s_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - received).count();
  }
  WriteReports(/*final=*/true);
  const auto chosen = ChosenTrial(records_, options_.has_accuracy_criterion);
  logging::Info(fmt::format("search finished ({}): {} trial(s); chosen trial {}", stopped_by_,
                            records_.size(),
                            chosen ? std::to_string(records_[*chosen].trial) : "none"));
}

std::vector<Observation> SearchCoordinator::Observations() const {
  std::vector<Observation> observations;
  for (const auto& record : records_) {
    observations.push_back({record.trial, PointFromJson(space_, record.params), record.objective});
  }
  return observations;
}

std::string SearchCoordinator::StopReason() const {
  if (options_.time_budget_minutes > 0 && first_trial_start_) {
    const auto elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - *first_trial_start_);
    if (elapsed.count() >= options_.time_budget_minutes * 60) return "time_budget_minutes";
  }
  if (options_.stop_at_first_pass) {
    for (const auto& record : records_) {
      if (!record.failed && record.passed) return "stop_at_first_pass";
    }
  }
  if (space_exhausted_) return "every point of the grid was tried";
  return "";
}

nlohmann::json SearchCoordinator::NextTrial(int group) {
  const auto chosen = ChosenTrial(records_, options_.has_accuracy_criterion);
  if (chosen && records_[*chosen].trial != promoted_ && !exporting_.count(records_[*chosen].trial)) {
    const auto& record = records_[*chosen];
    exporting_.insert(record.trial);
    logging::Info(fmt::format("the chosen trial {} was not exported before the search stopped; "
                              "group {} runs it again to export it",
                              record.trial, group));
    return {{"type", "trial"}, {"trial", record.trial}, {"params", record.params},
            {"learnt_from", record.learnt_from}, {"replay", true}};
  }
  std::optional<int64_t> free;
  std::set<int64_t> taken = in_flight_;
  for (const auto& record : records_) taken.insert(record.trial);
  for (int64_t k = 0; k < options_.max_quant_count && !free; ++k) {
    if (!taken.count(k)) free = k;
  }
  std::string reason = free ? StopReason() : "max_quant_count";
  std::optional<Point> point;
  if (reason.empty()) {
    point = sampler_->Propose(*free, Observations());
    if (!point) {
      space_exhausted_ = true;
      reason = StopReason();
    }
  }
  if (!reason.empty()) {
    if (stopped_by_.empty()) stopped_by_ = reason;
    --groups_left_;
    return {{"type", "stop"}};
  }
  in_flight_.insert(*free);
  if (!first_trial_start_) first_trial_start_ = std::chrono::steady_clock::now();
  return {{"type", "trial"}, {"trial", *free}, {"params", PointToJson(space_, *point)},
          {"learnt_from", records_.size()}, {"replay", false}};
}

nlohmann::json SearchCoordinator::TakeResult(const nlohmann::json& json) {
  const auto record = RecordFromJson(json);
  in_flight_.erase(record.trial);
  records_.push_back(record);
  WriteTrialLog(paths_.TrialLog(), records_);
  WriteReports(/*final=*/false);
  logging::Info(fmt::format(
      "trial {} (group {}, {:.1f} s) {}: {}", record.trial, record.group, record.seconds,
      record.params.dump(),
      record.failed ? "failed: " + record.failure
                    : fmt::format("objective {:.6f}, top1 {:.4f} (drop {:+.4f}){}",
                                  record.objective, record.top1, record.top1_drop,
                                  record.passed ? "" : ", outside accuracy_criterion")));
  const auto chosen = ChosenTrial(records_, options_.has_accuracy_criterion);
  const bool export_it = chosen && records_[*chosen].trial == record.trial;
  if (export_it) exporting_.insert(record.trial);
  return {{"export", export_it}};
}

void SearchCoordinator::Promote(int64_t trial) {
  namespace fs = std::filesystem;
  const auto chosen = ChosenTrial(records_, options_.has_accuracy_criterion);
  std::error_code ignored;
  exporting_.erase(trial);
  if (!chosen || records_[*chosen].trial != trial) {
    fs::remove_all(paths_.TrialDir(trial), ignored);  // overtaken while it was exported
    return;
  }
  // Marked pending first: a crash half-way leaves a mix of two trials' files, which a
  // resumed search sees and exports again.
  files::WriteAtomically(paths_.Best(),
                         nlohmann::json{{"trial", trial}, {"pending", true}}.dump() + "\n");
  std::error_code error;
  fs::directory_iterator files(paths_.TrialDir(trial), error);
  if (error) {
    throw OutputError(fmt::format("rank 0 cannot read {} ({}), which a rank group exported; "
                                  "Global.output_dir must be a directory every rank shares",
                                  paths_.TrialDir(trial), error.message()));
  }
  for (const auto& entry : files) {
    const auto name = entry.path().filename().string();
    if (!entry.is_regular_file() || name.rfind("model", 0) != 0) continue;
    files::WriteAtomically(paths_.output_dir + "/" + name, ReadFile(entry.path().string()));
  }
  files::WriteAtomically(paths_.Best(), nlohmann::json{{"trial", trial}}.dump() + "\n");
  if (promoted_ && *promoted_ != trial) fs::remove_all(paths_.TrialDir(*promoted_), ignored);
  promoted_ = trial;
  logging::Info(fmt::format("trial {} is the best so far; its model is in {}", trial,
                            paths_.output_dir));
  WriteReports(/*final=*/false);
}

void SearchCoordinator::WriteReports(bool final) {
  const auto now = std::chrono::steady_clock::now();
  const bool plots = final || !last_plots_ || now - *last_plots_ >= kPlotInterval;
  if (plots) last_plots_ = now;
  SearchSummary summary{options_, records_, float_scores_, promoted_, stopped_by_,
                        std::chrono::duration<double>(now - start_).count(), busy_s_};
  WriteSearchSummary(paths_, summary, plots);
}

}  // namespace slim::search
