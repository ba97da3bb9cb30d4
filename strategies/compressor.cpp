#include "strategies/compressor.h"

#include <algorithm>
#include <filesystem>
#include <sstream>

#include "runtime/base/errors.h"
#include "runtime/base/output_file.h"
#include "runtime/models/model_loader.h"
#include "strategies/registry.h"

namespace slim::strategies {

Compressor::Compressor(const config::Config& config, const StrategyEnvironment& environment) {
  for (const auto& registration : RegisteredStrategies()) {
    if (!config.HasStrategy(registration.section) || !registration.create) continue;
    strategies_.push_back(
        registration.create(*config.strategies.at(registration.section), environment));
  }
}

Compressor::Compressor(std::vector<std::unique_ptr<Strategy>> strategies)
    : strategies_(std::move(strategies)) {}

bool Compressor::Trains() const {
  return std::any_of(strategies_.begin(), strategies_.end(),
                     [](const auto& strategy) { return strategy->Trains(); }) ||
         strategies_.empty();
}

CalibrationNeeds Compressor::CalibrationData() const {
  CalibrationNeeds needs;
  for (const auto& strategy : strategies_) {
    const auto wanted = strategy->CalibrationData();
    needs.batch_num = std::max(needs.batch_num, wanted.batch_num);
    needs.batch_size = std::max(needs.batch_size, wanted.batch_size);
  }
  return needs;
}

std::vector<std::string> Compressor::Names() const {
  std::vector<std::string> names;
  for (const auto& strategy : strategies_) names.push_back(strategy->Name());
  std::sort(names.begin(), names.end());
  return names;
}

void Compressor::Prepare(torch::jit::Module& model) {
  ForEach([&](Strategy& strategy) { strategy.OnModelLoaded(model); });
  ForEach([&](Strategy& strategy) { strategy.Prepare(model); });
}

void Compressor::LoadState(const std::map<std::string, checkpoint::TensorMap>& state,
                           torch::jit::Module& model) {
  ForEach([&](Strategy& strategy) {
    const auto found = state.find(strategy.Name());
    if (found != state.end()) strategy.LoadState(found->second, model);
  });
}

std::vector<ParameterGroup> Compressor::ParameterGroups() const {
  std::vector<ParameterGroup> groups;
  for (const auto& strategy : strategies_) {
    for (auto& group : strategy->ParameterGroups()) groups.push_back(std::move(group));
  }
  return groups;
}

std::vector<std::string> Compressor::TappedModules() const {
  std::vector<std::string> paths;
  for (const auto& strategy : strategies_) {
    for (auto& path : strategy->TappedModules()) paths.push_back(std::move(path));
  }
  return paths;
}

void Compressor::OnTrainBegin(HookContext& context) {
  ForEach([&](Strategy& strategy) { strategy.OnTrainBegin(context); });
}

void Compressor::OnTrainEnd(HookContext& context) {
  ForEach([&](Strategy& strategy) { strategy.OnTrainEnd(context); });
}

void Compressor::OnEpochBegin(HookContext& context) {
  ForEach([&](Strategy& strategy) { strategy.OnEpochBegin(context); });
}

void Compressor::OnEpochEnd(HookContext& context) {
  ForEach([&](Strategy& strategy) { strategy.OnEpochEnd(context); });
}

void Compressor::OnStepBegin(HookContext& context) {
  ForEach([&](Strategy& strategy) { strategy.OnStepBegin(context); });
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
  ForEach([&](Strategy& strategy) {
    auto extra = strategy.ExtraLoss(inputs, outputs);
    if (extra.defined()) loss = loss.defined() ? loss + extra : extra;
  });
  return loss;
}

void Compressor::OnBeforeOptimizerStep(HookContext& context) {
  ForEach([&](Strategy& strategy) { strategy.OnBeforeOptimizerStep(context); });
}

void Compressor::OnAfterOptimizerStep(HookContext& context) {
  ForEach([&](Strategy& strategy) { strategy.OnAfterOptimizerStep(context); });
}

bool Compressor::RestructureModel(HookContext& context) {
  bool changed = false;
  ForEach([&](Strategy& strategy) { changed = strategy.RestructureModel(context) || changed; });
  return changed;
}

void Compressor::OnBeforeEvaluation(HookContext& context) {
  ForEach([&](Strategy& strategy) { strategy.OnBeforeEvaluation(context); });
}

void Compressor::OnAfterEvaluation(HookContext& context, const EvalMetrics& metrics) {
  ForEach([&](Strategy& strategy) { strategy.OnAfterEvaluation(context, metrics); });
}

void Compressor::Calibrate(torch::jit::Module& model, const std::vector<torch::Tensor>& batches) {
  ForEach([&](Strategy& strategy) {
    if (!strategy.Trains()) strategy.Calibrate(model, batches);
  });
}

torch::jit::Module Compressor::Finalized(const torch::jit::Module& model) const {
  torch::jit::Module deployable = strategies_.empty() ? model : model.deepcopy();
  for (const auto& strategy : strategies_) strategy->Finalize(deployable);
  return deployable;
}

DeployedModel Compressor::SaveDeployable(const torch::jit::Module& model, const std::string& path,
                                         nlohmann::json* report) const {
  torch::jit::Module deployable = Finalized(model);
  // Serialised in memory first: LibTorch's file writer throws from its destructor when the
  // disk fills, which ends the process; WriteAtomically reports it as an OutputError.
  std::ostringstream serialised;
  deployable.save(serialised);
  files::WriteAtomically(path, serialised.str());
  if (report != nullptr) {
    const auto output_dir = std::filesystem::path(path).parent_path().string();
    for (const auto& strategy : strategies_) strategy->Export(deployable, output_dir, *report);
  }
  return {deployable, models::ParameterCount(deployable), models::StateBytes(deployable),
          static_cast<int64_t>(std::filesystem::file_size(path))};
}

std::map<std::string, checkpoint::TensorMap> Compressor::SaveState() const {
  std::map<std::string, checkpoint::TensorMap> state;
  for (const auto& strategy : strategies_) state[strategy->Name()] = strategy->SaveState();
  return state;
}

}  // namespace slim::strategies
