// Where a search keeps its files, under the output directory: hpo/trials.jsonl (the trial
// log), hpo/search.json (the sampler, seed, objective and criterion the log was made
// under), hpo/best.json (which trial's export is in the output directory), hpo/summary.md,
// hpo/objective.png and hpo/pareto.png, and hpo/trial_<k>/ for a trial whose model is
// being exported or is the one in the output directory (its report.json is reused).
#pragma once

#include <cstdint>
#include <string>

namespace slim::search {

struct SearchPaths {
  std::string output_dir;
  std::string Dir() const { return output_dir + "/hpo"; }
  std::string TrialLog() const { return Dir() + "/trials.jsonl"; }
  std::string Best() const { return Dir() + "/best.json"; }
  std::string Settings() const { return Dir() + "/search.json"; }
  std::string Summary() const { return Dir() + "/summary.md"; }
  std::string ObjectivePlot() const { return Dir() + "/objective.png"; }
  std::string ParetoPlot() const { return Dir() + "/pareto.png"; }
  std::string TrialDir(int64_t trial) const { return Dir() + "/trial_" + std::to_string(trial); }
  std::string Report() const { return output_dir + "/report.json"; }
};

}  // namespace slim::search
