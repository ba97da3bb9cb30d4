#include "strategies/quant/quant_export.h"

#include <filesystem>
#include <map>

#include "runtime/base/errors.h"
#include "runtime/base/output_file.h"
#include "strategies/graph/layer_finder.h"
#include "strategies/quant/quantizer_modules.h"

namespace slim::quant {

namespace {

using nlohmann::json;

std::vector<double> Values(const torch::Tensor& tensor) {
  const auto flat = tensor.detach().to(torch::kCPU, torch::kFloat64).contiguous();
  return {flat.data_ptr<double>(), flat.data_ptr<double>() + flat.numel()};
}

json QuantizerEntry(const std::string& tensor, const torch::jit::Module& quantizer,
                    int64_t bits) {
  const auto scale = quantizer.attr("scale").toTensor();
  json entry = {{"tensor", tensor},
                {"bits", bits},
                {"quant_min", quantizer.attr("quant_min").toInt()},
                {"quant_max", quantizer.attr("quant_max").toInt()},
                {"scale", Values(scale)},
                {"zero_point", Values(quantizer.attr("zero_point").toTensor())}};
  if (scale.numel() > 1) entry["axis"] = 0;
  return entry;
}

int64_t TensorBytes(const torch::Tensor& tensor) {
  return tensor.numel() * static_cast<int64_t>(tensor.element_size());
}

}  // namespace

void FreezeQuantizers(torch::jit::Module& model, bool qdq) {
  torch::NoGradGuard no_grad;
  for (const auto& entry : model.named_modules()) {
    torch::jit::Module module = entry.value;
    if (module.hasattr("observe")) {  // an activation quantizer
      SetObserve(module, Observe::kNothing);
      SetExportQdq(module, qdq);
    }
    if (!module.hasattr("weight_quant")) continue;
    auto weight_quant = module.attr("weight_quant").toModule();
    SetExportQdq(weight_quant, qdq);
    if (!weight_quant.attr("enabled").toBool()) continue;
    auto weight = module.attr(QuantizedWeightName(module)).toTensor();
    // QAT scales follow the weight until here; PTQ scales were fixed at calibration.
    const auto quantized = weight_quant.forward({weight}).toTensor();
    SetFrozen(weight_quant, true);
    weight.copy_(quantized);
  }
}

void WriteQuantTable(const torch::jit::Module& finalized, const QuantizedModel& quantized,
                     const quant::QuantCommonOptions& options, const std::string& output_dir,
                     nlohmann::json& report) {
  const auto modules = graph::ModulesByPath(finalized);
  json table_layers = json::array();
  int64_t quantized_weight_bytes = 0;
  int64_t quantized_weight_float_bytes = 0;
  const auto& layers = quantized.layers;
  for (const auto& layer : layers) {
    const auto& module = modules.at(layer.path);
    const auto weight_name = QuantizedWeightName(module);
    const auto weight = module.attr(weight_name).toTensor();
    quantized_weight_bytes += (weight.numel() * options.weight_bits + 7) / 8;
    quantized_weight_float_bytes += TensorBytes(weight);
    table_layers.push_back(
        {{"name", layer.path},
         {"kind", graph::LayerKindName(layer.kind)},
         {"weight", QuantizerEntry(layer.path + "." + weight_name, module.attr("weight_quant").toModule(),
                                   options.weight_bits)},
         {"input", QuantizerEntry(layer.path + ".input", module.attr("input_quant").toModule(),
                                  options.activation_bits)}});
  }
  // An operation's quantizers have module paths that extend its own: "<module>.<op><i>_..._quant".
  const auto operation_table = [&](const std::vector<QuantizedOperation>& operations) {
    json table = json::array();
    for (const auto& operation : operations) {
      json entry = {{"name", operation.path}};
      for (const std::string role : {"input", "other", "output"}) {
        const auto child = modules.find(operation.path + "_" + role + "_quant");
        if (child == modules.end()) continue;
        entry[role] = QuantizerEntry(operation.path + "." + role, child->second, options.activation_bits);
      }
      table.push_back(entry);
    }
    return table;
  };
  int64_t float_bytes = 0;
  for (const auto& parameter : finalized.parameters()) float_bytes += TensorBytes(parameter);
  const json table = {{"format", "symmetric, zero point 0: real = scale * integer"},
                      {"weight_bits", options.weight_bits},
                      {"activation_bits", options.activation_bits},
                      {"weight_quantize_type", options.weight_quantize_type},
                      {"onnx_format", options.onnx_format},
                      {"layers", table_layers},
                      {"matmuls", operation_table(quantized.matmuls)},
                      {"adds", operation_table(quantized.adds)}};
  files::WriteAtomically((std::filesystem::path(output_dir) / "quant_table.json").string(),
                         table.dump(2) + "\n");
  report["quantization"] = {
      {"layers", layers.size()},
      {"matmuls", quantized.matmuls.size()},
      {"adds", quantized.adds.size()},
      {"weight_bits", options.weight_bits},
      {"activation_bits", options.activation_bits},
      {"parameter_bytes_float32", float_bytes},
      {"parameter_bytes_quantized",
       float_bytes - quantized_weight_float_bytes + quantized_weight_bytes},
      {"quantized_weight_bytes", quantized_weight_bytes},
      {"weight_share", quantized.WeightShare()},
  };
}

}  // namespace slim::quant
