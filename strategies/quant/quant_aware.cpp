#include "strategies/quant/quant_aware.h"

#include "runtime/logging.h"
#include "strategies/quant/quant_export.h"

namespace slim::quant {

QuantAware::QuantAware(config::QuantAwareOptions options, comm::Communicator& comm)
    : options_(std::move(options)), comm_(comm) {}

void QuantAware::Prepare(torch::jit::Module& model) {
  layers_ = InsertQuantizers(model, options_, options_.use_pact);
  std::vector<torch::jit::Module> inputs;
  for (const auto& layer : layers_) inputs.push_back(layer.input_quant);
  observers_ = std::make_unique<ActivationObservers>(
      inputs, ParseActivationRule(options_.activation_quantize_type), options_.moving_rate,
      options_.window_size, comm_);
  logging::Info("QuantAware: " + std::to_string(layers_.size()) + " layer(s) quantized to " +
                std::to_string(options_.weight_bits) + "-bit weights (" +
                options_.weight_quantize_type + ") and " +
                std::to_string(options_.activation_bits) + "-bit activations (" +
                options_.activation_quantize_type + (options_.use_pact ? ", PACT" : "") + ")");
}

std::vector<strategies::ParameterGroup> QuantAware::ParameterGroups() const {
  if (!options_.use_pact) return {};
  strategies::ParameterGroup alphas;
  for (const auto& layer : layers_) {
    alphas.parameters.push_back(layer.input_quant.attr("alpha").toTensor());
  }
  alphas.learning_rate = options_.pact_learning_rate;
  return {alphas};
}

void QuantAware::OnBeforeOptimizerStep(int64_t step) { observers_->Update(); }

void QuantAware::Finalize(torch::jit::Module& model) const {
  FreezeQuantizers(model, options_.onnx_format);
}

void QuantAware::Export(const torch::jit::Module& finalized, const std::string& output_dir,
                        nlohmann::json& report) const {
  WriteQuantTable(finalized, layers_, options_, output_dir, report);
}

checkpoint::TensorMap QuantAware::SaveState() const { return observers_->Save(); }

void QuantAware::LoadState(const checkpoint::TensorMap& state) { observers_->Load(state); }

}  // namespace slim::quant
