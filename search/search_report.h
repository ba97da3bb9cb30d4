// What a search writes for people and tools: hpo/summary.md (every trial's parameters,
// objective, top-1 and time, and the chosen trial), hpo/objective.png (the objective
// against the trial number), hpo/pareto.png (top-1 against model size, the Pareto front
// marked) and report.json (the chosen trial's export report with an "hpo" section).
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

#include "search/search_paths.h"
#include "search/trial_log.h"
#include "strategies/hpo/hpo_options.h"

namespace slim::search {

struct SearchSummary {
  const hpo::HpoOptions& options;
  const std::vector<TrialRecord>& records;
  nlohmann::json float_scores;      // {top1, loss} of the float model
  std::optional<int64_t> promoted;  // the trial whose model is in the output directory
  std::string stopped_by;           // "" while the search runs
  double wall_s = 0;                // this run's search time so far
  double coordinator_busy_s = 0;    // of it, the coordinator's time answering the groups
};

// The "hpo" section of report.json.
nlohmann::json SearchReportJson(const SearchSummary& summary);

// Writes summary.md, report.json and, with `plots`, both plots, each atomically. Throws
// OutputError.
void WriteSearchSummary(const SearchPaths& paths, const SearchSummary& summary, bool plots);

}  // namespace slim::search
