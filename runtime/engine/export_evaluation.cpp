#include "runtime/engine/export_evaluation.h"

#include <algorithm>
#include <numeric>

#include "data/batch_transform.h"
#include "export/onnx_runtime.h"

namespace slim::engine {

namespace {

// Samples per ONNX Runtime call: bounds the temporary input file.
constexpr int64_t kOnnxChunk = 4096;

struct EvalInputs {
  std::vector<torch::Tensor> batches;
  torch::Tensor labels;
};

EvalInputs ReadEvalInputs(const data::Hdf5Dataset& eval_data, int64_t batch_size) {
  const int64_t samples = std::min(eval_data.info().size, kExportEvalSamples);
  const data::BatchTransform transform(eval_data.info(), data::AugmentSettings{});
  EvalInputs inputs;
  std::vector<int64_t> all(samples);
  std::iota(all.begin(), all.end(), 0);
  for (int64_t begin = 0; begin < samples; begin += batch_size) {
    const std::vector<int64_t> indices(all.begin() + begin,
                                       all.begin() + std::min(samples, begin + batch_size));
    inputs.batches.push_back(transform.Apply(eval_data.ReadInputs(indices), indices, 0));
  }
  inputs.labels = eval_data.Labels(all);
  return inputs;
}

torch::Tensor ModulePredictions(torch::jit::Module module, const EvalInputs& inputs) {
  module.eval();
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> predictions;
  for (const auto& batch : inputs.batches) {
    predictions.push_back(module.forward({batch}).toTensor().argmax(1));
  }
  return torch::cat(predictions);
}

std::optional<torch::Tensor> OnnxPredictions(const std::string& path, const EvalInputs& inputs,
                                             std::string* why_not) {
  const auto all = torch::cat(inputs.batches);
  std::vector<torch::Tensor> predictions;
  for (int64_t begin = 0; begin < all.size(0); begin += kOnnxChunk) {
    const auto output = exporting::RunOnnx(
        path, all.slice(0, begin, std::min(all.size(0), begin + kOnnxChunk)),
        at::get_num_threads(), why_not);
    if (!output) return std::nullopt;
    predictions.push_back(output->argmax(1));
  }
  return torch::cat(predictions);
}

}  // namespace

std::vector<FileEvaluation> EvaluateExports(const std::vector<exporting::ExportedFile>& files,
                                            const data::Hdf5Dataset& eval_data,
                                            int64_t batch_size) {
  const auto inputs = ReadEvalInputs(eval_data, batch_size);
  std::vector<FileEvaluation> evaluations;
  torch::Tensor reference;
  for (const auto& file : files) {
    FileEvaluation evaluation;
    std::optional<torch::Tensor> predictions;
    if (file.format == "onnx") {
      predictions = OnnxPredictions(file.path, inputs, &evaluation.not_evaluated);
    } else {
      predictions = ModulePredictions(torch::jit::load(file.path, torch::kCPU), inputs);
    }
    if (predictions) {
      if (!reference.defined()) reference = *predictions;
      evaluation.samples = predictions->size(0);
      evaluation.top1 = predictions->eq(inputs.labels).to(torch::kDouble).mean().item<double>();
      evaluation.agreement = predictions->eq(reference).to(torch::kDouble).mean().item<double>();
    }
    evaluations.push_back(evaluation);
  }
  return evaluations;
}

FileEvaluation EvaluateModule(const torch::jit::Module& model, const data::Hdf5Dataset& eval_data,
                              int64_t batch_size) {
  const auto inputs = ReadEvalInputs(eval_data, batch_size);
  auto copy = model.clone();
  copy.to(torch::kCPU);
  const auto predictions = ModulePredictions(copy, inputs);
  FileEvaluation evaluation;
  evaluation.samples = predictions.size(0);
  evaluation.top1 = predictions.eq(inputs.labels).to(torch::kDouble).mean().item<double>();
  return evaluation;
}

}  // namespace slim::engine
