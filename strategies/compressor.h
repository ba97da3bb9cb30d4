// Runs the configured strategies together: builds them from the config's sections through
// the registry, applies their graph passes in the registered pass order and fans every
// hook out to each of them, in that order. The contract of each call (which rank, which
// may communicate) is the Strategy's, in strategy.h.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "runtime/comm/communicator.h"
#include "runtime/config/options.h"
#include "strategies/strategy.h"

namespace slim::strategies {

// What the finalized model written by SaveDeployable holds.
struct DeployedModel {
  torch::jit::Module module;  // the finalized copy that was saved
  int64_t parameters = 0;   // elements of its parameters
  int64_t state_bytes = 0;  // bytes of its parameters and buffers
  int64_t file_bytes = 0;   // size of the written file
};

class Compressor {
 public:
  // The strategies of `config`'s sections; none means plain training.
  Compressor(const config::Config& config, const StrategyEnvironment& environment);
  // The given strategies, in pass order (tests and tools that build their own).
  explicit Compressor(std::vector<std::unique_ptr<Strategy>> strategies);

  bool Empty() const { return strategies_.empty(); }
  // True unless every strategy only calibrates.
  bool Trains() const;
  // The calibration data the strategies that do not train ask for (the largest).
  CalibrationNeeds CalibrationData() const;
  // Names of the strategies, sorted (as checkpoints record them).
  std::vector<std::string> Names() const;

  void Prepare(torch::jit::Module& model);
  void LoadState(const std::map<std::string, checkpoint::TensorMap>& state,
                 torch::jit::Module& model);
  std::vector<ParameterGroup> ParameterGroups() const;
  std::vector<std::string> TappedModules() const;

  void OnTrainBegin(HookContext& context);
  void OnTrainEnd(HookContext& context);
  void OnEpochBegin(HookContext& context);
  void OnEpochEnd(HookContext& context);
  void OnStepBegin(HookContext& context);
  // The loss of one micro-batch: the labels' cross-entropy on `outputs`, weighted, plus
  // the strategies' terms (distillation).
  torch::Tensor Loss(const torch::Tensor& inputs, const torch::Tensor& outputs,
                     const torch::Tensor& labels);
  void OnBeforeOptimizerStep(HookContext& context);
  void OnAfterOptimizerStep(HookContext& context);
  // True when any strategy replaced parameters (every strategy's hook runs).
  bool RestructureModel(HookContext& context);
  void OnBeforeEvaluation(HookContext& context);
  void OnAfterEvaluation(HookContext& context, const EvalMetrics& metrics);
  void Calibrate(torch::jit::Module& model, const std::vector<torch::Tensor>& batches);

  // A finalized copy of `model`: what SaveDeployable writes.
  torch::jit::Module Finalized(const torch::jit::Module& model) const;

  // Rank 0: saves a finalized copy of `model` to `path` (model.pt, model_best.pt) through
  // a temporary file renamed into place, so a crash never leaves a partial file; with
  // `report` given the strategies also write their exports next to it and add to it.
  DeployedModel SaveDeployable(const torch::jit::Module& model, const std::string& path,
                               nlohmann::json* report) const;

  // Rank 0: per strategy name, its checkpoint state.
  std::map<std::string, checkpoint::TensorMap> SaveState() const;

 private:
  // Calls `hook` on every strategy in pass order.
  template <typename Hook>
  void ForEach(Hook hook) {
    for (auto& strategy : strategies_) hook(*strategy);
  }

  std::vector<std::unique_ptr<Strategy>> strategies_;
};

}  // namespace slim::strategies
