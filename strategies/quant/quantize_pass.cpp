#include "strategies/quant/quantize_pass.h"

#include <fnmatch.h>

#include <algorithm>
#include <map>

#include "runtime/errors.h"
#include "runtime/logging.h"
#include "runtime/text.h"
#include "strategies/graph/call_routing.h"
#include "strategies/quant/quantizer_modules.h"

namespace slim::quant {

namespace {

constexpr const char* kWeightChild = "weight_quant";
constexpr const char* kInputChild = "input_quant";

void WarnUnmatchedPatterns(const torch::jit::Module& model,
                           const std::vector<std::string>& patterns) {
  const auto paths = graph::ModulePaths(model);
  for (const auto& pattern : patterns) {
    const bool matched = std::any_of(paths.begin(), paths.end(), [&](const std::string& path) {
      return MatchesModulePattern(pattern, path);
    });
    if (!matched) {
      logging::Warning("not_quant_pattern '" + pattern + "' matches no module; the module "
                       "paths are: " + JoinedList(paths));
    }
  }
}

bool Selected(const graph::WeightLayer& layer, const config::QuantCommonOptions& options) {
  const auto& types = options.quantize_op_types;
  if (std::find(types.begin(), types.end(), graph::LayerKindName(layer.kind)) == types.end()) {
    return false;
  }
  return std::none_of(options.not_quant_pattern.begin(), options.not_quant_pattern.end(),
                      [&](const std::string& pattern) {
                        return MatchesModulePattern(pattern, layer.path);
                      });
}

std::string TypeName(const torch::jit::Module& module) {
  return module.type()->name()->qualifiedName();
}

}  // namespace

bool MatchesModulePattern(const std::string& pattern, const std::string& path) {
  return fnmatch(pattern.c_str(), path.c_str(), 0) == 0 ||
         fnmatch((pattern + ".*").c_str(), path.c_str(), 0) == 0;
}

std::vector<QuantizedLayer> InsertQuantizers(torch::jit::Module& model,
                                             const config::QuantCommonOptions& options,
                                             bool pact) {
  const auto layers = graph::FindWeightLayers(model);
  for (const auto& layer : layers) {
    if (layer.module.hasattr(kWeightChild)) {
      throw ModelError("layer " + layer.path + " already holds quantizers: the model was "
                       "quantized before; start from the float model");
    }
  }
  WarnUnmatchedPatterns(model, options.not_quant_pattern);
  // Classes with a selected instance: every instance of those gets quantizers.
  std::map<std::string, bool> rewritten_classes;
  for (const auto& layer : layers) {
    if (Selected(layer, options)) rewritten_classes[TypeName(layer.module)] = false;
  }
  if (rewritten_classes.empty()) {
    std::vector<std::string> found;
    for (const auto& layer : layers) found.push_back(layer.path + " (" + LayerKindName(layer.kind) + ")");
    throw ModelError("the model has no layer to quantize of the types in quantize_op_types (" +
                     JoinedList(options.quantize_op_types) + ") outside not_quant_pattern; its "
                     "layers with weights: " + (found.empty() ? "none" : JoinedList(found)));
  }
  const bool per_channel = options.weight_quantize_type == "channel_wise_abs_max";
  QuantizerFactory factory;
  std::vector<QuantizedLayer> quantized;
  for (const auto& layer : layers) {
    auto found = rewritten_classes.find(TypeName(layer.module));
    if (found == rewritten_classes.end()) continue;
    torch::jit::Module module = layer.module;
    const auto weight = module.attr("weight").toTensor();
    auto weight_quant = factory.NewWeightQuantizer(per_channel, weight.size(0), options.weight_bits);
    auto input_quant = factory.NewActivationQuantizer(options.activation_bits, pact);
    module.register_module(kWeightChild, weight_quant);
    module.register_module(kInputChild, input_quant);
    if (!found->second) {
      graph::RouteForwardInput(module, kInputChild);
      graph::RouteAttributeRead(module, "weight", kWeightChild);
      found->second = true;
    }
    if (Selected(layer, options)) {
      quantized.push_back({layer.path, layer.kind, module, weight_quant, input_quant});
    } else {
      SetEnabled(weight_quant, false);
      SetEnabled(input_quant, false);
    }
  }
  return quantized;
}

}  // namespace slim::quant
