#include "runtime/trainer/calibration_run.h"

#include <chrono>
#include <filesystem>
#include <fstream>

#include "data/batch_transform.h"
#include "runtime/errors.h"
#include "runtime/logging.h"
#include "runtime/models/model_loader.h"
#include "runtime/torch_compat.h"
#include "runtime/trainer/evaluator.h"
#include "strategies/compressor.h"

namespace slim::trainer {

using Clock = std::chrono::steady_clock;

std::vector<torch::Tensor> CalibrationBatches(const data::Hdf5Dataset& data, int64_t batch_num,
                                              int64_t batch_size, int rank, int world_size,
                                              torch::Device device) {
  const int64_t size = data.info().size;
  if (batch_num * batch_size > size) {
    logging::Warning("QuantPost: batch_num x batch_size = " + std::to_string(batch_num * batch_size) +
                     " exceeds the " + std::to_string(size) + " samples of " + data.info().path +
                     "; calibrating on all of them");
  }
  const data::BatchTransform transform(data.info(), data::AugmentSettings{});
  std::vector<torch::Tensor> batches;
  for (int64_t k = rank; k < batch_num && k * batch_size < size; k += world_size) {
    std::vector<int64_t> indices;
    for (int64_t i = k * batch_size; i < std::min((k + 1) * batch_size, size); ++i) {
      indices.push_back(i);
    }
    batches.push_back(transform.Apply(data.ReadInputs(indices), indices, 0).to(device));
  }
  return batches;
}

void CalibrateAndExport(TrainingSetup setup, int64_t batch_num, int64_t batch_size) {
  const auto& options = *setup.config;
  auto& comm = *setup.comm;
  auto& model = setup.model;
  const auto start = Clock::now();
  const auto batches = CalibrationBatches(*setup.train_data, batch_num, batch_size, comm.Rank(),
                                          comm.Size(), setup.device);
  std::unique_ptr<Evaluator> evaluator;
  EvalResult before;
  if (setup.eval_data) {
    evaluator = std::make_unique<Evaluator>(setup.eval_data, comm, setup.device,
                                            options.global.eval_batch_size,
                                            options.global.loader_threads,
                                            options.global.prefetch_batches);
    before = evaluator->Evaluate(model);
    logging::Info("float model: eval top1 " + std::to_string(before.top1));
  }
  const auto calibration_start = Clock::now();
  setup.compressor->Calibrate(model, batches);
  const double calibration_s =
      std::chrono::duration<double>(Clock::now() - calibration_start).count();
  logging::Info("calibrated on " + std::to_string(batches.size()) + " batch(es) per rank in " +
                std::to_string(calibration_s) + " s");
  nlohmann::json report = {{"model", setup.model_reference},
                           {"ranks", comm.Size()},
                           {"device", setup.device.str()},
                           {"calibration_batches", batch_num},
                           {"calibration_batch_size", batch_size},
                           {"calibration_s", calibration_s},
                           {"parameters", models::ParameterCount(model)},
                           {"libtorch_version", compat::TorchVersionString()}};
  if (evaluator) {
    const auto after = evaluator->Evaluate(model);
    logging::Info("quantized model: eval top1 " + std::to_string(after.top1));
    report["float"] = {{"eval_loss", before.loss}, {"eval_top1", before.top1}};
    report["final"] = {{"eval_loss", after.loss}, {"eval_top1", after.top1}};
  }
  if (comm.Rank() == 0) {
    const std::filesystem::path dir = options.global.output_dir;
    const auto model_path = (dir / "model.pt").string();
    setup.compressor->SaveDeployable(model, model_path, dir.string(), &report);
    report["model_file_bytes"] = std::filesystem::file_size(model_path);
    report["wall_time_s"] = std::chrono::duration<double>(Clock::now() - start).count();
    std::ofstream out(dir / "report.json");
    out << report.dump(2) << '\n';
    if (!out) throw ConfigError("writing report.json failed under " + dir.string());
  }
  comm.Barrier()->Wait(comm.DefaultTimeout());
  logging::Info("done; outputs in " + options.global.output_dir);
}

}  // namespace slim::trainer
