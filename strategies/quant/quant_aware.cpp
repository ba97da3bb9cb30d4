#include "strategies/quant/quant_aware.h"

#include "runtime/base/logging.h"
#include "strategies/quant/accumulator_bias.h"
#include "strategies/quant/quant_config.h"
#include "strategies/quant/quant_export.h"

namespace slim::quant {

strategies::StrategyRegistration QuantAware::Registration() {
  strategies::StrategyRegistration registration;
  registration.section = "QuantAware";
  registration.order = strategies::PassOrder::kQuantizers;
  registration.combines_with = {"Distillation", "MultiTeacherDistillation"};
  registration.refusals = {{"QuantPost", "QuantAware and QuantPost are alternatives (training "
                                         "or calibration); keep one of the two sections"}};
  registration.parse = strategies::ParserOf(&ParseQuantAware);
  registration.create = strategies::FactoryOf<QuantAware, QuantAwareOptions>();
  return registration;
}

QuantAware::QuantAware(const QuantAwareOptions& options,
                       const strategies::StrategyEnvironment& environment)
    : options_(options), comm_(*environment.comm) {}

void QuantAware::Prepare(torch::jit::Module& model) {
  quantized_ = InsertQuantizers(model, options_, options_.use_pact);
  observers_ = std::make_unique<ActivationObservers>(
      quantized_.ActivationQuantizers(), ParseActivationRule(options_.activation_quantize_type),
      options_.moving_rate, options_.window_size, options_.activation_bits,
      options_.unsigned_activations, comm_);
  logging::Info("QuantAware: " + quantized_.Describe() + " quantized to " +
                std::to_string(options_.weight_bits) + "-bit weights (" +
                options_.weight_quantize_type + ") and " +
                std::to_string(options_.activation_bits) + "-bit activations (" +
                options_.activation_quantize_type + (options_.use_pact ? ", PACT" : "") + ")");
  if (options_.freeze_bn_step < 0) return;
  foldable_ = FindFoldablePairs(model, quantized_.layers);
  logging::Info("QuantAware: " + std::to_string(foldable_.size()) +
                " BatchNorm(s) fold into their convolution from step " +
                std::to_string(options_.freeze_bn_step));
  if (options_.freeze_bn_step == 0) FreezeBatchNorms();
}

void QuantAware::FreezeBatchNorms() {
  FreezeAndFold(foldable_);
  batch_norms_frozen_ = true;
}

std::vector<strategies::ParameterGroup> QuantAware::ParameterGroups() const {
  if (!options_.use_pact) return {};
  strategies::ParameterGroup alphas;
  for (const auto& quantizer : quantized_.ActivationQuantizers()) {
    alphas.parameters.push_back(quantizer.attr("alpha").toTensor());
  }
  alphas.learning_rate = options_.pact_learning_rate;
  return {alphas};
}

void QuantAware::OnBeforeOptimizerStep(strategies::HookContext& context) {
  const int64_t step = context.step;
  observers_->Update();
  // From the forward of step freeze_bn_step on.
  if (options_.freeze_bn_step >= 0 && !batch_norms_frozen_ && step + 1 >= options_.freeze_bn_step) {
    FreezeBatchNorms();
  }
}

void QuantAware::Finalize(torch::jit::Module& model) const {
  if (batch_norms_frozen_) FoldIntoConvolutions(model, foldable_);
  FreezeQuantizers(model, options_.onnx_format);
  SnapBiasesToAccumulatorGrid(model, quantized_.layers);
}

void QuantAware::Export(const torch::jit::Module& finalized, const std::string& output_dir,
                        nlohmann::json& report) const {
  WriteQuantTable(finalized, quantized_, options_, output_dir, report);
}

checkpoint::TensorMap QuantAware::SaveState() const {
  auto state = observers_->Save();
  state["batch_norms_frozen"] = torch::tensor(int64_t{batch_norms_frozen_});
  return state;
}

void QuantAware::LoadState(const checkpoint::TensorMap& state, torch::jit::Module& model) {
  observers_->Load(state);
  const auto frozen = state.find("batch_norms_frozen");
  if (frozen != state.end() && frozen->second.item<int64_t>() != 0 && !batch_norms_frozen_) {
    FreezeBatchNorms();
  }
}

}  // namespace slim::quant
