// Runs the configured strategies together: builds them from the config's sections,
// applies their graph passes in a fixed order (pruning, then quantization, then
// distillation taps) and fans the training callbacks out to each.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "runtime/comm/communicator.h"
#include "runtime/config/options.h"
#include "strategies/strategy.h"

namespace slim::strategies {

class Compressor {
 public:
  // The strategies of `config`'s sections; none means plain training.
  Compressor(const config::Config& config, comm::Communicator& comm, const JobContext& context);

  bool Empty() const { return strategies_.empty(); }
  // True unless every strategy only calibrates.
  bool Trains() const;
  // Names of the strategies, sorted (as checkpoints record them).
  std::vector<std::string> Names() const;

  void Prepare(torch::jit::Module& model);
  // The loss of one micro-batch: the labels' cross-entropy on `outputs`, weighted, plus
  // the strategies' terms (distillation).
  torch::Tensor Loss(const torch::Tensor& inputs, const torch::Tensor& outputs,
                     const torch::Tensor& labels);
  std::vector<ParameterGroup> ParameterGroups() const;
  void OnBeforeOptimizerStep(int64_t step);
  void Calibrate(torch::jit::Module& model, const std::vector<torch::Tensor>& batches);

  // Saves a finalized copy of `model` to `path` (model.pt, model_best.pt); with
  // `output_dir` set the strategies also write their exports there and add to `report`.
  void SaveDeployable(const torch::jit::Module& model, const std::string& path,
                      const std::string& output_dir, nlohmann::json* report) const;

  // Per strategy name, its checkpoint state; and the restore of it.
  std::map<std::string, checkpoint::TensorMap> SaveState() const;
  void LoadState(const std::map<std::string, checkpoint::TensorMap>& state);

 private:
  std::vector<std::unique_ptr<Strategy>> strategies_;
};

}  // namespace slim::strategies
