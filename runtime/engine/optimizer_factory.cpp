#include "runtime/engine/optimizer_factory.h"

#include <algorithm>
#include <set>
#include <string>

#include "runtime/base/torch_compat.h"

namespace slim::engine {

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

std::vector<torch::Tensor> WithoutGroups(const std::vector<torch::Tensor>& parameters,
                                         const std::vector<strategies::ParameterGroup>& groups) {
  std::vector<torch::Tensor> remaining;
  for (const auto& parameter : parameters) {
    const bool grouped = std::any_of(groups.begin(), groups.end(), [&](const auto& group) {
      return std::any_of(group.parameters.begin(), group.parameters.end(),
                         [&](const torch::Tensor& member) { return member.is_same(parameter); });
    });
    if (!grouped) remaining.push_back(parameter);
  }
  return remaining;
}

void AddParameterGroups(torch::optim::Optimizer& optimizer,
                        const std::vector<strategies::ParameterGroup>& groups) {
  for (const auto& group : groups) {
    auto options = optimizer.param_groups().front().options().clone();
    options->set_lr(group.learning_rate);
    if (auto* sgd = dynamic_cast<torch::optim::SGDOptions*>(options.get())) {
      sgd->weight_decay(group.weight_decay);
    } else if (auto* adam = dynamic_cast<torch::optim::AdamOptions*>(options.get())) {
      adam->weight_decay(group.weight_decay);
    } else if (auto* adamw = dynamic_cast<torch::optim::AdamWOptions*>(options.get())) {
      adamw->weight_decay(group.weight_decay);
    }
    optimizer.add_param_group(torch::optim::OptimizerParamGroup(group.parameters, std::move(options)));
  }
}

void RepointParameterGroups(torch::optim::Optimizer& optimizer,
                            const std::vector<torch::Tensor>& parameters,
                            const std::vector<strategies::ParameterGroup>& groups) {
  auto& param_groups = optimizer.param_groups();
  param_groups.at(0).params() = WithoutGroups(parameters, groups);
  for (size_t i = 0; i < groups.size(); ++i) param_groups.at(i + 1).params() = groups[i].parameters;
  std::set<std::string> present;
  for (const auto& group : param_groups) {
    for (const auto& parameter : group.params()) present.insert(compat::OptimizerStateKey(parameter));
  }
  auto& state = optimizer.state();
  for (auto entry = state.begin(); entry != state.end();) {
    entry = present.count(entry->first) ? std::next(entry) : state.erase(entry);
  }
}

std::vector<torch::Tensor> OptimizerParameters(const torch::optim::Optimizer& optimizer) {
  std::vector<torch::Tensor> parameters;
  for (const auto& group : optimizer.param_groups()) {
    parameters.insert(parameters.end(), group.params().begin(), group.params().end());
  }
  return parameters;
}

void SetLearningRate(torch::optim::Optimizer& optimizer, double lr) {
  optimizer.param_groups().front().options().set_lr(lr);
}

}  // namespace slim::engine
