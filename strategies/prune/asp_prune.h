// ASPPrune: 2:4 structured sparsity (ACT's ASPPrune, NVIDIA's Automatic SParsity): when
// training begins, of every four consecutive input channels of a weight two are kept by
// magnitude (magnitude_masks.h), and the masks stay through fine-tuning (masked_pruning.h).
// Weights whose input dimension is not a multiple of 4 are skipped and listed.
#pragma once

#include "strategies/prune/masked_pruning.h"
#include "strategies/prune/prune_options.h"
#include "strategies/registry.h"

namespace slim::prune {

class AspPrune : public MaskedPruning {
 public:
  AspPrune(const AspPruneOptions& options, const strategies::StrategyEnvironment& environment);

  // Section ASPPrune; runs with QuantAware, Distillation and MultiTeacherDistillation.
  static strategies::StrategyRegistration Registration();

  // Selects the weights (prune_params_name, skip_params, the 2:4 shape rule); throws
  // ConfigError for a name that is no weight and when no weight is left.
  void Prepare(torch::jit::Module& model) override;
  // Sets the masks, unless a resumed checkpoint brought them.
  void OnTrainBegin(strategies::HookContext& context) override;
  // Adds the skipped weights and why to the sparsity report.
  void Export(const torch::jit::Module& finalized, const std::string& output_dir,
              nlohmann::json& report) const override;

 private:
  AspPruneOptions options_;
  std::vector<std::pair<std::string, std::string>> skipped_;  // weight, why
};

}  // namespace slim::prune
