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

// As long as any trial may take: the leaders ask again when their trial is done.
constexpr auto kNoDeadline = std::chrono::hours(24 * 365);

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

std::optional<int64_t> ReadPromotedTrial(const std::string& path) {
  if (!std::filesystem::exists(path)) return std::nullopt;
  try {
    return nlohmann::json::parse(ReadFile(path)).at("trial").get<int64_t>();
  } catch (const nlohmann::json::exception&) {
    logging::Warning(path + " is not readable; the chosen trial's model is exported again");
    return std::nullopt;
  }
}

}  // namespace

SearchCoordinator::SearchCoordinator(const hpo::HpoOptions& options, SearchSpace space,
                                     uint64_t resolved_seed, SearchPaths paths, int groups)
    : options_(options),
      space_(std::move(space)),
      sampler_(MakeSampler(options.sampler, space_, resolved_seed, options.max_quant_count)),
      paths_(std::move(paths)),
      groups_left_(groups),
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
  if (!records_.empty()) {
    logging::Info(fmt::format("resuming the search of {}: {} trial(s) finished", paths_.TrialLog(),
                              records_.size()));
  }
}

void SearchCoordinator::Serve(comm::MessagePort& port) {
  while (groups_left_ > 0) {
    const auto message = port.Receive(kCoordinatorTag, kNoDeadline);
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
            {"known", record.known}, {"replay", true}};
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
  std::vector<int64_t> known;
  for (const auto& record : records_) known.push_back(record.trial);
  in_flight_.insert(*free);
  if (!first_trial_start_) first_trial_start_ = std::chrono::steady_clock::now();
  return {{"type", "trial"}, {"trial", *free}, {"params", PointToJson(space_, *point)},
          {"known", known}, {"replay", false}};
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
  for (const auto& entry : fs::directory_iterator(paths_.TrialDir(trial))) {
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
