#include "strategies/quant/accumulator_bias.h"

#include <map>
#include <string>

#include "strategies/graph/conv_bn_pairs.h"
#include "strategies/graph/layer_finder.h"
#include "strategies/quant/batch_norm_folding.h"

namespace slim::quant {

namespace {

torch::Tensor Attribute(const torch::jit::Module& module, const std::string& name) {
  return module.attr(name).toTensor();
}

// `value` rounded to the nearest multiple of `step` (element-wise, broadcast), in double;
// left as it is where the step is zero.
torch::Tensor OnGrid(const torch::Tensor& value, const torch::Tensor& step) {
  const auto exact = value.to(torch::kDouble);
  const auto steps = step.to(torch::kDouble);
  return torch::where(steps > 0, (exact / steps).round() * steps, exact);
}

}  // namespace

void SnapBiasesToAccumulatorGrid(torch::jit::Module& model,
                                 const std::vector<QuantizedLayer>& layers) {
  torch::NoGradGuard no_grad;
  const auto modules = graph::ModulesByPath(model);
  std::map<std::string, graph::ConvBatchNorm> batch_norm_after;
  for (const auto& pair : graph::FindConvBatchNorms(model)) {
    batch_norm_after.emplace(pair.conv_path, pair);
  }
  for (const auto& quantized : layers) {
    const auto& layer = modules.at(quantized.path);
    const auto weight_quant = layer.attr("weight_quant").toModule();
    const auto input_quant = layer.attr("input_quant").toModule();
    if (QuantizedWeightName(layer) != "weight" || !weight_quant.attr("enabled").toBool() ||
        !input_quant.attr("enabled").toBool()) {
      continue;
    }
    const auto steps = Attribute(input_quant, "scale") * Attribute(weight_quant, "scale");
    const auto after = batch_norm_after.find(quantized.path);
    const auto bias = BiasOf(layer);
    if (after == batch_norm_after.end()) {
      if (bias) bias->copy_(OnGrid(*bias, steps));
      continue;
    }
    const auto& batch_norm = modules.at(after->second.bn_path);
    auto beta = Attribute(batch_norm, "bias");
    const auto factor = FoldFactor(batch_norm, after->second.eps);
    const auto mean = Attribute(batch_norm, "running_mean");
    const auto shift = bias ? *bias - mean : -mean;
    const auto folded = beta + factor * shift;
    beta.copy_(OnGrid(folded, steps * factor.abs()) - (factor * shift).to(torch::kDouble));
  }
}

}  // namespace slim::quant
