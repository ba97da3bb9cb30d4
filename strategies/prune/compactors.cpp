#include "strategies/prune/compactors.h"

#include <map>
#include <memory>
#include <set>

#include "strategies/graph/call_routing.h"
#include "strategies/graph/layer_finder.h"
#include "strategies/prune/channel_removal.h"

namespace slim::prune {

namespace {

constexpr const char* kChild = "compactor";

// The compactor class: forward is conv2d(x, self.weight). One class for all instances,
// since BatchNorms that share a class must hold children of one type.
torch::jit::Module CompactorPrototype() {
  torch::jit::Module compactor(c10::QualifiedName("__torch__.slim.ResRepCompactor"),
                               std::make_shared<torch::jit::CompilationUnit>(),
                               /*shouldMangle=*/true);
  compactor.register_attribute("training", c10::BoolType::get(), true);
  compactor.register_parameter("weight", torch::ones({1, 1, 1, 1}), /*is_buffer=*/false);
  compactor.define("def forward(self, x):\n    return torch.conv2d(x, self.weight)\n");
  return compactor;
}

// A compactor of `channels` channels, an identity 1x1 convolution.
torch::jit::Module NewCompactor(const torch::jit::Module& prototype, int64_t channels,
                                bool trainable) {
  auto compactor = prototype.deepcopy();
  auto weight = torch::eye(channels).view({channels, channels, 1, 1});
  compactor.register_parameter("weight", weight.requires_grad_(trainable), /*is_buffer=*/false);
  return compactor;
}

// The merged convolution of `compactor`: weight Q diag(s) W flattened to [C, in x k x k]
// and bias Q t, in double.
struct MergedConvolution {
  torch::Tensor weight;
  torch::Tensor bias;
};

MergedConvolution Merged(const torch::jit::Module& model, const Compactor& compactor) {
  const auto read = [&](const std::string& path) {
    return TensorAt(model, path).detach().to(torch::kDouble);
  };
  const auto& bn = compactor.pair.bn_path;
  const auto q = read(compactor.weight).flatten(1);
  const auto scale = read(bn + ".weight") / (read(bn + ".running_var") + compactor.pair.eps).sqrt();
  const auto shift = read(bn + ".bias") - read(bn + ".running_mean") * scale;
  return {torch::matmul(q * scale, read(compactor.pair.conv_path + ".weight").flatten(1)),
          torch::matmul(q, shift)};
}

}  // namespace

std::vector<Compactor> InsertCompactors(torch::jit::Module& model,
                                        const std::vector<graph::ConvBatchNorm>& pairs) {
  const auto modules = graph::ModulesByPath(model);
  std::set<std::string> selected;
  std::set<std::string> classes;
  for (const auto& pair : pairs) {
    selected.insert(pair.bn_path);
    classes.insert(modules.at(pair.bn_path).type()->name()->qualifiedName());
  }
  const auto prototype = CompactorPrototype();
  std::map<std::string, torch::jit::Module> routed;  // one BatchNorm per class
  for (const auto& [path, module] : modules) {
    const auto name = module.type()->name()->qualifiedName();
    if (!classes.count(name)) continue;
    const auto channels = module.attr("running_mean").toTensor().size(0);
    torch::jit::Module bn = module;
    bn.register_module(kChild, NewCompactor(prototype, channels, selected.count(path) > 0));
    routed.emplace(name, module);
  }
  for (const auto& [name, bn] : routed) graph::RouteForwardOutput(bn, kChild);
  std::vector<Compactor> compactors;
  for (const auto& pair : pairs) compactors.push_back({pair, pair.bn_path + "." + kChild + ".weight"});
  return compactors;
}

void MergeCompactors(torch::jit::Module& model, const std::vector<Compactor>& compactors) {
  torch::NoGradGuard no_grad;
  const auto modules = graph::ModulesByPath(model);
  for (const auto& compactor : compactors) {
    const auto merged = Merged(model, compactor);
    auto weight = modules.at(compactor.pair.conv_path).attr("weight").toTensor();
    weight.copy_(merged.weight.view(weight.sizes()));
    auto bn = modules.at(compactor.pair.bn_path);
    bn.attr("weight").toTensor().fill_(1);
    bn.attr("bias").toTensor().copy_(merged.bias);
    bn.attr("running_mean").toTensor().zero_();
    bn.attr("running_var").toTensor().fill_(1 - compactor.pair.eps);
  }
}

torch::Tensor MergedFilterNorms(const torch::jit::Module& model, const Compactor& compactor) {
  return Merged(model, compactor).weight.norm(2, 1).cpu();
}

torch::jit::Module MergedAndPruned(const torch::jit::Module& model, const std::vector<Compactor>& compactors,
                                   const ChannelGraph& graph,
                                   const std::vector<std::vector<int64_t>>& removed) {
  auto merged = model.clone();
  MergeCompactors(merged, compactors);
  merged = graph::CloneWithoutChildren(merged, {kChild});
  const auto tensors = AxisTensors(merged, graph);
  RemoveChannels(merged, tensors, KeptIndices(graph, tensors, removed), graph.depthwise_weights);
  return merged;
}

}  // namespace slim::prune
