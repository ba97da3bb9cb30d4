// Evaluation on an eval set sharded over the ranks, with exact global metrics.
#pragma once

#include <torch/script.h>

#include <memory>

#include "data/batch_loader.h"
#include "runtime/comm/communicator.h"
#include "runtime/config/options.h"
#include "strategies/strategy.h"

namespace slim::engine {

using EvalResult = strategies::EvalMetrics;

// Evaluates a model on one eval set. Each rank takes every world_size-th sample, so no
// sample is counted twice; sums are all-reduced. Collective.
class Evaluator {
 public:
  Evaluator(std::shared_ptr<const data::Hdf5Dataset> dataset, comm::Communicator& comm,
            torch::Device device, int64_t batch_size, int loader_threads, int prefetch);

  // The evaluator of `options.global`'s eval batch size and loader settings.
  Evaluator(std::shared_ptr<const data::Hdf5Dataset> dataset, comm::Communicator& comm,
            torch::Device device, const config::GlobalOptions& options);

  // Runs the model in eval mode without gradients, then restores training mode.
  EvalResult Evaluate(torch::jit::Module& model);

 private:
  comm::Communicator& comm_;
  torch::Device device_;
  std::vector<std::vector<int64_t>> plan_;
  data::BatchLoader loader_;
};

}  // namespace slim::engine
