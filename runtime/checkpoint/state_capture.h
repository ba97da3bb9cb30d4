// Copying training state between the live model/optimizer and a CheckpointState.
#pragma once

#include <torch/optim.h>
#include <torch/script.h>

#include <functional>
#include <string>
#include <vector>

#include "runtime/checkpoint/checkpoint_state.h"

namespace slim::checkpoint {

// Copies the model's parameters and buffers (CPU, detached) into `state`.
void CaptureModel(const torch::jit::Module& model, CheckpointState& state);

// Copies the optimizer's per-parameter state into `state`, keyed by the parameter names
// of `model`. `type` is the TrainConfig optimizer type (SGD, Momentum, Adam, AdamW).
void CaptureOptimizer(const torch::optim::Optimizer& optimizer, const std::string& type,
                      const torch::jit::Module& model, CheckpointState& state);

// Called with each named tensor of one parameter's optimizer state.
using StateTensorVisitor = std::function<void(const std::string& name, const torch::Tensor&)>;

// Visits the tensors of one parameter's optimizer state, without copying, under the names
// CaptureParamState gives them. Throws as CaptureParamState does.
void VisitParamState(const torch::optim::OptimizerParamState& state, const std::string& name,
                     const StateTensorVisitor& visit);

// One parameter's optimizer state as named CPU tensors: SGD/Momentum "momentum_buffer";
// Adam/AdamW "step" (int64 scalar), "exp_avg", "exp_avg_sq" (and "max_exp_avg_sq" with
// amsgrad). Throws ModelError naming parameter `name` for any other state type.
TensorMap CaptureParamState(const torch::optim::OptimizerParamState& state,
                            const std::string& name);

// The inverse of CaptureParamState for optimizer `type` (SGD, Momentum, Adam, AdamW), with
// the tensors moved to `device`.
std::unique_ptr<torch::optim::OptimizerParamState> RestoreParamState(const TensorMap& tensors,
                                                                    const std::string& type,
                                                                    const torch::Device& device);

// How the checkpoint's model state differs from `model`: one line per missing, extra
// or differently shaped/typed tensor. Empty when they match.
std::vector<std::string> ModelDifferences(const CheckpointState& state,
                                          const torch::jit::Module& model);

// Loads every parameter and buffer of the checkpoint into `model`. REQUIRES:
// ModelDifferences(state, model) is empty.
void RestoreModel(const CheckpointState& state, torch::jit::Module& model);

// Loads the tensors whose name, shape and dtype match (--resume-weights-only); returns
// one line per tensor left as it was.
std::vector<std::string> RestoreMatchingWeights(const CheckpointState& state,
                                                torch::jit::Module& model);

// Rebuilds the optimizer's per-parameter state from `state`. REQUIRES: the optimizer was
// built over `model`'s trainable parameters, of the checkpoint's optimizer type.
void RestoreOptimizer(const CheckpointState& state, torch::optim::Optimizer& optimizer,
                      const torch::jit::Module& model);

}  // namespace slim::checkpoint
