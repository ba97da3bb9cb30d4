// UnstructurePrune: individual weights zeroed by magnitude (ACT's UnstructurePrune). With
// prune_strategy none, one mask from the weights when training begins (ratio: the
// smallest `ratio` of them, per weight or ranked together; threshold: |w| < threshold),
// kept through fine-tuning; with gmp, new masks from the current weights each time the
// schedule (gmp_schedule.h) raises the ratio. Pruned weights stay zero (masked_pruning.h).
#pragma once

#include "strategies/prune/gmp_schedule.h"
#include "strategies/prune/masked_pruning.h"
#include "strategies/prune/prune_options.h"
#include "strategies/registry.h"

namespace slim::prune {

// The weights `options` select in `model` (prune_params_type, skip_first_last,
// skip_params). Throws ConfigError when none is left.
std::vector<PrunableWeight> SelectUnstructuredWeights(const torch::jit::Module& model,
                                                      const UnstructurePruneOptions& options);

class UnstructurePrune : public MaskedPruning {
 public:
  UnstructurePrune(const UnstructurePruneOptions& options,
                   const strategies::StrategyEnvironment& environment);

  // Section UnstructurePrune; runs with QuantAware, Distillation and
  // MultiTeacherDistillation.
  static strategies::StrategyRegistration Registration();

  // Selects the weights (SelectUnstructuredWeights).
  void Prepare(torch::jit::Module& model) override;
  // Sets the one-shot masks, or resolves the GMP plan for the run's steps and sets the
  // masks due at its step (also after a resume).
  void OnTrainBegin(strategies::HookContext& context) override;

 protected:
  void UpdateSchedule(strategies::HookContext& context) override;
  void SaveScheduleState(checkpoint::TensorMap& state) const override;
  void LoadScheduleState(const checkpoint::TensorMap& state) override;

 private:
  void Prune(strategies::HookContext& context, double ratio);

  UnstructurePruneOptions options_;
  GmpPlan plan_;
  double ratio_ = 0;  // the ratio the current masks prune (0: none yet)
};

}  // namespace slim::prune
