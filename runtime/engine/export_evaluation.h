// Rank 0: every exported file evaluated as its own runtime loads it (LibTorch for
// TorchScript, ONNX Runtime for ONNX) on the first samples of the eval data, with how
// often its top-1 agrees with model.pt's, the model the training evaluation ran.
#pragma once

#include <string>
#include <vector>

#include "data/hdf5_dataset.h"
#include "export/model_exports.h"

namespace slim::engine {

// Samples of the eval data the exports are evaluated on, at most.
constexpr int64_t kExportEvalSamples = 10000;

struct FileEvaluation {
  int64_t samples = 0;
  double top1 = 0;
  double agreement = 0;       // share of samples whose top-1 equals model.pt's
  std::string not_evaluated;  // why, when its runtime is missing
};

// One entry per file of `files`, whose first entry is model.pt (the reference for the
// agreement). Batches of `batch_size`.
std::vector<FileEvaluation> EvaluateExports(const std::vector<exporting::ExportedFile>& files,
                                            const data::Hdf5Dataset& eval_data,
                                            int64_t batch_size);

// `model` (the input model, in LibTorch on the CPU) evaluated on the same samples as the
// exports; agreement is not set.
FileEvaluation EvaluateModule(const torch::jit::Module& model, const data::Hdf5Dataset& eval_data,
                              int64_t batch_size);

}  // namespace slim::engine
