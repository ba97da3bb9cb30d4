// ChannelPrune: whole channels removed from the model (PaddleSlim ACT's ChannelPrune,
// Torch-Pruning's structured pruning). The channel graph (channel_graph.h) finds the
// groups of coupled channels; each group loses its least important channels
// (channel_importance.h, channel_selection.h) and the model's tensors are replaced by
// smaller ones (channel_removal.h), so the saved model is an ordinary smaller TorchScript
// module. One-shot pruning runs in Prepare, from the loaded model's weights (identical on
// every rank), so distillation's teacher is the unpruned model and QuantAware quantizes
// the pruned one; an iterative schedule prunes its first rise there and the others during
// training (RestructureModel). The kept channel indices and the rises done are checkpoint
// state: a resume rebuilds the pruned model from the input model and the recorded indices.
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
  // MultiTeacherDistillation (with prune_schedule one_shot: an iterative schedule changes
  // the shapes their set-up saw); QuantPost refused (it does not fine-tune).
  static strategies::StrategyRegistration Registration();

  std::string Name() const override;
  // Makes scripted convolutions read `groups` from an attribute (graph/conv_groups.h),
  // builds the channel graph, removes the channels of the first rise (all of them with
  // one_shot), checks the pruned model runs and that every rank chose the same channels,
  // and logs the groups, the channels kept per layer, the groups that stay whole (and
  // why), and MACs and parameters before and after. Throws ConfigError for selection keys
  // that name nothing prunable and a MACs target pruning cannot meet, ModelError for a
  // named layer the graph cannot prune (naming the operation) and for a pruned model that
  // no longer runs.
  void Prepare(torch::jit::Module& model) override;
  // iterative: at each later rise's step, removes more channels, ranked by the trained
  // weights, carrying the optimizer's state of the channels that stay.
  bool RestructureModel(strategies::HookContext& context) override;
  // Rebuilds the pruned model from the input model's tensors and the recorded indices.
  // Throws ModelError when they do not fit the model.
  void LoadState(const checkpoint::TensorMap& state, torch::jit::Module& model) override;
  checkpoint::TensorMap SaveState() const override;
  // Adds report.json's "channel_prune": criterion, groups with channels before and after,
  // groups kept whole, MACs and parameters before and after.
  void Export(const torch::jit::Module& finalized, const std::string& output_dir,
              nlohmann::json& report) const override;

 private:
  int64_t Rises() const;
  // The channels removed from each group at `ratios`, ranked by `tensors` (full size);
  // channels already removed go first.
  std::vector<std::vector<int64_t>> Choose(const std::map<std::string, torch::Tensor>& tensors,
                                           const std::vector<double>& ratios) const;
  // `ratios_` scaled until the pruned model keeps at most target_macs_ratio of the MACs.
  std::vector<double> RatiosForMacsTarget(const torch::jit::Module& model,
                                          const std::vector<double>& ratios) const;
  // Removes the channels of rise `rise` (1-based) from `model`, ranked by its current
  // weights; `optimizer` (may be null) keeps its state of the remaining channels.
  void Rise(torch::jit::Module& model, int64_t rise, torch::optim::Optimizer* optimizer);
  // Per group, the channels the kept indices have removed so far.
  std::vector<std::vector<int64_t>> RemovedSoFar() const;
  // Rewrites the report's figures after the model changed.
  void Summarise(const torch::jit::Module& model);
  // Logs the groups with the channels each layer keeps, the groups kept whole, then
  // LogFigures.
  void LogGroups() const;
  // Logs MACs and parameters before and after.
  void LogFigures() const;

  ChannelPruneOptions options_;
  comm::Communicator& comm_;
  at::Tensor example_;
  ChannelGraph graph_;
  std::map<std::string, torch::Tensor> originals_;
  std::vector<double> ratios_;  // per group, the final ratio
  int64_t rises_done_ = 0;
  int64_t macs_before_ = 0;
  int64_t parameters_before_ = 0;
  KeptChannels kept_;
  nlohmann::json summary_;
};

}  // namespace slim::prune
