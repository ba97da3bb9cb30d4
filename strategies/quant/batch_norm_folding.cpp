#include "strategies/quant/batch_norm_folding.h"

#include <map>

#include "strategies/graph/layer_finder.h"
#include "strategies/quant/quantizer_modules.h"

namespace slim::quant {

namespace {

torch::Tensor Attribute(const torch::jit::Module& module, const std::string& name) {
  return module.attr(name).toTensor();
}

}  // namespace

torch::Tensor FoldFactor(const torch::jit::Module& batch_norm, double eps) {
  return Attribute(batch_norm, "weight") / torch::sqrt(Attribute(batch_norm, "running_var") + eps);
}

std::optional<torch::Tensor> BiasOf(const torch::jit::Module& layer) {
  if (!layer.hasattr("bias") || !layer.attr("bias").isTensor()) return std::nullopt;
  return Attribute(layer, "bias");
}

std::vector<FoldablePair> FindFoldablePairs(const torch::jit::Module& model,
                                            const std::vector<QuantizedLayer>& layers) {
  std::map<std::string, const QuantizedLayer*> convolutions;
  for (const auto& layer : layers) {
    if (layer.kind != graph::LayerKind::kLinear) convolutions.emplace(layer.path, &layer);
  }
  const auto modules = graph::ModulesByPath(model);
  std::vector<FoldablePair> pairs;
  for (const auto& found : graph::FindConvBatchNorms(model)) {
    const auto conv = convolutions.find(found.conv_path);
    if (conv == convolutions.end()) continue;
    pairs.push_back({found, conv->second->weight_quant, modules.at(found.bn_path)});
  }
  return pairs;
}

void FreezeAndFold(const std::vector<FoldablePair>& pairs) {
  for (const auto& pair : pairs) {
    torch::jit::Module batch_norm = pair.batch_norm;
    torch::jit::Module weight_quant = pair.weight_quant;
    batch_norm.eval();
    FoldBatchNorm(weight_quant, Attribute(batch_norm, "weight"),
                  Attribute(batch_norm, "running_var"), pair.paths.eps);
  }
}

void FoldIntoConvolutions(torch::jit::Module& model, const std::vector<FoldablePair>& pairs) {
  torch::NoGradGuard no_grad;
  const auto modules = graph::ModulesByPath(model);
  for (const auto& pair : pairs) {
    const auto& conv = modules.at(pair.paths.conv_path);
    const auto& batch_norm = modules.at(pair.paths.bn_path);
    auto weight_quant = conv.attr("weight_quant").toModule();
    UnfoldBatchNorm(weight_quant);
    auto gamma = Attribute(batch_norm, "weight");
    auto beta = Attribute(batch_norm, "bias");
    auto mean = Attribute(batch_norm, "running_mean");
    auto var = Attribute(batch_norm, "running_var");
    const auto factor = FoldFactor(batch_norm, pair.paths.eps);
    auto weight = Attribute(conv, "weight");
    weight.mul_(factor.reshape({-1, 1, 1, 1}));
    auto shift = -mean;
    if (auto bias = BiasOf(conv)) {
      shift.add_(*bias);
      bias->zero_();
    }
    beta.add_(factor * shift);
    gamma.fill_(1.0);
    mean.zero_();
    var.fill_(1.0 - pair.paths.eps);
  }
}

}  // namespace slim::quant
