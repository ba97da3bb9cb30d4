// Which weights a pruning section prunes: the weights of convolutions and linear layers
// (graph/layer_finder.h), narrowed by the section's selection keys. Biases and
// normalisation layers are never candidates.
#pragma once

#include <torch/script.h>

#include <string>
#include <vector>

#include "strategies/graph/layer_finder.h"

namespace slim::prune {

// One weight a pruning strategy masks. The tensor is read from the module each time, so
// it is always the model's current parameter.
struct PrunableWeight {
  std::string name;  // parameter path, e.g. "layer1.0.conv1.weight"
  std::string layer;  // module path, e.g. "layer1.0.conv1"
  graph::LayerKind kind;
  torch::jit::Module module;

  torch::Tensor Tensor() const { return module.attr("weight").toTensor(); }
};

// Every convolution and linear weight of `model`, in the order of named_modules().
std::vector<PrunableWeight> WeightsOf(const torch::jit::Module& model);

// True when `pattern` (shell wildcards) names the parameter `weight.name` or a module at
// or above its layer.
bool MatchesWeight(const std::string& pattern, const PrunableWeight& weight);

// `weights` without those any of `patterns` matches. Logs a warning for a pattern that
// matches none of them, with the parameter names.
std::vector<PrunableWeight> WithoutSkipped(std::vector<PrunableWeight> weights,
                                           const std::vector<std::string>& patterns,
                                           const std::string& section);

// The weights named in `names` (parameter paths, in `weights`' order). Throws ConfigError
// at `section`.prune_params_name for a name that is no convolution or linear weight,
// suggesting the nearest one.
std::vector<PrunableWeight> NamedWeights(const std::vector<PrunableWeight>& weights,
                                         const std::vector<std::string>& names,
                                         const std::string& section);

// True for a convolution whose kernel is 1x1.
bool IsPointwiseConv(const PrunableWeight& weight);

}  // namespace slim::prune
