// The coordinator of a search: on rank 0, on a thread of its own, it hands out trials to
// the leaders of the rank groups as they become free, learns from their results, keeps
// the trial log, and promotes the chosen trial's exported model to the output directory.
//
// Protocol (JSON texts over a MessagePort; every request gets one reply):
//   leader -> {"type": "next", "group": g, "float": {top1, loss}}
//          <- {"type": "trial", "trial": k, "params": {...}, "learnt_from": n, "replay": b}
//             or {"type": "stop"}
//   leader -> {"type": "result", "record": {...}}  <- {"export": b}
//   leader -> {"type": "exported", "trial": k}     <- {}
// A replay re-runs the chosen trial when its export is neither in the output directory nor
// under way (a search resumed after a crash between logging a trial and exporting it); it
// is not logged again.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "runtime/comm/message_port.h"
#include "search/sampler.h"
#include "search/search_paths.h"
#include "search/trial_log.h"
#include "strategies/hpo/hpo_options.h"

namespace slim::search {

// Message tags: requests to the coordinator, replies to a leader.
constexpr int kCoordinatorTag = 1;
constexpr int kLeaderTag = 2;

class SearchCoordinator {
 public:
  // Reads the trial log of `paths` (a resumed search continues it). `groups`: how many
  // leaders will ask for trials. `resolved_seed`: the sampler's seed. `wait_slack_s`: the
  // communication and output deadlines, added to how long a trial may go unreported.
  // Throws DataError for a damaged log and ConfigError for a log of trials outside `space`
  // or searched with another sampler, seed, objective or accuracy_criterion.
  SearchCoordinator(const hpo::HpoOptions& options, SearchSpace space, uint64_t resolved_seed,
                    SearchPaths paths, int groups, double wait_slack_s);

  // Serves the leaders until each was told to stop, then writes the final report. Not
  // thread-safe: one thread serves. Throws SlimError subclasses: a log or output that
  // cannot be written, or CommError when no group reported within ReportDeadline().
  void Serve(comm::MessagePort& port);

 private:
  nlohmann::json NextTrial(int group);
  nlohmann::json TakeResult(const nlohmann::json& record);
  void Promote(int64_t trial);
  // Why no further trial is handed out, or "" while trials remain.
  std::string StopReason() const;
  static constexpr std::chrono::seconds kPlotInterval{10};
  // The summary and report.json; the plots at the end and at most every kPlotInterval,
  // so that drawing never holds up many groups' short trials.
  void WriteReports(bool final);
  std::vector<Observation> Observations() const;
  // How long to wait for the next request: a day before any trial finished, then
  // kTrialDeadlineFactor times the longest trial plus wait_slack_s.
  std::chrono::milliseconds ReportDeadline() const;

  hpo::HpoOptions options_;
  SearchSpace space_;
  std::unique_ptr<Sampler> sampler_;
  SearchPaths paths_;
  int groups_left_;
  double wait_slack_s_;
  std::chrono::steady_clock::time_point start_;
  // When this run handed out its first trial: time_budget_minutes counts from here, so
  // every run starts at least one trial.
  std::optional<std::chrono::steady_clock::time_point> first_trial_start_;
  std::vector<TrialRecord> records_;
  std::set<int64_t> in_flight_;
  std::optional<int64_t> promoted_;  // the trial whose export is in the output directory
  std::set<int64_t> exporting_;  // trials told to export that have not reported back
  bool space_exhausted_ = false;
  std::string stopped_by_;
  nlohmann::json float_scores_;
  std::optional<std::chrono::steady_clock::time_point> last_plots_;
  double busy_s_ = 0;  // time spent answering requests
};

}  // namespace slim::search
