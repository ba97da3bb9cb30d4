// Building the optimizer of TrainConfig.optimizer_builder.
#pragma once

#include <torch/optim.h>

#include <memory>
#include <vector>

#include "runtime/config/options.h"

namespace slim::trainer {

// SGD / Momentum (optionally Nesterov) / Adam (L2 weight decay) / AdamW (decoupled weight
// decay) over `parameters`, starting at learning rate `lr`.
std::unique_ptr<torch::optim::Optimizer> BuildOptimizer(const config::OptimizerOptions& options,
                                                        std::vector<torch::Tensor> parameters,
                                                        double lr);

// Sets the learning rate of every parameter group.
void SetLearningRate(torch::optim::Optimizer& optimizer, double lr);

}  // namespace slim::trainer
