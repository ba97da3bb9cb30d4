// Evaluation on an eval set sharded over the ranks, with exact global metrics.
#pragma once

#include <torch/script.h>

#include <memory>

#include "data/batch_loader.h"
#include "runtime/comm/communicator.h"

namespace slim::trainer {

struct EvalResult {
  double loss = 0;   // mean cross-entropy over every eval sample
  double top1 = 0;   // fraction of samples whose arg-max logit is the label
  int64_t samples = 0;
};

// Evaluates a model on one eval set. Each rank takes every world_size-th sample, so no
// sample is counted twice; sums are all-reduced. Collective.
class Evaluator {
 public:
  Evaluator(std::shared_ptr<const data::Hdf5Dataset> dataset, comm::Communicator& comm,
            torch::Device device, int64_t batch_size, int loader_threads, int prefetch);

  // Runs the model in eval mode without gradients, then restores training mode.
  EvalResult Evaluate(torch::jit::Module& model);

 private:
  comm::Communicator& comm_;
  torch::Device device_;
  std::vector<std::vector<int64_t>> plan_;
  data::BatchLoader loader_;
};

}  // namespace slim::trainer
