#include "runtime/trainer/sensitivity_run.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "data/bar_chart_png.h"
#include "runtime/errors.h"
#include "runtime/logging.h"
#include "runtime/text.h"
#include "runtime/trainer/calibration_run.h"
#include "runtime/trainer/evaluator.h"
#include "strategies/compressor.h"
#include "strategies/quant/sensitivity.h"

namespace slim::trainer {

namespace {

using quant::SensitivityReport;

std::string Percent(double fraction) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.2f %%", fraction * 100);
  return text;
}

// The table as Markdown: the header figures, one row per layer, the suggestion.
std::string MarkdownTable(const SensitivityReport& report) {
  std::ostringstream out;
  out << "float top-1 " << Percent(report.float_model.top1) << ", all layers quantized "
      << Percent(report.all_quantized.top1) << "\n\n"
      << "| rank | layer | top-1 with only this layer quantized | top-1 drop (points) | loss "
         "increase |\n| --- | --- | --- | --- | --- |\n";
  char row[512];
  for (size_t i = 0; i < report.layers.size(); ++i) {
    const auto& layer = report.layers[i];
    std::snprintf(row, sizeof(row), "| %zu | %s | %s | %.2f | %.4f |\n", i + 1,
                  layer.path.c_str(), Percent(layer.metric.top1).c_str(),
                  layer.top1_drop_points, layer.loss_increase);
    out << row;
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

void WriteText(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  if (!out) throw ConfigError("writing " + path.string() + " failed");
}

void WriteOutputs(const SensitivityReport& report, const std::string& output_dir) {
  const std::filesystem::path dir = output_dir;
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  const auto table = MarkdownTable(report);
  WriteText(dir / "sensitivity.md", "# Quantization sensitivity\n\n" + table);
  WriteText(dir / "sensitivity.json", JsonReport(report).dump(2) + "\n");
  std::vector<data::ChartBar> bars;
  for (const auto& layer : report.layers) bars.push_back({layer.path, layer.top1_drop_points});
  data::WriteBarChartPng((dir / "sensitivity.png").string(),
                         "top-1 drop (points) with only this layer quantized", bars);
  std::cout << "quantization sensitivity, one layer quantized at a time:\n" << table
            << "written: " << (dir / "sensitivity.md").string() << ", sensitivity.json, "
            << "sensitivity.png\n";
}

}  // namespace

void AnalyzeQuantSensitivity(TrainingSetup setup, int64_t batch_num, int64_t batch_size) {
  const auto& options = *setup.config;
  auto& comm = *setup.comm;
  const auto batches = CalibrationBatches(*setup.train_data, batch_num, batch_size, comm.Rank(),
                                          comm.Size(), setup.device);
  setup.compressor->Calibrate(setup.model, batches);
  Evaluator evaluator(setup.eval_data, comm, setup.device, options.global.eval_batch_size,
                      options.global.loader_threads, options.global.prefetch_batches);
  const auto groups = quant::EnabledQuantizerGroups(setup.model);
  logging::Info("evaluating " + std::to_string(groups.size() + 2) +
                " times: float, each of the " + std::to_string(groups.size()) +
                " quantized layers and matmuls alone, all together");
  const auto report = quant::AnalyzeSensitivity(groups, [&] {
    const auto result = evaluator.Evaluate(setup.model);
    return quant::Metric{result.top1, result.loss, result.samples};
  });
  if (comm.Rank() == 0) WriteOutputs(report, options.global.output_dir);
  comm.Barrier()->Wait(comm.DefaultTimeout());
}

}  // namespace slim::trainer
