#include "search/search_report.h"

#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "runtime/base/output_file.h"
#include "runtime/base/scatter_plot.h"

namespace slim::search {

namespace {

std::string SelectionRule(const hpo::HpoOptions& options) {
  return options.has_accuracy_criterion
             ? "among the trials within accuracy_criterion, the smallest model, then the "
               "smallest objective (when none passes: the smallest objective)"
             : "the smallest objective";
}

std::string CriterionText(const hpo::HpoOptions& options) {
  if (!options.has_accuracy_criterion) return "none";
  return fmt::format("{} top-1 drop <= {}", options.relative_criterion ? "relative" : "absolute",
                     options.allowed_drop);
}

std::string ParamText(const nlohmann::json& value) {
  if (value.is_string()) return value.get<std::string>();
  return value.is_number_float() ? fmt::format("{:.6g}", value.get<double>()) : value.dump();
}

std::string SummaryMarkdown(const SearchSummary& summary) {
  const auto chosen = ChosenTrial(summary.records, summary.options.has_accuracy_criterion);
  std::ostringstream out;
  out << "# Post-training quantization search\n\n"
      << "- sampler: " << summary.options.sampler << ", objective: " << summary.options.objective
      << ", trials: " << summary.records.size() << " of " << summary.options.max_quant_count
      << "\n- accuracy criterion: " << CriterionText(summary.options)
      << "\n- kept: " << SelectionRule(summary.options)
      << "\n- float model: top-1 " << summary.float_scores.value("top1", 0.0)
      << "\n- state: " << (summary.stopped_by.empty() ? "running" : "stopped by " + summary.stopped_by)
      << "\n- chosen: "
      << (chosen ? "trial " + std::to_string(summary.records[*chosen].trial) : std::string("none"))
      << "\n\n| trial | group |";
  const auto& first = summary.records.empty() ? nlohmann::json::object()
                                              : summary.records.front().params;
  for (const auto& [name, value] : first.items()) out << " " << name << " |";
  out << " objective | top-1 | drop | passed | seconds |\n|---|---|";
  for (size_t i = 0; i < first.size(); ++i) out << "---|";
  out << "---|---|---|---|---|\n";
  for (const auto& record : summary.records) {
    out << "| " << record.trial << " | " << record.group << " |";
    for (const auto& [name, value] : record.params.items()) out << " " << ParamText(value) << " |";
    out << " " << (record.failed ? "failed: " + record.failure : fmt::format("{:.6f}", record.objective))
        << fmt::format(" | {:.4f} | {:+.4f} | {} | {:.1f} |\n", record.top1, record.top1_drop,
                       record.passed ? "yes" : "no", record.seconds);
  }
  return out.str();
}

// The trials no other trial beats on both top-1 (higher) and model size (smaller).
std::vector<bool> ParetoFront(const std::vector<TrialRecord>& records) {
  std::vector<bool> front(records.size(), false);
  for (size_t i = 0; i < records.size(); ++i) {
    if (records[i].failed) continue;
    front[i] = true;
    for (const auto& other : records) {
      const bool no_worse = other.top1 >= records[i].top1 && other.state_bytes <= records[i].state_bytes;
      const bool better = other.top1 > records[i].top1 || other.state_bytes < records[i].state_bytes;
      if (!other.failed && no_worse && better) front[i] = false;
    }
  }
  return front;
}

void WritePlots(const SearchPaths& paths, const SearchSummary& summary) {
  plot::Panel objective{"trial", {}, false};
  plot::Panel sizes{"model size [KiB]", {}, false};
  const auto front = ParetoFront(summary.records);
  for (size_t i = 0; i < summary.records.size(); ++i) {
    const auto& record = summary.records[i];
    if (record.failed) continue;
    const auto label = "t" + std::to_string(record.trial);
    objective.points.push_back({label, static_cast<double>(record.trial), record.objective});
    sizes.points.push_back({front[i] ? label + " (front)" : label,
                            static_cast<double>(record.state_bytes) / 1024, record.top1});
  }
  plot::WriteScatterPanels(paths.ObjectivePlot(),
                           "PTQ search: " + summary.options.objective + " per trial",
                           summary.options.objective, {objective});
  plot::WriteScatterPanels(paths.ParetoPlot(), "PTQ search: top-1 against model size",
                           "eval top-1", {sizes});
}

}  // namespace

nlohmann::json SearchReportJson(const SearchSummary& summary) {
  nlohmann::json trials = nlohmann::json::array();
  for (const auto& record : summary.records) trials.push_back(RecordToJson(record));
  const auto chosen = ChosenTrial(summary.records, summary.options.has_accuracy_criterion);
  return {{"sampler", summary.options.sampler},
          {"objective", summary.options.objective},
          {"max_quant_count", summary.options.max_quant_count},
          {"trial_group_size", summary.options.trial_group_size},
          {"accuracy_criterion", CriterionText(summary.options)},
          {"selection", SelectionRule(summary.options)},
          {"float", summary.float_scores},
          {"trials", trials},
          {"chosen_trial", chosen ? nlohmann::json(summary.records[*chosen].trial) : nlohmann::json()},
          {"exported_trial", summary.promoted ? nlohmann::json(*summary.promoted) : nlohmann::json()},
          {"stopped_by", summary.stopped_by},
          {"search_wall_s", summary.wall_s},
          {"coordinator_busy_s", summary.coordinator_busy_s}};
}

void WriteSearchSummary(const SearchPaths& paths, const SearchSummary& summary, bool plots) {
  files::WriteAtomically(paths.Summary(), SummaryMarkdown(summary));
  if (plots) WritePlots(paths, summary);
  nlohmann::json report = nlohmann::json::object();
  if (summary.promoted) {
    std::ifstream in(paths.TrialDir(*summary.promoted) + "/report.json");
    if (in) report = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (report.is_discarded()) report = nlohmann::json::object();
  }
  report["hpo"] = SearchReportJson(summary);
  files::WriteAtomically(paths.Report(), report.dump(2) + "\n");
}

}  // namespace slim::search
