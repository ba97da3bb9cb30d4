#include "strategies/distill/teacher.h"

namespace slim::distill {

Teacher::Teacher(torch::jit::Module model, std::string reference,
                 const std::vector<std::string>& paths, c10::ScalarType precision)
    : model_(std::move(model)), reference_(std::move(reference)), precision_(precision) {
  taps_ = std::make_unique<FeatureTaps>(model_, paths, "teacher " + reference_);
  // Frozen leaves: a cloned model's parameters are outputs of the copy.
  for (auto module : model_.modules()) {
    for (const auto& parameter : module.named_parameters(/*recurse=*/false)) {
      module.setattr(parameter.name, parameter.value.detach());
    }
  }
  model_.eval();
  if (precision_ != torch::kFloat32) model_.to(precision_);
}

std::vector<torch::Tensor> Teacher::Features(const torch::Tensor& inputs) {
  torch::NoGradGuard no_grad;
  if (inputs.device() != device_) {
    model_.to(inputs.device());
    device_ = inputs.device();
  }
  const auto input = inputs.is_floating_point() ? inputs.to(precision_) : inputs;
  auto features = taps_->Take(model_.forward({input}).toTensor());
  for (auto& feature : features) feature = feature.to(torch::kFloat32);
  return features;
}

}  // namespace slim::distill
