#include "runtime/engine/run_report.h"

#include <fmt/format.h>

#include <cmath>
#include <filesystem>

#include "export/model_exports.h"
#include "export/model_measure.h"
#include "export/onnx_runtime.h"
#include "runtime/base/logging.h"
#include "runtime/base/output_file.h"
#include "runtime/base/scatter_plot.h"
#include "runtime/base/torch_compat.h"
#include "runtime/engine/calibration_run.h"
#include "runtime/engine/export_evaluation.h"
#include "runtime/models/model_loader.h"

namespace slim::engine {

namespace {

// Batches of training inputs that calibrate the integer exports' layer output grids.
constexpr int64_t kExportCalibrationBatches = 16;

const exporting::TimingPlan kReportTiming{/*warmup=*/5, /*min_iterations=*/10,
                                          /*max_iterations=*/100, /*budget_s=*/0.5};

exporting::ExportInputs ExportInputsOf(const TrainingSetup& setup) {
  const auto& global = setup.config->global;
  exporting::ExportInputs inputs;
  inputs.calibration = CalibrationBatches(*setup.train_data, kExportCalibrationBatches,
                                          global.batch_size, static_cast<uint64_t>(global.seed),
                                          0, 1, torch::kCPU,
                                          "Global.export (the integer outputs' grids)");
  inputs.example = inputs.calibration.at(0).slice(0, 0, 1);
  inputs.model_output = exporting::ModelOutputFor(global.export_quantized_output);
  return inputs;
}

std::vector<exporting::ExportedFile> SaveAll(const TrainingSetup& setup,
                                             const torch::jit::Module& model,
                                             const std::string& stem, nlohmann::json* report,
                                             strategies::DeployedModel* deployed,
                                             const exporting::ExportInputs& inputs) {
  const std::filesystem::path dir = setup.config->global.output_dir;
  *deployed = setup.compressor->SaveDeployable(model, (dir / (stem + ".pt")).string(), report);
  nlohmann::json details;
  auto files = exporting::WriteExports(deployed->module, setup.config->global.export_formats,
                                       dir.string(), stem, inputs, details);
  if (report != nullptr && details.is_object()) report->update(details);
  files.insert(files.begin(), {"torchscript", (dir / (stem + ".pt")).string(), deployed->file_bytes});
  return files;
}

nlohmann::json LatencyJson(const exporting::Latency& latency) {
  return {{"median_ms", latency.median_ms},
          {"p90_ms", latency.p90_ms},
          {"samples_per_s", latency.samples_per_second},
          {"iterations", latency.iterations},
          {"threads", latency.threads}};
}

// Latency of a file at each batch size, keyed "batch_<n>"; a note instead when the
// runtime it needs is missing.
nlohmann::json MeasureFile(const exporting::ExportedFile& file, const at::Tensor& example,
                           const std::vector<int64_t>& batches) {
  nlohmann::json latency;
  if (file.format == "onnx") {
    for (const auto batch : batches) {
      std::string why_not;
      const auto measured = exporting::TimeOnnx(
          file.path, example, batch, exporting::kLatencyThreads, kReportTiming, &why_not);
      if (!measured) return {{"not_measured", why_not}};
      latency["batch_" + std::to_string(batch)] = LatencyJson(*measured);
    }
    return latency;
  }
  auto module = torch::jit::load(file.path, torch::kCPU);
  module.eval();
  for (const auto batch : batches) {
    latency["batch_" + std::to_string(batch)] =
        LatencyJson(exporting::TimeTorchScript(module, example, batch, kReportTiming));
  }
  return latency;
}

// Speedup of each batch entry of `latency` over the same entry of `baseline`.
nlohmann::json Speedups(const nlohmann::json& baseline, const nlohmann::json& latency) {
  nlohmann::json speedup = nlohmann::json::object();
  for (const auto& [key, entry] : latency.items()) {
    if (!entry.is_object() || !baseline.contains(key)) continue;
    speedup[key] = baseline[key]["median_ms"].get<double>() / entry["median_ms"].get<double>();
  }
  return speedup;
}

// The input model as the job loaded it, frozen as one deploys a float TorchScript model
// (torch.jit.freeze), measured the same way as the exports, and its top-1 on the samples
// the exports are evaluated on.
nlohmann::json MeasureInputModel(const TrainingSetup& setup, const at::Tensor& example,
                                 const std::vector<int64_t>& batches) {
  if (!setup.input_model) return {{"model", setup.model_reference}, {"not_measured", "no input model"}};
  const auto& input = *setup.input_model;
  auto frozen = exporting::FrozenCpuCopy(input);
  nlohmann::json latency;
  for (const auto batch : batches) {
    latency["batch_" + std::to_string(batch)] =
        LatencyJson(exporting::TimeTorchScript(frozen, example, batch, kReportTiming));
  }
  nlohmann::json measured = {{"model", setup.model_reference},
                             {"parameters", models::ParameterCount(input)},
                             {"macs", exporting::CountModelMacs(input, example).total},
                             {"latency", latency}};
  if (setup.eval_data) {
    const auto evaluation =
        EvaluateModule(input, *setup.eval_data, setup.config->global.eval_batch_size);
    measured["eval"] = {{"samples", evaluation.samples}, {"top1", evaluation.top1}};
  }
  return measured;
}

// One line per exported file: its accuracy, size and speed against the input model.
void LogHeadline(const nlohmann::json& report) {
  const auto& input = report["input_model"];
  const double float_bytes = 4.0 * input.value("parameters", std::nan(""));
  for (const auto& file : report["exports"]) {
    std::string line = file["file"].get<std::string>() + ":";
    if (file.contains("eval") && file["eval"].contains("top1")) {
      line += fmt::format(" top1 {:.4f} (same top-1 as model.pt on {:.2f} %),",
                          file["eval"]["top1"].get<double>(),
                          100 * file["eval"]["top1_agreement_with_model_pt"].get<double>());
    }
    line += fmt::format(" {:.1f} KiB ({:.2f}x smaller than float32 weights)",
                        file["file_bytes"].get<double>() / 1024,
                        float_bytes / file["file_bytes"].get<double>());
    for (const auto& [key, ratio] : file["speedup"].items()) {
      line += fmt::format(", {:.2f}x the input model's speed at {}", ratio.get<double>(), key);
    }
    if (file["latency"].contains("not_measured")) {
      line += ", latency not measured: " + file["latency"]["not_measured"].get<std::string>();
    }
    logging::Info(line);
  }
}

// The input model's top-1: on the exports' eval samples, else the float evaluation of a
// calibration job, else TrainConfig.origin_metric, else unknown (NaN).
double InputTop1(const nlohmann::json& report) {
  const auto& input = report["input_model"];
  if (input.contains("eval")) return input["eval"]["top1"].get<double>();
  if (report.contains("float")) return report["float"]["eval_top1"].get<double>();
  if (report.contains("origin_metric")) return report["origin_metric"].get<double>();
  return std::nan("");
}

double BatchOneMilliseconds(const nlohmann::json& latency) {
  return latency.contains("batch_1") ? latency["batch_1"]["median_ms"].get<double>()
                                     : std::nan("");
}

// OUTPUT_DIR/tradeoff.{png,svg}: top-1 against latency at batch 1 and against file size,
// for the input model and every exported file.
void PlotTradeoff(const nlohmann::json& report, const std::filesystem::path& dir) {
  if (!report["input_model"].contains("latency")) return;
  plot::Panel latency{"latency at batch 1, one thread [ms]", {}, /*log_x=*/true};
  plot::Panel size{"file size [KiB]", {}, /*log_x=*/true};
  const auto& input = report["input_model"];
  const double input_top1 = InputTop1(report);
  latency.points.push_back({"input model", BatchOneMilliseconds(input["latency"]), input_top1});
  size.points.push_back({"input model (float32)", 4.0 * input["parameters"].get<double>() / 1024,
                         input_top1});
  for (const auto& file : report["exports"]) {
    const double top1 = file.contains("eval") && file["eval"].contains("top1")
                            ? file["eval"]["top1"].get<double>()
                            : std::nan("");
    const auto name = file["file"].get<std::string>();
    latency.points.push_back({name, BatchOneMilliseconds(file["latency"]), top1});
    size.points.push_back({name, file["file_bytes"].get<double>() / 1024, top1});
  }
  for (const char* extension : {".png", ".svg"}) {
    plot::WriteScatterPanels((dir / (std::string("tradeoff") + extension)).string(),
                             "accuracy against latency and size", "eval top-1", {latency, size});
  }
}

}  // namespace

void ExportModelAndReport(const TrainingSetup& setup, nlohmann::json job_fields) {
  nlohmann::json report = {{"model", setup.model_reference},
                           {"ranks", setup.comm->Size()},
                           {"device", setup.device.str()},
                           {"libtorch_version", compat::TorchVersionString()}};
  const auto inputs = ExportInputsOf(setup);
  strategies::DeployedModel deployed;
  const auto files = SaveAll(setup, setup.model, "model", &report, &deployed, inputs);
  report.update(job_fields);
  report.update({{"parameters", deployed.parameters},
                 {"model_size_bytes", deployed.state_bytes},
                 {"model_file_bytes", deployed.file_bytes}});

  std::vector<int64_t> batches = {1};
  if (setup.config->global.batch_size != 1) batches.push_back(setup.config->global.batch_size);
  std::vector<FileEvaluation> evaluations(files.size());
  if (setup.eval_data) {
    evaluations = EvaluateExports(files, *setup.eval_data, setup.config->global.eval_batch_size);
  }
  exporting::IntraOpThreads one_thread(exporting::kLatencyThreads);
  report["input_model"] = MeasureInputModel(setup, inputs.example, batches);
  const auto macs = exporting::CountModelMacs(deployed.module, inputs.example);
  const auto baseline = report["input_model"].value("latency", nlohmann::json::object());
  nlohmann::json exports = nlohmann::json::array();
  for (size_t i = 0; i < files.size(); ++i) {
    const auto& file = files[i];
    const auto latency = MeasureFile(file, inputs.example, batches);
    nlohmann::json entry = {{"format", file.format},
                            {"file", std::filesystem::path(file.path).filename().string()},
                            {"file_bytes", file.file_bytes},
                            {"parameters", deployed.parameters},
                            {"macs", macs.total},
                            {"latency", latency},
                            {"speedup", Speedups(baseline, latency)}};
    if (macs.quantized > 0) entry["macs_quantized"] = macs.quantized;
    if (evaluations[i].samples > 0) {
      entry["eval"] = {{"samples", evaluations[i].samples},
                       {"top1", evaluations[i].top1},
                       {"top1_agreement_with_model_pt", evaluations[i].agreement}};
    } else if (!evaluations[i].not_evaluated.empty()) {
      entry["eval"] = {{"not_evaluated", evaluations[i].not_evaluated}};
    }
    exports.push_back(entry);
  }
  report["exports"] = exports;
  LogHeadline(report);
  PlotTradeoff(report, setup.config->global.output_dir);
  files::WriteAtomically(
      (std::filesystem::path(setup.config->global.output_dir) / "report.json").string(),
      report.dump(2) + "\n");
}

void ExportBestModel(const TrainingSetup& setup, const torch::jit::Module& model) {
  strategies::DeployedModel deployed;
  SaveAll(setup, model, "model_best", nullptr, &deployed, ExportInputsOf(setup));
}

}  // namespace slim::engine
