#include "strategies/prune/sensitivity_report.h"

#include <fmt/format.h>

#include <filesystem>
#include <iostream>
#include <sstream>

#include "runtime/base/bar_chart.h"
#include "runtime/base/output_file.h"

namespace slim::prune {

namespace {

std::string MarkdownTable(const PruneSensitivityReport& report, const std::vector<double>& ratios,
                          const SensitivityText& text) {
  std::ostringstream out;
  out << fmt::format("dense top-1 {:.2f} %; {}; suggested: the largest ratio costing at most "
                     "{:.1f} point(s) of top-1\n\n",
                     100 * report.dense.top1, text.method, kToleratedDropPoints);
  out << "| " << text.unit << " |";
  for (double ratio : ratios) out << fmt::format(" top-1 at {:.0f} % |", 100 * ratio);
  out << " suggested ratio |\n| --- |";
  for (size_t i = 0; i <= ratios.size(); ++i) out << " --- |";
  out << "\n";
  for (const auto& weight : report.weights) {
    out << "| " << weight.weight << " |";
    for (const auto& result : weight.results) {
      out << fmt::format(" {:.2f} % |", 100 * result.metric.top1);
    }
    out << fmt::format(" {:.2f} |\n", weight.suggested_ratio);
  }
  return out.str();
}

nlohmann::json JsonReport(const PruneSensitivityReport& report, const std::string& unit) {
  nlohmann::json units = nlohmann::json::array();
  for (const auto& weight : report.weights) {
    nlohmann::json results = nlohmann::json::array();
    for (const auto& result : weight.results) {
      nlohmann::json entry = {{"ratio", result.ratio},
                              {"top1", result.metric.top1},
                              {"loss", result.metric.loss},
                              {"top1_drop_points", DropPoints(report.dense, result.metric)}};
      if (result.macs > 0) entry["macs"] = result.macs;
      if (result.latency_ms > 0) entry["latency_ms"] = result.latency_ms;
      results.push_back(entry);
    }
    units.push_back({{unit, weight.weight},
                     {"results", results},
                     {"suggested_ratio", weight.suggested_ratio}});
  }
  nlohmann::json dense = {{"top1", report.dense.top1}, {"loss", report.dense.loss}};
  if (report.dense_macs > 0) dense["macs"] = report.dense_macs;
  if (report.dense_latency_ms > 0) dense["latency_ms"] = report.dense_latency_ms;
  return {{"dense", dense}, {"tolerated_top1_drop_points", kToleratedDropPoints}, {unit + "s", units}};
}

}  // namespace

double DropPoints(const strategies::EvalMetrics& dense, const strategies::EvalMetrics& pruned) {
  return (dense.top1 - pruned.top1) * 100;
}

double SuggestedRatio(const std::vector<RatioResult>& results, const strategies::EvalMetrics& dense) {
  double suggested = 0;
  for (const auto& result : results) {
    if (DropPoints(dense, result.metric) > kToleratedDropPoints) break;
    suggested = result.ratio;
  }
  return suggested;
}

void WriteSensitivityOutputs(const PruneSensitivityReport& report, const std::vector<double>& ratios,
                             const SensitivityText& text, const std::string& extra_markdown,
                             const nlohmann::json& extra_json, const std::string& output_dir) {
  const std::filesystem::path dir = output_dir;
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  const auto table = MarkdownTable(report, ratios, text);
  files::WriteAtomically((dir / "prune_sensitivity.md").string(),
                         "# Pruning sensitivity\n\n" + table + extra_markdown);
  auto json = JsonReport(report, text.unit);
  json.update(extra_json);
  files::WriteAtomically((dir / "prune_sensitivity.json").string(), json.dump(2) + "\n");
  std::vector<plot::Bar> bars;
  for (const auto& weight : report.weights) bars.push_back({weight.weight, weight.suggested_ratio});
  plot::WriteBarChart((dir / "prune_sensitivity.png").string(), text.chart_title, bars);
  plot::WriteBarChart((dir / "prune_sensitivity.svg").string(), text.chart_title, bars);
  std::cout << "pruning sensitivity:\n" << table << extra_markdown << "written: "
            << (dir / "prune_sensitivity.md").string()
            << ", prune_sensitivity.json, prune_sensitivity.png, prune_sensitivity.svg\n";
}

}  // namespace slim::prune
