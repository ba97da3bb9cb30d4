#include "runtime/engine/calibration_run.h"

#include <fmt/format.h>

#include <chrono>

#include "data/batch_transform.h"
#include "runtime/base/logging.h"
#include "runtime/engine/evaluator.h"
#include "runtime/engine/run_report.h"

namespace slim::engine {

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

void CalibrateAndExport(TrainingSetup setup) {
  auto& comm = *setup.comm;
  auto& model = setup.model;
  const auto start = Clock::now();
  const auto needs = setup.compressor->CalibrationData();
  const auto batches = CalibrationBatches(*setup.train_data, needs.batch_num, needs.batch_size,
                                          comm.Rank(), comm.Size(), setup.device);
  std::unique_ptr<Evaluator> evaluator;
  EvalResult before;
  if (setup.eval_data) {
    evaluator =
        std::make_unique<Evaluator>(setup.eval_data, comm, setup.device, setup.config->global);
    before = evaluator->Evaluate(model);
    logging::Info(fmt::format("float model: eval top1 {:.4f}", before.top1));
  }
  const auto calibration_start = Clock::now();
  setup.compressor->Calibrate(model, batches);
  const double calibration_s =
      std::chrono::duration<double>(Clock::now() - calibration_start).count();
  logging::Info(fmt::format("calibrated on {} batch(es) per rank in {:.2f} s", batches.size(),
                            calibration_s));
  nlohmann::json fields = {{"calibration_batches", needs.batch_num},
                           {"calibration_batch_size", needs.batch_size},
                           {"calibration_s", calibration_s}};
  if (evaluator) {
    const auto after = evaluator->Evaluate(model);
    logging::Info(fmt::format("quantized model: eval top1 {:.4f}", after.top1));
    fields["float"] = {{"eval_loss", before.loss}, {"eval_top1", before.top1}};
    fields["final"] = {{"eval_loss", after.loss}, {"eval_top1", after.top1}};
  }
  if (comm.Rank() == 0) {
    fields["wall_time_s"] = std::chrono::duration<double>(Clock::now() - start).count();
    ExportModelAndReport(setup, std::move(fields));
  }
  const auto io_deadline = std::chrono::duration<double>(setup.config->global.io_timeout_s);
  comm.Barrier()->Wait(std::chrono::duration_cast<std::chrono::milliseconds>(io_deadline));
  logging::Info("done; outputs in " + setup.config->global.output_dir);
}

}  // namespace slim::engine
