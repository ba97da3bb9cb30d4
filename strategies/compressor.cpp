#include "strategies/compressor.h"

#include <torch/torch.h>

#include <algorithm>

#include "strategies/distill/distillation.h"
#include "strategies/quant/quant_aware.h"
#include "strategies/quant/quant_post.h"

namespace slim::strategies {

Compressor::Compressor(const config::Config& config, comm::Communicator& comm,
                       const JobContext& context) {
  // Graph-pass order: quantization, then distillation taps (on the quantized student).
  if (config.quant_aware) {
    strategies_.push_back(std::make_unique<quant::QuantAware>(*config.quant_aware, comm));
  }
  if (config.quant_post) {
    strategies_.push_back(std::make_unique<quant::QuantPost>(*config.quant_post, comm));
  }
  if (config.distill) {
    strategies_.push_back(std::make_unique<distill::Distillation>(*config.distill, context));
  }
}

bool Compressor::Trains() const {
  return std::any_of(strategies_.begin(), strategies_.end(),
                     [](const auto& strategy) { return strategy->Trains(); }) ||
         strategies_.empty();
}

std::vector<std::string> Compressor::Names() const {
  std::vector<std::string> names;
  for (const auto& strategy : strategies_) names.push_back(strategy->Name());
  std::sort(names.begin(), names.end());
  return names;
}

void Compressor::Prepare(torch::jit::Module& model) {
  for (auto& strategy : strategies_) strategy->OnModelLoaded(model);
  for (auto& strategy : strategies_) strategy->Prepare(model);
}

torch::Tensor Compressor::Loss(const torch::Tensor& inputs, const torch::Tensor& outputs,
                               const torch::Tensor& labels) {
  double label_weight = 1;
  for (const auto& strategy : strategies_) {
    label_weight = std::min(label_weight, strategy->LabelLossWeight());
  }
  torch::Tensor loss;
  if (label_weight > 0) {
    loss = torch::nn::functional::cross_entropy(outputs, labels);
    if (label_weight != 1) loss = loss * label_weight;
  }
  for (auto& strategy : strategies_) {
    auto extra = strategy->ExtraLoss(inputs, outputs);
    if (extra.defined()) loss = loss.defined() ? loss + extra : extra;
  }
  return loss;
}

std::vector<ParameterGroup> Compressor::ParameterGroups() const {
  std::vector<ParameterGroup> groups;
  for (const auto& strategy : strategies_) {
    for (auto& group : strategy->ParameterGroups()) groups.push_back(std::move(group));
  }
  return groups;
}

void Compressor::OnBeforeOptimizerStep(int64_t step) {
  for (auto& strategy : strategies_) strategy->OnBeforeOptimizerStep(step);
}

void Compressor::Calibrate(torch::jit::Module& model, const std::vector<torch::Tensor>& batches) {
  for (auto& strategy : strategies_) {
    if (!strategy->Trains()) strategy->Calibrate(model, batches);
  }
}

void Compressor::SaveDeployable(const torch::jit::Module& model, const std::string& path,
                                const std::string& output_dir, nlohmann::json* report) const {
  torch::jit::Module deployable = strategies_.empty() ? model : model.deepcopy();
  for (const auto& strategy : strategies_) strategy->Finalize(deployable);
  deployable.save(path);
  if (output_dir.empty() || report == nullptr) return;
  for (const auto& strategy : strategies_) strategy->Export(deployable, output_dir, *report);
}

std::map<std::string, checkpoint::TensorMap> Compressor::SaveState() const {
  std::map<std::string, checkpoint::TensorMap> state;
  for (const auto& strategy : strategies_) state[strategy->Name()] = strategy->SaveState();
  return state;
}

void Compressor::LoadState(const std::map<std::string, checkpoint::TensorMap>& state) {
  for (auto& strategy : strategies_) {
    const auto found = state.find(strategy->Name());
    if (found != state.end()) strategy->LoadState(found->second);
  }
}

}  // namespace slim::strategies
