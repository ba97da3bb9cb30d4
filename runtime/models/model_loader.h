// Turning Global.model into a trainable TorchScript module.
#pragma once

#include <torch/script.h>

#include <string>

#include "runtime/models/builtin_models.h"

namespace slim::models {

// `reference` is "builtin:<name>" (built for `shape`) or the path of a TorchScript file;
// `config_key` is where the config names it (Global.model, Distillation.teacher_model),
// for messages. Throws ConfigError for an unknown builtin, ModelError for a missing or
// unreadable file or a module without forward(). The module is in training mode on the
// CPU.
torch::jit::Module LoadModel(const std::string& reference, const ModelShape& shape,
                             const std::string& config_key);

// Runs forward on `example` (a batch of one or more samples) in eval mode without
// gradients and checks that it returns logits [batch, shape.num_classes]. Restores
// each module's mode. Throws ModelError naming the model, the input shape and what came back.
void CheckModelOutput(torch::jit::Module& model, const std::string& reference,
                      const torch::Tensor& example, int64_t num_classes);

// Puts every module of a model in eval mode for its lifetime, then gives each module its
// own mode back (a strategy may hold some modules in eval mode while training).
class EvalModeGuard {
 public:
  explicit EvalModeGuard(torch::jit::Module& model);
  ~EvalModeGuard();
  EvalModeGuard(const EvalModeGuard&) = delete;
  EvalModeGuard& operator=(const EvalModeGuard&) = delete;

 private:
  std::vector<std::pair<torch::jit::Module, bool>> modes_;
};

// Trainable parameters, in registration order (the same on every rank).
std::vector<torch::Tensor> TrainableParameters(const torch::jit::Module& model);

// Number of elements in all parameters, and bytes of all parameters and buffers.
int64_t ParameterCount(const torch::jit::Module& model);
int64_t StateBytes(const torch::jit::Module& model);

}  // namespace slim::models
