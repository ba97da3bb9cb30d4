#include "runtime/engine/calibration_run.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <set>

#include "data/batch_transform.h"
#include "data/distributed_sampler.h"
#include "runtime/base/logging.h"
#include "runtime/engine/evaluator.h"
#include "runtime/engine/run_report.h"

namespace slim::engine {

using Clock = std::chrono::steady_clock;

std::vector<torch::Tensor> CalibrationBatches(const data::Hdf5Dataset& data, int64_t batch_num,
                                              int64_t batch_size, uint64_t seed, int rank,
                                              int world_size, torch::Device device,
                                              const std::string& requested_by) {
  const auto& info = data.info();
  if (batch_num * batch_size > info.size) {
    logging::Warning(fmt::format("{}: {} batches of {} = {} calibration samples exceed the {} "
                                 "samples of {}; calibrating on all of them",
                                 requested_by, batch_num, batch_size, batch_num * batch_size,
                                 info.size, info.path));
  }
  // One shuffled pass over the whole set, the same on every rank and for every rank count.
  data::DistributedSampler order(data::SamplerOptions{info.size, 0, 1, batch_size,
                                                      /*shuffle=*/true, /*drop_last=*/false,
                                                      seed});
  const int64_t batches = std::min(batch_num, order.BatchesPerEpoch());
  const data::BatchTransform transform(info, data::AugmentSettings{});
  std::set<int64_t> classes;
  int64_t samples = 0;
  std::vector<torch::Tensor> mine;
  for (int64_t k = 0; k < batches; ++k) {
    const auto indices = order.BatchIndices(0, k);
    const auto labels = data.Labels(indices);
    classes.insert(labels.data_ptr<int64_t>(), labels.data_ptr<int64_t>() + labels.numel());
    samples += static_cast<int64_t>(indices.size());
    if (k % world_size != rank) continue;
    mine.push_back(transform.Apply(data.ReadInputs(indices), indices, 0).to(device));
  }
  logging::Info(fmt::format("calibrating on {} samples drawn across {} ({} of {} classes)",
                            samples, info.path, classes.size(), info.class_names.size()));
  return mine;
}

std::vector<torch::Tensor> StrategyCalibrationBatches(const TrainingSetup& setup) {
  const auto needs = setup.compressor->CalibrationData();
  return CalibrationBatches(*setup.train_data, needs.batch_num, needs.batch_size,
                            static_cast<uint64_t>(setup.config->global.seed), setup.comm->Rank(),
                            setup.comm->Size(), setup.device, "QuantPost: batch_num x batch_size");
}

void CalibrateAndExport(TrainingSetup setup) {
  auto& comm = *setup.comm;
  auto& model = setup.model;
  const auto start = Clock::now();
  const auto needs = setup.compressor->CalibrationData();
  const auto batches = StrategyCalibrationBatches(setup);
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
