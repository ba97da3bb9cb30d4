#include "strategies/quant/quantize_pass.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "runtime/base/errors.h"
#include "runtime/base/logging.h"
#include "runtime/base/text.h"
#include "runtime/models/attention_forward.h"
#include "strategies/graph/call_routing.h"
#include "strategies/quant/quantizer_modules.h"

namespace slim::quant {

namespace {

constexpr const char* kWeightChild = "weight_quant";
constexpr const char* kInputChild = "input_quant";

// The child quantizing operand 0 (input) or 1 (other) of a module's i-th activation matmul.
std::string MatMulChild(int64_t i, int operand) {
  return "matmul" + std::to_string(i) + (operand == 0 ? "_input_quant" : "_other_quant");
}

void WarnUnmatchedPatterns(const torch::jit::Module& model,
                           const std::vector<std::string>& patterns) {
  const auto paths = graph::ModulePaths(model);
  for (const auto& pattern : patterns) {
    const bool matched = std::any_of(paths.begin(), paths.end(), [&](const std::string& path) {
      return graph::MatchesModulePattern(pattern, path);
    });
    if (!matched) {
      logging::Warning("not_quant_pattern '" + pattern + "' matches no module; the module "
                       "paths are: " + JoinedList(paths));
    }
  }
}

bool Selected(const std::string& path, const std::string& type,
              const quant::QuantCommonOptions& options) {
  const auto& types = options.quantize_op_types;
  if (std::find(types.begin(), types.end(), type) == types.end()) return false;
  return std::none_of(options.not_quant_pattern.begin(), options.not_quant_pattern.end(),
                      [&](const std::string& pattern) {
                        return graph::MatchesModulePattern(pattern, path);
                      });
}

std::string TypeName(const torch::jit::Module& module) {
  return module.type()->name()->qualifiedName();
}

// Sends the weight and input of `layer`'s class through its quantizer children.
void RouteThroughQuantizers(const torch::jit::Module& layer) {
  const auto weight = QuantizedWeightName(layer);
  if (weight == "in_proj_weight") {
    graph::RouteForwardArguments(layer, {"query", "key", "value"}, kInputChild);
  } else {
    graph::RouteForwardInput(layer, kInputChild);
  }
  graph::RouteAttributeRead(layer, weight, kWeightChild);
}

// Weight and input quantizers for the selected weight layers, and disabled ones for the
// other instances of their classes.
std::vector<QuantizedLayer> QuantizeWeightLayers(const std::vector<graph::WeightLayer>& layers,
                                                 const quant::QuantCommonOptions& options,
                                                 bool pact, QuantizerFactory& factory) {
  // Classes with a selected instance: every instance of those gets quantizers.
  std::map<std::string, bool> rewritten_classes;
  for (const auto& layer : layers) {
    if (Selected(layer.path, graph::LayerKindName(layer.kind), options)) {
      rewritten_classes[TypeName(layer.module)] = false;
    }
  }
  const bool per_channel = options.weight_quantize_type == "channel_wise_abs_max";
  std::vector<QuantizedLayer> quantized;
  for (const auto& layer : layers) {
    auto found = rewritten_classes.find(TypeName(layer.module));
    if (found == rewritten_classes.end()) continue;
    torch::jit::Module module = layer.module;
    const auto weight = module.attr(QuantizedWeightName(module)).toTensor();
    auto weight_quant = factory.NewWeightQuantizer(per_channel, weight.size(0), options.weight_bits);
    auto input_quant = factory.NewActivationQuantizer(options.activation_bits, pact);
    module.register_module(kWeightChild, weight_quant);
    module.register_module(kInputChild, input_quant);
    if (!found->second) {
      RouteThroughQuantizers(module);
      found->second = true;
    }
    if (Selected(layer.path, graph::LayerKindName(layer.kind), options)) {
      quantized.push_back({layer.path, layer.kind, module, weight_quant, input_quant});
    } else {
      SetEnabled(weight_quant, false);
      SetEnabled(input_quant, false);
    }
  }
  return quantized;
}

// Operand quantizers for every activation matmul; those under not_quant_pattern disabled.
std::vector<QuantizedMatMul> QuantizeMatMuls(torch::jit::Module& model,
                                             const quant::QuantCommonOptions& options,
                                             bool pact, QuantizerFactory& factory) {
  std::map<std::string, int64_t> class_matmuls;  // per class: -1 until its graph is rewritten
  std::vector<QuantizedMatMul> quantized;
  // A snapshot: the loop registers children.
  std::vector<torch::jit::NameModule> modules;
  for (const auto& entry : model.named_modules()) modules.push_back(entry);
  for (const auto& entry : modules) {
    torch::jit::Module module = entry.value;
    auto found = class_matmuls.find(TypeName(module));
    const int64_t count =
        found != class_matmuls.end() ? found->second : graph::CountActivationMatMuls(module);
    for (int64_t i = 0; i < count; ++i) {
      const std::string path = (entry.name.empty() ? "" : entry.name + ".") + "matmul" +
                               std::to_string(i);
      std::vector<torch::jit::Module> operands;
      for (int operand = 0; operand < 2; ++operand) {
        operands.push_back(factory.NewActivationQuantizer(options.activation_bits, pact));
        module.register_module(MatMulChild(i, operand), operands.back());
      }
      if (Selected(path, "matmul", options)) {
        quantized.push_back({path, operands[0], operands[1]});
      } else {
        for (auto& operand : operands) SetEnabled(operand, false);
      }
    }
    if (found == class_matmuls.end()) {
      if (count > 0) graph::RouteMatMulOperands(module, MatMulChild);
      class_matmuls.emplace(TypeName(module), count);
    }
  }
  return quantized;
}

// The weight layers of `model` and the packed q, k, v projections of its
// nn.MultiheadAttention modules `attention`, in the order of named_modules().
std::vector<graph::WeightLayer> QuantizableLayers(const torch::jit::Module& model,
                                                  const std::vector<std::string>& attention) {
  auto layers = graph::FindWeightLayers(model);
  const auto modules = graph::ModulesByPath(model);
  for (const auto& path : attention) layers.push_back({path, modules.at(path), graph::LayerKind::kLinear});
  std::map<std::string, size_t> order;
  for (const auto& entry : model.named_modules()) order.emplace(entry.name, order.size());
  std::stable_sort(layers.begin(), layers.end(), [&](const auto& a, const auto& b) {
    return order.at(a.path) < order.at(b.path);
  });
  return layers;
}

int64_t WeightElements(const torch::jit::Module& layer) {
  return layer.attr(QuantizedWeightName(layer)).toTensor().numel();
}

}  // namespace

std::string QuantizedWeightName(const torch::jit::Module& layer) {
  return models::IsPackedMultiheadAttention(layer) ? "in_proj_weight" : "weight";
}

std::vector<torch::jit::Module> QuantizedModel::ActivationQuantizers() const {
  std::vector<torch::jit::Module> quantizers;
  for (const auto& layer : layers) quantizers.push_back(layer.input_quant);
  for (const auto& matmul : matmuls) {
    quantizers.push_back(matmul.input_quant);
    quantizers.push_back(matmul.other_quant);
  }
  return quantizers;
}

double QuantizedModel::WeightShare() const {
  return layer_weights > 0
             ? static_cast<double>(quantized_weights) / static_cast<double>(layer_weights)
             : 0.0;
}

std::string QuantizedModel::Describe() const {
  std::string text = std::to_string(layers.size()) + " layer(s)";
  if (!matmuls.empty()) text += " and " + std::to_string(matmuls.size()) + " matmul(s)";
  return text;
}

QuantizedModel InsertQuantizers(torch::jit::Module& model,
                                const quant::QuantCommonOptions& options, bool pact) {
  const auto layers = QuantizableLayers(model, models::RunAttentionThroughItsLayers(model));
  for (const auto& entry : model.named_modules()) {
    if (entry.value.hasattr(kWeightChild) || entry.value.hasattr(MatMulChild(0, 0))) {
      throw ModelError("module " + entry.name + " already holds quantizers: the model was "
                       "quantized before; start from the float model");
    }
  }
  WarnUnmatchedPatterns(model, options.not_quant_pattern);
  QuantizerFactory factory;
  QuantizedModel quantized;
  quantized.layers = QuantizeWeightLayers(layers, options, pact, factory);
  for (const auto& layer : layers) quantized.layer_weights += WeightElements(layer.module);
  for (const auto& layer : quantized.layers) quantized.quantized_weights += WeightElements(layer.layer);
  const auto& types = options.quantize_op_types;
  if (std::find(types.begin(), types.end(), "matmul") != types.end()) {
    quantized.matmuls = QuantizeMatMuls(model, options, pact, factory);
  }
  if (quantized.layers.empty() && quantized.matmuls.empty()) {
    std::vector<std::string> found;
    for (const auto& layer : layers) found.push_back(layer.path + " (" + LayerKindName(layer.kind) + ")");
    throw ModelError("the model has no layer to quantize of the types in quantize_op_types (" +
                     JoinedList(options.quantize_op_types) + ") outside not_quant_pattern; its "
                     "layers with weights: " + (found.empty() ? "none" : JoinedList(found)));
  }
  logging::Info(fmt::format("quantized weights: {} of the {} in layers that can be quantized "
                            "({:.1f} %)", quantized.quantized_weights, quantized.layer_weights,
                            100.0 * quantized.WeightShare()));
  return quantized;
}

}  // namespace slim::quant
