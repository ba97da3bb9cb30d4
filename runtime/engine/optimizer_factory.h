// Building the optimizer of TrainConfig.optimizer_builder.
#pragma once

#include <torch/optim.h>

#include <memory>
#include <vector>

#include "runtime/config/options.h"
#include "strategies/strategy.h"

namespace slim::engine {

// SGD / Momentum (optionally Nesterov) / Adam (L2 weight decay) / AdamW (decoupled weight
// decay) over `parameters`, starting at learning rate `lr`.
std::unique_ptr<torch::optim::Optimizer> BuildOptimizer(const config::OptimizerOptions& options,
                                                        std::vector<torch::Tensor> parameters,
                                                        double lr);

// `parameters` without the tensors of `groups`.
std::vector<torch::Tensor> WithoutGroups(const std::vector<torch::Tensor>& parameters,
                                         const std::vector<strategies::ParameterGroup>& groups);

// Adds each strategy group as a parameter group of its own: the optimizer's settings
// with the group's learning rate and weight decay.
void AddParameterGroups(torch::optim::Optimizer& optimizer,
                        const std::vector<strategies::ParameterGroup>& groups);

// Points the optimizer at the model's current tensors after a strategy changed its
// structure: group 0 holds `parameters` without the tensors of `groups`, group i + 1 holds
// groups[i]. The state of tensors still present is kept, the rest is dropped.
// REQUIRES: the optimizer has 1 + groups.size() parameter groups.
void RepointParameterGroups(torch::optim::Optimizer& optimizer,
                            const std::vector<torch::Tensor>& parameters,
                            const std::vector<strategies::ParameterGroup>& groups);

// Every parameter of every group of `optimizer`, in group order.
std::vector<torch::Tensor> OptimizerParameters(const torch::optim::Optimizer& optimizer);

// Sets the learning rate of the first parameter group (the model's); strategy groups keep
// their own rate.
void SetLearningRate(torch::optim::Optimizer& optimizer, double lr);

}  // namespace slim::engine
