#include "strategies/prune/prune_sensitivity.h"

#include <fmt/format.h>

#include <filesystem>
#include <iostream>
#include <sstream>

#include "runtime/base/bar_chart.h"
#include "runtime/base/errors.h"
#include "runtime/base/logging.h"
#include "runtime/base/output_file.h"
#include "strategies/prune/magnitude_masks.h"
#include "strategies/prune/unstructure_prune.h"

namespace slim::prune {

namespace {

constexpr const char* kSection = "UnstructurePrune";

double DropPoints(const strategies::EvalMetrics& dense, const strategies::EvalMetrics& pruned) {
  return (dense.top1 - pruned.top1) * 100;
}

std::string MarkdownTable(const PruneSensitivityReport& report) {
  std::ostringstream out;
  out << fmt::format("dense top-1 {:.2f} %; each weight pruned alone by magnitude; suggested: "
                     "the largest ratio costing at most {:.1f} point(s) of top-1\n\n",
                     100 * report.dense.top1, kToleratedDropPoints);
  out << "| weight |";
  for (double ratio : AnalysedRatios()) out << fmt::format(" top-1 at {:.0f} % |", 100 * ratio);
  out << " suggested ratio |\n| --- |";
  for (size_t i = 0; i <= AnalysedRatios().size(); ++i) out << " --- |";
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

nlohmann::json JsonReport(const PruneSensitivityReport& report) {
  nlohmann::json weights = nlohmann::json::array();
  for (const auto& weight : report.weights) {
    nlohmann::json results = nlohmann::json::array();
    for (const auto& result : weight.results) {
      results.push_back({{"ratio", result.ratio},
                         {"top1", result.metric.top1},
                         {"loss", result.metric.loss},
                         {"top1_drop_points", DropPoints(report.dense, result.metric)}});
    }
    weights.push_back({{"weight", weight.weight},
                       {"results", results},
                       {"suggested_ratio", weight.suggested_ratio}});
  }
  return {{"dense", {{"top1", report.dense.top1}, {"loss", report.dense.loss}}},
          {"tolerated_top1_drop_points", kToleratedDropPoints},
          {"weights", weights}};
}

void WriteOutputs(const PruneSensitivityReport& report, const std::string& output_dir) {
  const std::filesystem::path dir = output_dir;
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  const auto table = MarkdownTable(report);
  files::WriteAtomically((dir / "prune_sensitivity.md").string(),
                         "# Pruning sensitivity\n\n" + table);
  files::WriteAtomically((dir / "prune_sensitivity.json").string(),
                         JsonReport(report).dump(2) + "\n");
  std::vector<plot::Bar> bars;
  for (const auto& weight : report.weights) bars.push_back({weight.weight, weight.suggested_ratio});
  const std::string title = fmt::format(
      "suggested unstructured ratio (top-1 drop <= {:.1f} point)", kToleratedDropPoints);
  plot::WriteBarChart((dir / "prune_sensitivity.png").string(), title, bars);
  plot::WriteBarChart((dir / "prune_sensitivity.svg").string(), title, bars);
  std::cout << "pruning sensitivity, one weight pruned at a time:\n" << table << "written: "
            << (dir / "prune_sensitivity.md").string()
            << ", prune_sensitivity.json, prune_sensitivity.png, prune_sensitivity.svg\n";
}

}  // namespace

const std::vector<double>& AnalysedRatios() {
  static const std::vector<double> ratios = {0.3, 0.5, 0.7, 0.9};
  return ratios;
}

void UsePruningForAnalysis(config::Config& config) {
  if (config.global.eval_data.empty()) {
    throw ConfigError(config.file + ": --analyze prune measures accuracy on Global.eval_data; "
                      "set it");
  }
  std::shared_ptr<config::StrategyOptions> selection;
  if (config.HasStrategy(kSection)) {
    selection = config.strategies.at(kSection);
  } else {
    auto defaults = std::make_shared<UnstructurePruneOptions>();
    defaults->prune_params_type = "none";
    selection = defaults;
  }
  config.strategies.clear();
  config.strategies[kSection] = selection;
}

PruneSensitivityReport AnalyzePruneSensitivity(
    const std::vector<PrunableWeight>& weights, const std::vector<double>& ratios,
    const std::function<strategies::EvalMetrics()>& evaluate) {
  PruneSensitivityReport report;
  report.dense = evaluate();
  torch::NoGradGuard no_grad;
  for (const auto& weight : weights) {
    auto tensor = weight.Tensor();
    const auto dense = tensor.clone();
    WeightSensitivity sensitivity{weight.name, {}, 0};
    bool tolerated = true;  // so far, every ratio up to this one
    for (double ratio : ratios) {
      tensor.mul_(RatioMasks({dense}, ratio, /*local=*/true).front());
      sensitivity.results.push_back({ratio, evaluate()});
      tensor.copy_(dense);
      tolerated = tolerated && DropPoints(report.dense, sensitivity.results.back().metric) <=
                                   kToleratedDropPoints;
      if (tolerated) sensitivity.suggested_ratio = ratio;
    }
    logging::Info(fmt::format("{}: suggested ratio {:.2f}", weight.name,
                              sensitivity.suggested_ratio));
    report.weights.push_back(std::move(sensitivity));
  }
  return report;
}

void RunPruneSensitivity(torch::jit::Module& model, const config::Config& config,
                         const std::function<strategies::EvalMetrics()>& evaluate,
                         comm::Communicator& comm) {
  const auto weights =
      SelectUnstructuredWeights(model, config.StrategyOptionsOf<UnstructurePruneOptions>(kSection));
  logging::Info(fmt::format("evaluating {} times: dense, and each of {} weights pruned alone "
                            "to {} ratios",
                            1 + weights.size() * AnalysedRatios().size(), weights.size(),
                            AnalysedRatios().size()));
  const auto report = AnalyzePruneSensitivity(weights, AnalysedRatios(), evaluate);
  if (comm.Rank() == 0) WriteOutputs(report, config.global.output_dir);
  comm.Barrier()->Wait(comm.DefaultTimeout());
}

}  // namespace slim::prune
