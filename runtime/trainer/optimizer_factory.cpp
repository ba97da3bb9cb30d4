#include "runtime/trainer/optimizer_factory.h"

namespace slim::trainer {

std::unique_ptr<torch::optim::Optimizer> BuildOptimizer(const config::OptimizerOptions& options,
                                                        std::vector<torch::Tensor> parameters,
                                                        double lr) {
  if (options.type == "Adam") {
    return std::make_unique<torch::optim::Adam>(
        parameters, torch::optim::AdamOptions(lr)
                        .betas({options.beta1, options.beta2})
                        .eps(options.epsilon)
                        .weight_decay(options.weight_decay));
  }
  if (options.type == "AdamW") {
    return std::make_unique<torch::optim::AdamW>(
        parameters, torch::optim::AdamWOptions(lr)
                        .betas({options.beta1, options.beta2})
                        .eps(options.epsilon)
                        .weight_decay(options.weight_decay));
  }
  return std::make_unique<torch::optim::SGD>(parameters,
                                             torch::optim::SGDOptions(lr)
                                                 .momentum(options.momentum)
                                                 .nesterov(options.nesterov)
                                                 .weight_decay(options.weight_decay));
}

void SetLearningRate(torch::optim::Optimizer& optimizer, double lr) {
  for (auto& group : optimizer.param_groups()) group.options().set_lr(lr);
}

}  // namespace slim::trainer
