// ChannelPrune: whole channels removed from the model before fine-tuning (PaddleSlim ACT's
// ChannelPrune, Torch-Pruning's structured pruning). The channel graph (channel_graph.h)
// finds the groups of coupled channels; each group loses its least important channels
// (channel_importance.h, channel_selection.h) and the model's tensors are replaced by
// smaller ones (channel_removal.h), so the saved model is an ordinary smaller TorchScript
// module. Pruning runs in Prepare, from the loaded model's weights (identical on every
// rank), so distillation's teacher is the unpruned model and QuantAware quantizes the
// pruned one. The kept channel indices are checkpoint state: a resume rebuilds the pruned
// model from the input model and the recorded indices.
#pragma once

#include <nlohmann/json.hpp>

#include <map>
#include <string>

#include "strategies/prune/channel_graph.h"
#include "strategies/prune/channel_removal.h"
#include "strategies/prune/prune_options.h"
#include "strategies/registry.h"

namespace slim::prune {

// Per group of `graph`, the share of its channels `options` removes (pruned_ratio as a
// number or a pattern map, prune_params_name, ignored_layers; 0 = untouched). Throws
// ConfigError for a prune_params_name entry that names no prunable weight (with the
// nearest), ModelError for one whose channels the graph keeps whole (with the reason).
std::vector<double> GroupRatios(const ChannelGraph& graph, const ChannelPruneOptions& options);

class ChannelPrune : public strategies::Strategy {
 public:
  ChannelPrune(const ChannelPruneOptions& options, const strategies::StrategyEnvironment& environment);

  // Section ChannelPrune: structure pass order; runs with QuantAware, Distillation and
  // MultiTeacherDistillation; QuantPost refused (it does not fine-tune).
  static strategies::StrategyRegistration Registration();

  std::string Name() const override;
  // Builds the channel graph, chooses and removes the channels, checks the pruned model
  // runs and that every rank chose the same channels, and logs the groups, the channels
  // kept per layer, the groups that stay whole (and why), and MACs and parameters before
  // and after. Throws ConfigError for selection keys that name nothing prunable and for a
  // group that would lose every channel, ModelError for a named layer the graph cannot
  // prune (naming the operation) and for a pruned model that no longer runs.
  void Prepare(torch::jit::Module& model) override;
  // Rebuilds the pruned model from the input model's tensors and the recorded indices.
  // Throws ModelError when they do not fit the model.
  void LoadState(const checkpoint::TensorMap& state, torch::jit::Module& model) override;
  checkpoint::TensorMap SaveState() const override;
  // Adds report.json's "channel_prune": criterion, groups with channels before and after,
  // groups kept whole, MACs and parameters before and after.
  void Export(const torch::jit::Module& finalized, const std::string& output_dir,
              nlohmann::json& report) const override;

 private:
  // The channels removed from each group at `ratios`.
  std::vector<std::vector<int64_t>> Choose(const torch::jit::Module& model,
                                           const std::vector<double>& ratios) const;
  // `ratios` scaled until the pruned model keeps at most target_macs_ratio of the MACs.
  std::vector<double> RatiosForMacsTarget(const torch::jit::Module& model,
                                          const std::vector<double>& ratios) const;
  void LogSummary(const torch::jit::Module& pruned) const;

  ChannelPruneOptions options_;
  comm::Communicator& comm_;
  at::Tensor example_;
  ChannelGraph graph_;
  std::map<std::string, torch::Tensor> originals_;
  KeptChannels kept_;
  nlohmann::json summary_;
};

}  // namespace slim::prune
