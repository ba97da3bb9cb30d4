#include "runtime/engine/run_report.h"

#include <fmt/format.h>

#include <filesystem>

#include "export/model_exports.h"
#include "export/model_measure.h"
#include "runtime/base/logging.h"
#include "runtime/base/output_file.h"
#include "runtime/base/torch_compat.h"
#include "runtime/engine/calibration_run.h"
#include "runtime/models/model_loader.h"

namespace slim::engine {

namespace {

// Batches of training inputs that calibrate the integer exports' layer output grids.
constexpr int64_t kExportCalibrationBatches = 16;

const exporting::TimingPlan kReportTiming{/*warmup=*/5, /*min_iterations=*/10,
                                          /*max_iterations=*/100, /*budget_s=*/1.0};

exporting::ExportInputs ExportInputsOf(const TrainingSetup& setup) {
  const auto& global = setup.config->global;
  exporting::ExportInputs inputs;
  inputs.calibration = CalibrationBatches(*setup.train_data, kExportCalibrationBatches,
                                          global.batch_size, static_cast<uint64_t>(global.seed),
                                          0, 1, torch::kCPU);
  const auto sizes = inputs.calibration.at(0).sizes();
  inputs.sample_shape.assign(sizes.begin() + 1, sizes.end());
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
  if (report != nullptr) report->update(details);
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
nlohmann::json MeasureFile(const exporting::ExportedFile& file,
                           const std::vector<int64_t>& sample_shape,
                           const std::vector<int64_t>& batches) {
  nlohmann::json latency;
  if (file.format == "onnx") {
    for (const auto batch : batches) {
      std::string why_not;
      const auto measured = exporting::TimeOnnx(file.path, sample_shape, batch,
                                                at::get_num_threads(), kReportTiming, &why_not);
      if (!measured) return {{"not_measured", why_not}};
      latency["batch_" + std::to_string(batch)] = LatencyJson(*measured);
    }
    return latency;
  }
  auto module = torch::jit::load(file.path);
  module.eval();
  for (const auto batch : batches) {
    latency["batch_" + std::to_string(batch)] =
        LatencyJson(exporting::TimeTorchScript(module, sample_shape, batch, kReportTiming));
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

// The input model as the job loaded it, measured the same way as the exports.
nlohmann::json MeasureInputModel(const TrainingSetup& setup, const std::vector<int64_t>& sample_shape,
                                 const std::vector<int64_t>& batches) {
  const models::ModelShape shape{sample_shape,
                                 static_cast<int64_t>(setup.train_data->info().class_names.size())};
  auto input = models::LoadModel(setup.model_reference, shape, "Global.model");
  input.eval();
  nlohmann::json latency;
  for (const auto batch : batches) {
    latency["batch_" + std::to_string(batch)] =
        LatencyJson(exporting::TimeTorchScript(input, sample_shape, batch, kReportTiming));
  }
  return {{"model", setup.model_reference},
          {"parameters", models::ParameterCount(input)},
          {"macs", exporting::CountModelMacs(input, sample_shape)},
          {"latency", latency}};
}

void LogHeadline(const nlohmann::json& report) {
  const auto& input = report["input_model"];
  for (const auto& file : report["exports"]) {
    std::string speed = "latency not measured";
    const auto& speedup = file["speedup"];
    if (!speedup.empty()) {
      speed.clear();
      for (const auto& [key, ratio] : speedup.items()) {
        speed += fmt::format("{}{:.2f}x at {}", speed.empty() ? "" : ", ", ratio.get<double>(), key);
      }
    }
    logging::Info(fmt::format("{}: {:.1f} KiB, {} MACs/sample ({:.2f}x fewer than the input), {}",
                              file["file"].get<std::string>(),
                              file["file_bytes"].get<int64_t>() / 1024.0,
                              file["macs"].get<int64_t>(),
                              static_cast<double>(input["macs"].get<int64_t>()) /
                                  std::max<int64_t>(1, file["macs"].get<int64_t>()),
                              speed));
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
  report["input_model"] = MeasureInputModel(setup, inputs.sample_shape, batches);
  const int64_t macs = exporting::CountModelMacs(deployed.module, inputs.sample_shape);
  const auto& baseline = report["input_model"]["latency"];
  nlohmann::json exports = nlohmann::json::array();
  for (const auto& file : files) {
    const auto latency = MeasureFile(file, inputs.sample_shape, batches);
    exports.push_back({{"format", file.format},
                       {"file", std::filesystem::path(file.path).filename().string()},
                       {"file_bytes", file.file_bytes},
                       {"parameters", deployed.parameters},
                       {"macs", macs},
                       {"latency", latency},
                       {"speedup", Speedups(baseline, latency)}});
  }
  report["exports"] = exports;
  LogHeadline(report);
  files::WriteAtomically(
      (std::filesystem::path(setup.config->global.output_dir) / "report.json").string(),
      report.dump(2) + "\n");
}

void ExportBestModel(const TrainingSetup& setup, const torch::jit::Module& model) {
  strategies::DeployedModel deployed;
  SaveAll(setup, model, "model_best", nullptr, &deployed, ExportInputsOf(setup));
}

}  // namespace slim::engine
