// Scores a quantized model against the float model it came from on the eval set, for the
// quantization search: the emd objective (output_distance.h) per eval batch, top-1 and
// loss. Batch k holds the samples [k B, (k + 1) B) in file order and rank r of the group
// takes the batches with k % size == r, so every score is the same for every group size.
#pragma once

#include <torch/script.h>

#include <memory>

#include "data/batch_loader.h"
#include "data/hdf5_dataset.h"
#include "runtime/comm/communicator.h"

namespace slim::search {

struct OutputScores {
  double emd = 0;     // mean over the eval batches
  double top1 = 0;
  double loss = 0;    // mean cross-entropy
  int64_t samples = 0;
  bool finite = true;  // false when any output was NaN or infinite
};

class OutputComparison {
 public:
  // Runs `float_model` over this rank's batches and keeps its outputs (the eval set's
  // size times the classes, in float32). Collective over `group` (the float scores).
  OutputComparison(std::shared_ptr<const data::Hdf5Dataset> eval_data, int64_t batch_size,
                   comm::Communicator& group, torch::Device device,
                   torch::jit::Module float_model);

  // The float model's scores (emd 0).
  const OutputScores& Float() const { return float_scores_; }

  // `model`'s scores against the float outputs. Collective over the group.
  OutputScores Score(torch::jit::Module& model);

 private:
  // Runs `model` over this rank's batches; `each` gets (batch k, labels, outputs).
  template <typename Each>
  void ForEachBatch(torch::jit::Module& model, Each each);
  // This rank's sums over its batches.
  struct Sums {
    double emd = 0;
    double loss = 0;
    double correct = 0;
    double samples = 0;
    bool finite = true;
    // Adds one batch's loss and hits, or marks the sums not finite.
    void Add(const torch::Tensor& labels, const torch::Tensor& outputs);
  };
  OutputScores Reduce(const Sums& sums);

  comm::Communicator& group_;
  torch::Device device_;
  int64_t batches_ = 0;  // over the whole group
  std::vector<std::vector<int64_t>> plan_;
  data::BatchLoader loader_;
  std::vector<torch::Tensor> float_outputs_;
  OutputScores float_scores_;
};

}  // namespace slim::search
