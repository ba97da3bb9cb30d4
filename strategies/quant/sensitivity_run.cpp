#include "strategies/quant/sensitivity_run.h"

#include <fmt/format.h>

#include <filesystem>
#include <iostream>
#include <sstream>

#include "runtime/base/bar_chart.h"
#include "runtime/base/errors.h"
#include "runtime/base/logging.h"
#include "runtime/base/output_file.h"
#include "runtime/base/text.h"
#include "strategies/quant/quant_options.h"

namespace slim::quant {

namespace {

std::string Percent(double fraction) { return fmt::format("{:.2f} %", fraction * 100); }

// The table as Markdown: the header figures, one row per layer, the suggestion.
std::string MarkdownTable(const SensitivityReport& report) {
  std::ostringstream out;
  out << "float top-1 " << Percent(report.float_model.top1) << ", all layers quantized "
      << Percent(report.all_quantized.top1) << "\n\n"
      << "| rank | layer | top-1 with only this layer quantized | top-1 drop (points) | loss "
         "increase |\n| --- | --- | --- | --- | --- |\n";
  for (size_t i = 0; i < report.layers.size(); ++i) {
    const auto& layer = report.layers[i];
    out << fmt::format("| {} | {} | {} | {:.2f} | {:.4f} |\n", i + 1, layer.path,
                       Percent(layer.metric.top1), layer.top1_drop_points, layer.loss_increase);
  }
  out << "\nsuggested not_quant_pattern: ["
      << JoinedList(report.suggested_patterns) << "]\n";
  return out.str();
}

nlohmann::json JsonReport(const SensitivityReport& report) {
  nlohmann::json layers = nlohmann::json::array();
  for (const auto& layer : report.layers) {
    layers.push_back({{"layer", layer.path},
                      {"top1", layer.metric.top1},
                      {"loss", layer.metric.loss},
                      {"top1_drop_points", layer.top1_drop_points},
                      {"loss_increase", layer.loss_increase}});
  }
  return {{"float", {{"top1", report.float_model.top1}, {"loss", report.float_model.loss}}},
          {"all_quantized",
           {{"top1", report.all_quantized.top1}, {"loss", report.all_quantized.loss}}},
          {"layers", layers},
          {"suggested_not_quant_pattern", report.suggested_patterns}};
}

void WriteOutputs(const SensitivityReport& report, const std::string& output_dir) {
  const std::filesystem::path dir = output_dir;
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  const auto table = MarkdownTable(report);
  files::WriteAtomically((dir / "sensitivity.md").string(),
                         "# Quantization sensitivity\n\n" + table);
  files::WriteAtomically((dir / "sensitivity.json").string(), JsonReport(report).dump(2) + "\n");
  std::vector<plot::Bar> bars;
  for (const auto& layer : report.layers) bars.push_back({layer.path, layer.top1_drop_points});
  const std::string title = "top-1 drop (points) with only this layer quantized";
  plot::WriteBarChart((dir / "sensitivity.png").string(), title, bars);
  plot::WriteBarChart((dir / "sensitivity.svg").string(), title, bars);
  std::cout << "quantization sensitivity, one layer quantized at a time:\n" << table
            << "written: " << (dir / "sensitivity.md").string() << ", sensitivity.json, "
            << "sensitivity.png, sensitivity.svg\n";
}

}  // namespace

void UseQuantPostForAnalysis(config::Config& config) {
  if (!config.HasStrategy("QuantPost") && !config.HasStrategy("QuantAware")) {
    throw ConfigError(config.file + ": --analyze quant needs a QuantPost or QuantAware section "
                      "saying which layers to quantize and how");
  }
  if (config.global.eval_data.empty()) {
    throw ConfigError(config.file + ": --analyze quant measures accuracy on Global.eval_data; "
                      "set it");
  }
  if (!config.HasStrategy("QuantPost")) {
    auto post = std::make_shared<QuantPostOptions>();
    static_cast<QuantCommonOptions&>(*post) =
        config.StrategyOptionsOf<QuantAwareOptions>("QuantAware");
    config.strategies["QuantPost"] = post;
  }
  config.StrategyOptionsOf<QuantPostOptions>("QuantPost").bias_correct = false;
  // The analysis calibrates; it trains nothing to distil into.
  for (const auto* trained : {"QuantAware", "Distillation", "MultiTeacherDistillation"}) {
    config.strategies.erase(trained);
  }
}

void AnalyzeQuantSensitivity(torch::jit::Module& model,
                             const std::function<Metric(torch::jit::Module&)>& evaluate,
                             comm::Communicator& comm, const std::string& output_dir) {
  const auto groups = EnabledQuantizerGroups(model);
  logging::Info(fmt::format("evaluating {} times: float, each of the {} quantized layers and "
                            "matmuls alone, all together",
                            groups.size() + 2, groups.size()));
  const auto report = AnalyzeSensitivity(groups, [&] { return evaluate(model); });
  if (comm.Rank() == 0) WriteOutputs(report, output_dir);
  comm.Barrier()->Wait(comm.DefaultTimeout());
}

}  // namespace slim::quant
