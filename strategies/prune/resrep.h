// ResRep: channels pruned by decoupling remembering and forgetting (Ding et al., ICCV
// 2021). Every prunable channel group of the channel graph (channel_graph.h) whose
// producers are convolutions followed by a BatchNorm gets a compactor per producer
// (compactors.h). The rows of masked channels lose the objective's gradient and get a
// group-lasso gradient instead, so they shrink to zero while the rest of the network
// learns to do without them. Masks grow in events during training (the channels whose
// merged filters are smallest first) until the merged model's MACs reach flops_target;
// the exported model has each convolution, BatchNorm and compactor merged and the masked
// channels removed: an ordinary smaller TorchScript module.
#pragma once

#include <nlohmann/json.hpp>

#include <map>
#include <string>
#include <vector>

#include "strategies/prune/channel_graph.h"
#include "strategies/prune/compactors.h"
#include "strategies/prune/prune_options.h"
#include "strategies/registry.h"

namespace slim::prune {

class ResRep : public strategies::Strategy {
 public:
  ResRep(const ResRepOptions& options, const strategies::StrategyEnvironment& environment);

  // Section ResRep: structure pass order; runs with Distillation and
  // MultiTeacherDistillation; QuantAware and QuantPost refused (quantize the merged model
  // in a second run).
  static strategies::StrategyRegistration Registration();

  std::string Name() const override;
  // Builds the channel graph, finds the groups whose producers all have a BatchNorm,
  // checks flops_target can be reached keeping num_at_least channels per group, inserts
  // the compactors and logs the groups. Throws ConfigError with the reachable share when
  // flops_target cannot be reached, ModelError when no group can take compactors.
  void Prepare(torch::jit::Module& model) override;
  std::vector<strategies::ParameterGroup> ParameterGroups() const override;
  // Fixes the mask schedule from the run's steps.
  void OnTrainBegin(strategies::HookContext& context) override;
  // The compactors' gradients: masked rows trade the objective's for the lasso's.
  void OnBeforeOptimizerStep(strategies::HookContext& context) override;
  // At each mask event, masks more channels (checked identical on every rank).
  void OnAfterOptimizerStep(strategies::HookContext& context) override;
  void LoadState(const checkpoint::TensorMap& state, torch::jit::Module& model) override;
  checkpoint::TensorMap SaveState() const override;
  // Merges the compactors and removes the masked channels (and those whose compactor rows
  // fell below threshold).
  void Finalize(torch::jit::Module& model) const override;
  // Adds report.json's "resrep": MACs before and after, the target, per group the
  // channels before, masked and kept.
  void Export(const torch::jit::Module& finalized, const std::string& output_dir,
              nlohmann::json& report) const override;

 private:
  // Per group, the masked channels: the `count` smallest by `metric` over all groups,
  // each group keeping num_at_least.
  std::vector<std::vector<int64_t>> SmallestChannels(const std::vector<std::vector<double>>& metric,
                                                     int64_t count) const;
  // MACs of the input model with `removed` channels gone.
  int64_t MacsWithout(const std::vector<std::vector<int64_t>>& removed) const;
  // The fewest channels to mask by `metric` for MACs <= target, searched in [low, high]
  // (high when even that does not reach it).
  int64_t CountForTarget(const std::vector<std::vector<double>>& metric, int64_t low,
                         int64_t high) const;
  // Per group and channel, the summed norms of the compactor rows of `model`.
  std::vector<std::vector<double>> RowNorms(const torch::jit::Module& model) const;
  // Per group and channel, the summed norms of the merged filters (MergedFilterNorms),
  // averaged over the ranks and divided by the group's mean: the mask metric. Collective.
  std::vector<std::vector<double>> MergedNorms(const torch::jit::Module& model,
                                               comm::Communicator& comm) const;
  // How many more channels to mask at the event of `step`: num_per_mask, or (automatic)
  // what the target still needs by `metric` spread over the events left until
  // last_event_.
  int64_t NextIncrement(const std::vector<std::vector<double>>& metric, int64_t step,
                        int64_t candidates) const;
  // The channels that may be masked: every group's beyond num_at_least.
  int64_t CandidateCount(const std::vector<std::vector<double>>& metric) const;
  int64_t MaskedCount() const;

  ResRepOptions options_;
  comm::Communicator& comm_;
  at::Tensor example_;
  ChannelGraph graph_;
  torch::jit::Module input_model_;                   // before compactors, for MAC counts
  std::map<std::string, torch::Tensor> originals_;  // its tensors on the graph's axes
  std::vector<size_t> groups_;                       // indices of the groups with compactors
  std::vector<std::vector<Compactor>> compactors_;   // per entry of groups_
  torch::jit::Module model_;                         // the model being trained
  std::vector<std::vector<int64_t>> masked_;         // per entry of groups_
  bool target_reached_ = false;
  int64_t macs_before_ = 0;
  int64_t before_mask_ = 0;
  int64_t interval_ = 1;
  int64_t last_event_ = 0;  // the automatic schedule reaches the target by this step
};

}  // namespace slim::prune
