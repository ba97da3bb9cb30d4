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

// The name of an activation op's sites in module paths and in its quantizers' names.
std::string OpName(graph::ActivationOp op) { return op == graph::ActivationOp::kMatMul ? "matmul" : "add"; }

// The child quantizing operand 0 (input) or 1 (other) of a module's i-th `op`, or (2) an
// add's result; empty for a matmul's result, which is not quantized.
std::string OpChild(graph::ActivationOp op, int64_t i, int role) {
  static const char* const kRoles[] = {"_input_quant", "_other_quant", "_output_quant"};
  if (role == 2 && op == graph::ActivationOp::kMatMul) return "";
  return OpName(op) + std::to_string(i) + kRoles[role];
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
  if (!Contains(options.quantize_op_types, type)) return false;
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

// Quantizers for the operands of every activation `op` among `modules` (and for an add's
// result); those under not_quant_pattern disabled.
std::vector<QuantizedOperation> QuantizeActivationOps(
    const std::vector<torch::jit::NameModule>& modules, graph::ActivationOp op,
    const quant::QuantCommonOptions& options, bool pact, QuantizerFactory& factory) {
  std::map<std::string, int64_t> class_ops;  // per class whose graph is rewritten: its count
  std::vector<QuantizedOperation> quantized;
  const int roles = op == graph::ActivationOp::kAdd ? 3 : 2;
  for (const auto& entry : modules) {
    torch::jit::Module module = entry.value;
    // The adds of PyTorch's attention add its masks (-inf where masked), which no 8-bit
    // grid may round; its residual adds are in the encoder layer around it.
    if (op == graph::ActivationOp::kAdd && models::IsPackedMultiheadAttention(module)) continue;
    auto found = class_ops.find(TypeName(module));
    const int64_t count =
        found != class_ops.end() ? found->second : graph::CountActivationOps(module, op);
    for (int64_t i = 0; i < count; ++i) {
      const std::string site = OpName(op) + std::to_string(i);
      QuantizedOperation operation{entry.name.empty() ? site : entry.name + "." + site, {}};
      for (int role = 0; role < roles; ++role) {
        operation.quantizers.push_back(factory.NewActivationQuantizer(options.activation_bits, pact));
        module.register_module(OpChild(op, i, role), operation.quantizers.back());
      }
      if (Selected(operation.path, OpName(op), options)) {
        quantized.push_back(operation);
      } else {
        for (auto& quantizer : operation.quantizers) SetEnabled(quantizer, false);
      }
    }
    if (found == class_ops.end()) {
      if (count > 0) {
        graph::RouteActivationOps(module, op, [op](int64_t i, int role) { return OpChild(op, i, role); });
      }
      class_ops.emplace(TypeName(module), count);
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
  for (const auto* operations : {&matmuls, &adds}) {
    for (const auto& operation : *operations) {
      quantizers.insert(quantizers.end(), operation.quantizers.begin(), operation.quantizers.end());
    }
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
  if (!matmuls.empty()) text += ", " + std::to_string(matmuls.size()) + " matmul(s)";
  if (!adds.empty()) text += ", " + std::to_string(adds.size()) + " add(s)";
  return text;
}

QuantizedModel InsertQuantizers(torch::jit::Module& model,
                                const quant::QuantCommonOptions& options, bool pact) {
  const auto layers = QuantizableLayers(model, models::RunAttentionThroughItsLayers(model));
  for (const auto& entry : model.named_modules()) {
    if (entry.value.hasattr(kWeightChild) ||
        entry.value.hasattr(OpChild(graph::ActivationOp::kMatMul, 0, 0)) ||
        entry.value.hasattr(OpChild(graph::ActivationOp::kAdd, 0, 0))) {
      throw ModelError("module " + entry.name + " already holds quantizers: the model was "
                       "quantized before; start from the float model");
    }
  }
  WarnUnmatchedPatterns(model, options.not_quant_pattern);
  // The model's own modules, before quantizers (whose forward adds too) join them.
  std::vector<torch::jit::NameModule> modules;
  for (const auto& entry : model.named_modules()) modules.push_back(entry);
  QuantizerFactory factory;
  QuantizedModel quantized;
  quantized.layers = QuantizeWeightLayers(layers, options, pact, factory);
  for (const auto& layer : layers) quantized.layer_weights += WeightElements(layer.module);
  for (const auto& layer : quantized.layers) quantized.quantized_weights += WeightElements(layer.layer);
  if (Contains(options.quantize_op_types, "matmul")) {
    quantized.matmuls =
        QuantizeActivationOps(modules, graph::ActivationOp::kMatMul, options, pact, factory);
  }
  if (Contains(options.quantize_op_types, "add")) {
    quantized.adds = QuantizeActivationOps(modules, graph::ActivationOp::kAdd, options, pact, factory);
  }
  if (quantized.layers.empty() && quantized.matmuls.empty() && quantized.adds.empty()) {
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
