// QuantAware: quantization-aware training. Prepare attaches fake-quantizers to the
// selected layers; weights are quantized with scales that follow them in every forward,
// activations with scales that every rank updates identically after each step
// (activation_observers.h). Activations are quantized from the second step on, once the
// first statistics are agreed. With freeze_bn_step, BatchNorms after quantized
// convolutions are frozen and folded from that step on (batch_norm_folding.h). Finalize
// fixes the scales for export.
#pragma once

#include <memory>

#include "runtime/comm/communicator.h"
#include "strategies/quant/quant_options.h"
#include "strategies/quant/activation_observers.h"
#include "strategies/quant/batch_norm_folding.h"
#include "strategies/quant/quantize_pass.h"
#include "strategies/registry.h"

namespace slim::quant {

class QuantAware : public strategies::Strategy {
 public:
  QuantAware(const QuantAwareOptions& options, const strategies::StrategyEnvironment& environment);

  // Section QuantAware; runs with Distillation and MultiTeacherDistillation.
  static strategies::StrategyRegistration Registration();

  std::string Name() const override { return "QuantAware"; }
  void Prepare(torch::jit::Module& model) override;
  std::vector<strategies::ParameterGroup> ParameterGroups() const override;
  void OnBeforeOptimizerStep(strategies::HookContext& context) override;
  void Finalize(torch::jit::Module& model) const override;
  void Export(const torch::jit::Module& finalized, const std::string& output_dir,
              nlohmann::json& report) const override;
  checkpoint::TensorMap SaveState() const override;
  void LoadState(const checkpoint::TensorMap& state, torch::jit::Module& model) override;

 private:
  void FreezeBatchNorms();

  quant::QuantAwareOptions options_;
  comm::Communicator& comm_;
  QuantizedModel quantized_;
  std::unique_ptr<ActivationObservers> observers_;
  std::vector<FoldablePair> foldable_;  // found when freeze_bn_step >= 0
  bool batch_norms_frozen_ = false;
};

}  // namespace slim::quant
