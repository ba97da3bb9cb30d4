// Finding the layers of a TorchScript model that compute with a weight of their own:
// convolutions and linear layers, whichever code defined them (torchvision's scripted
// nn.Conv2d, the builtin models' torch.conv2d calls, a user's module).
#pragma once

#include <torch/script.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

namespace slim::graph {

enum class LayerKind { kConv2d, kDepthwiseConv2d, kLinear };

// The config name of a kind: conv2d, depthwise_conv2d, linear.
std::string LayerKindName(LayerKind kind);

struct WeightLayer {
  std::string path;  // module path, e.g. "layer1.0.conv1"
  torch::jit::Module module;
  LayerKind kind;
};

// Every module whose forward (with the calls into its own methods inlined) passes its
// own `weight` attribute to aten::conv2d, aten::_convolution or aten::linear, in the
// order of named_modules(). A convolution with groups > 1 and one input channel per
// group is depthwise.
std::vector<WeightLayer> FindWeightLayers(const torch::jit::Module& model);

// Calls `visit` on every node of `block` and of the blocks nested in it, in order.
void VisitNodes(torch::jit::Block* block, const std::function<void(torch::jit::Node*)>& visit);

// Every module of `model` (the model itself under "") by its path.
std::map<std::string, torch::jit::Module> ModulesByPath(const torch::jit::Module& model);

// True when `path` is `pattern` or lies below a module it names; shell wildcards allowed.
bool MatchesModulePattern(const std::string& pattern, const std::string& path);

// Every module path of `model`, for messages that list them.
std::vector<std::string> ModulePaths(const torch::jit::Module& model);

}  // namespace slim::graph
