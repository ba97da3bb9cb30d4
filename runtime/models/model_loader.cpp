#include "runtime/models/model_loader.h"

#include <fstream>
#include <sstream>

#include "runtime/base/errors.h"
#include "runtime/base/text.h"

namespace slim::models {

namespace {
constexpr const char* kBuiltinPrefix = "builtin:";
}  // namespace

torch::jit::Module LoadModel(const std::string& reference, const ModelShape& shape,
                             const std::string& config_key) {
  if (reference.rfind(kBuiltinPrefix, 0) == 0) {
    return BuildBuiltinModel(reference.substr(std::char_traits<char>::length(kBuiltinPrefix)),
                             shape);
  }
  if (!std::ifstream(reference)) {
    throw ModelError("model file '" + reference +
                     "' (" + config_key + ") cannot be read: check the path, or use builtin:resnet20 "
                     "and friends");
  }
  torch::jit::Module model;
  try {
    model = torch::jit::load(reference, torch::kCPU);
  } catch (const c10::Error& e) {
    throw ModelError("'" + reference +
                     "' (" + config_key + ") is not a TorchScript file LibTorch can load; export it "
                     "with torch.jit.script(model).save(path). LibTorch said: " +
                     e.what_without_backtrace());
  }
  if (!model.find_method("forward")) {
    throw ModelError("'" + reference + "' has no forward() method");
  }
  model.train();
  return model;
}

void CheckModelOutput(torch::jit::Module& model, const std::string& reference,
                      const torch::Tensor& example, int64_t num_classes) {
  torch::NoGradGuard no_grad;
  EvalModeGuard eval_mode(model);
  c10::IValue output;
  try {
    output = model.forward({example});
  } catch (const std::exception& e) {
    throw ModelError("model '" + reference + "' failed on an input of shape " +
                     ShapeText(example.sizes()) + " (dtype " + c10::toString(example.scalar_type()) +
                     "): " + e.what() + " Check Global.input_shape and the data.");
  }
  if (!output.isTensor()) {
    throw ModelError("model '" + reference + "' returned " + output.tagKind() +
                     "; slim-train needs forward() to return logits [batch, classes]");
  }
  const auto logits = output.toTensor();
  if (logits.dim() != 2 || logits.size(0) != example.size(0) || logits.size(1) != num_classes) {
    throw ModelError("model '" + reference + "' returned shape " + ShapeText(logits.sizes()) +
                     " for a batch of " + std::to_string(example.size(0)) + "; the data has " +
                     std::to_string(num_classes) + " classes, so logits must be [" +
                     std::to_string(example.size(0)) + ", " + std::to_string(num_classes) + "]");
  }
}

EvalModeGuard::EvalModeGuard(torch::jit::Module& model) {
  for (const auto& module : model.modules()) {
    if (module.hasattr("training")) modes_.emplace_back(module, module.is_training());
  }
  model.eval();
}

EvalModeGuard::~EvalModeGuard() {
  for (auto& [module, training] : modes_) module.setattr("training", training);
}

std::vector<torch::Tensor> TrainableParameters(const torch::jit::Module& model) {
  std::vector<torch::Tensor> parameters;
  for (const auto& parameter : model.parameters()) {
    if (parameter.requires_grad()) parameters.push_back(parameter);
  }
  return parameters;
}

int64_t ParameterCount(const torch::jit::Module& model) {
  int64_t count = 0;
  for (const auto& parameter : model.parameters()) count += parameter.numel();
  return count;
}

int64_t StateBytes(const torch::jit::Module& model) {
  int64_t bytes = 0;
  for (const auto& parameter : model.parameters()) bytes += parameter.nbytes();
  for (const auto& buffer : model.buffers()) bytes += buffer.nbytes();
  return bytes;
}

}  // namespace slim::models
