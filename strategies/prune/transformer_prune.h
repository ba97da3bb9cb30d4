// TransformerPrune: attention heads and feed-forward hidden units removed from the
// Transformer encoder layers (PaddleSlim ACT's TransformerPrune) of the builtin transformer
// and of PyTorch's scripted nn.TransformerEncoder. Pruning is one-shot, in Prepare, before
// training fine-tunes the smaller model: distillation's teacher is the unpruned model and
// QuantAware quantizes the pruned one. The kept indices are checkpoint state: a resume
// rebuilds the pruned model from the input model and the recorded indices.
#pragma once

#include <nlohmann/json.hpp>

#include <map>
#include <string>
#include <vector>

#include "strategies/prune/encoder_importance.h"
#include "strategies/prune/encoder_surgery.h"
#include "strategies/prune/prune_options.h"
#include "strategies/registry.h"

namespace slim::prune {

class TransformerPrune : public strategies::Strategy {
 public:
  TransformerPrune(const TransformerPruneOptions& options,
                   const strategies::StrategyEnvironment& environment);

  // Section TransformerPrune: structure pass order; runs with QuantAware, Distillation and
  // MultiTeacherDistillation; QuantPost refused (it does not fine-tune).
  static strategies::StrategyRegistration Registration();

  std::string Name() const override;
  // Finds the encoder layers, ranks their heads and units, removes floor(ratio x count)
  // of each per layer, checks that the pruned model computes what the input model does
  // with the removed heads and units zeroed, checks every rank chose the same, and logs
  // heads and units kept per layer with MACs and parameters before and after. Throws
  // ModelError for a model without encoder layers (saying what was looked for) or whose
  // forward does not use the weights in the layout the removal assumes, ConfigError for
  // `layers` patterns that name no encoder layer.
  void Prepare(torch::jit::Module& model) override;
  // Rebuilds the pruned model from the input model's tensors and the recorded indices.
  // Throws ModelError when they do not fit the model.
  void LoadState(const checkpoint::TensorMap& state, torch::jit::Module& model) override;
  checkpoint::TensorMap SaveState() const override;
  // Adds report.json's "transformer_prune": importance, per layer the heads and units
  // before and after and the kept indices, MACs and parameters before and after.
  void Export(const torch::jit::Module& finalized, const std::string& output_dir,
              nlohmann::json& report) const override;

 private:
  // The encoder layers `layers` selects (all when empty).
  std::vector<EncoderLayer> SelectedLayers(const torch::jit::Module& model) const;
  // The heads and units each layer keeps, by options_.importance (collective for the
  // data-driven ones).
  std::vector<KeptUnits> Choose(torch::jit::Module& model) const;
  // The highest-scoring heads and units of each layer, by head_ratio and ffn_ratio.
  std::vector<KeptUnits> KeptOf(const UnitScores& scores) const;
  // Throws ModelError unless `pruned` computes on the example what the unpruned model
  // computes with the removed heads and units zeroed.
  void CheckRemovalIsExact(const torch::jit::Module& unpruned, const torch::jit::Module& pruned) const;
  void Summarise(const torch::jit::Module& model);

  TransformerPruneOptions options_;
  comm::Communicator& comm_;
  strategies::JobContext context_;
  std::vector<EncoderLayer> layers_;
  std::map<std::string, torch::Tensor> originals_;
  std::vector<KeptUnits> kept_;
  int64_t macs_before_ = 0;
  int64_t parameters_before_ = 0;
  nlohmann::json summary_;
};

}  // namespace slim::prune
