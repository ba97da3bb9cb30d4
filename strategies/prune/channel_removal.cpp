#include "strategies/prune/channel_removal.h"

#include <functional>
#include <memory>
#include <set>

#include "runtime/base/torch_compat.h"
#include "strategies/graph/layer_finder.h"

namespace slim::prune {

namespace {

// Sets int attribute `name` where `module` has one; class constants (nn.Linear's
// in_features in scripted torchvision models) are part of the compiled code and stay.
void SetIntAttribute(torch::jit::Module& module, const std::string& name, int64_t value) {
  if (!module.type()->hasConstant(name) && module.hasattr(name) && module.attr(name).isInt()) {
    module.setattr(name, value);
  }
}

// The size attributes of `module` from the shapes of the tensors it now holds.
void UpdateSizeAttributes(torch::jit::Module& module) {
  if (module.hasattr("weight") && module.attr("weight").isTensor()) {
    const auto weight = module.attr("weight").toTensor();
    if (weight.dim() == 4) {
      SetIntAttribute(module, "out_channels", weight.size(0));
      const bool grouped = !module.type()->hasConstant("groups") && module.hasattr("groups") &&
                           module.attr("groups").isInt();
      SetIntAttribute(module, "in_channels",
                      weight.size(1) * (grouped ? module.attr("groups").toInt() : 1));
    } else if (weight.dim() == 2) {
      SetIntAttribute(module, "out_features", weight.size(0));
      SetIntAttribute(module, "in_features", weight.size(1));
    } else if (weight.dim() == 1) {
      SetIntAttribute(module, "num_features", weight.size(0));
    }
  }
  if (module.hasattr("running_mean") && module.attr("running_mean").isTensor()) {
    SetIntAttribute(module, "num_features", module.attr("running_mean").toTensor().size(0));
  }
}

// `full` sliced along the axes of tensor `path` that `kept` lists.
torch::Tensor Sliced(const torch::Tensor& full, const std::string& path, const KeptChannels& kept) {
  auto sliced = full;
  for (int64_t dim = 0; dim < full.dim(); ++dim) {
    const auto found = kept.find({path, dim});
    if (found != kept.end()) sliced = sliced.index_select(dim, found->second.to(sliced.device()));
  }
  return sliced;
}

// `sliced` (tensor `path` as `kept` slices it) back at `full_sizes`, zero where removed.
torch::Tensor Expanded(const torch::Tensor& sliced, const std::string& path,
                       at::IntArrayRef full_sizes, const KeptChannels& kept) {
  auto full = sliced.detach();
  for (int64_t dim = 0; dim < sliced.dim(); ++dim) {
    const auto found = kept.find({path, dim});
    if (found == kept.end()) continue;
    auto sizes = full.sizes().vec();
    sizes[dim] = full_sizes[dim];
    full = torch::zeros(sizes, full.options()).index_copy_(dim, found->second.to(full.device()), full);
  }
  return full;
}

using Reslice = std::function<torch::Tensor(const torch::Tensor&)>;

// Adam's and AdamW's moments through `reslice`.
template <typename AdamState>
void ResliceMoments(AdamState& adam, const Reslice& reslice) {
  if (adam.exp_avg().defined()) adam.exp_avg(reslice(adam.exp_avg()));
  if (adam.exp_avg_sq().defined()) adam.exp_avg_sq(reslice(adam.exp_avg_sq()));
  if (adam.max_exp_avg_sq().defined()) adam.max_exp_avg_sq(reslice(adam.max_exp_avg_sq()));
}

// Applies `reslice` to every tensor of an SGD, Adam or AdamW parameter state; false for
// the state of another optimizer.
bool ResliceState(torch::optim::OptimizerParamState& state, const Reslice& reslice) {
  if (auto* sgd = dynamic_cast<torch::optim::SGDParamState*>(&state)) {
    if (sgd->momentum_buffer().defined()) sgd->momentum_buffer(reslice(sgd->momentum_buffer()));
    return true;
  }
  if (auto* adam = dynamic_cast<torch::optim::AdamParamState*>(&state)) {
    ResliceMoments(*adam, reslice);
    return true;
  }
  if (auto* adamw = dynamic_cast<torch::optim::AdamWParamState*>(&state)) {
    ResliceMoments(*adamw, reslice);
    return true;
  }
  return false;
}

}  // namespace

std::map<std::string, torch::Tensor> AxisTensors(const torch::jit::Module& model,
                                                 const ChannelGraph& graph) {
  std::map<std::string, torch::Tensor> tensors;
  for (const auto& axis : graph.axes) {
    if (!tensors.count(axis.tensor)) tensors[axis.tensor] = TensorAt(model, axis.tensor).detach().clone();
  }
  return tensors;
}

KeptChannels KeptIndices(const ChannelGraph& graph,
                         const std::map<std::string, torch::Tensor>& tensors,
                         const std::vector<std::vector<int64_t>>& removed) {
  std::map<size_t, std::set<int64_t>> gone;  // axis -> indices
  for (size_t group = 0; group < removed.size(); ++group) {
    for (const auto channel : removed[group]) {
      for (const auto& slice : graph.groups[group].channels[channel].slices) {
        for (auto index = slice.begin; index < slice.end; ++index) gone[slice.axis].insert(index);
      }
    }
  }
  KeptChannels kept;
  for (const auto& [axis, indices] : gone) {
    if (indices.empty()) continue;
    const auto& tensor_axis = graph.axes[axis];
    const int64_t size = tensors.at(tensor_axis.tensor).size(tensor_axis.dim);
    std::vector<int64_t> keep;
    for (int64_t index = 0; index < size; ++index) {
      if (!indices.count(index)) keep.push_back(index);
    }
    kept[{tensor_axis.tensor, tensor_axis.dim}] = torch::tensor(keep, torch::kInt64);
  }
  return kept;
}

void RemoveChannels(torch::jit::Module& model, const std::map<std::string, torch::Tensor>& originals,
                    const KeptChannels& kept, const std::vector<std::string>& depthwise_weights) {
  torch::NoGradGuard no_grad;
  auto modules = graph::ModulesByPath(model);
  std::set<std::string> touched;
  for (const auto& [path, original] : originals) {
    const auto sliced = Sliced(original, path, kept);
    const auto [module_path, name] = SplitTensorPath(path);
    auto& module = modules.at(module_path);
    const bool requires_grad = module.attr(name).toTensor().requires_grad();
    module.setattr(name, sliced.contiguous().clone().set_requires_grad(requires_grad));
    touched.insert(module_path);
  }
  for (const auto& weight : depthwise_weights) {
    SetIntAttribute(modules.at(SplitTensorPath(weight).first), "groups",
                    TensorAt(model, weight).size(0));
  }
  for (const auto& path : touched) UpdateSizeAttributes(modules.at(path));
}

std::map<std::string, torch::Tensor> FullTensors(const torch::jit::Module& model,
                                                 const std::map<std::string, torch::Tensor>& originals,
                                                 const KeptChannels& kept) {
  std::map<std::string, torch::Tensor> full;
  for (const auto& [path, original] : originals) {
    full[path] = Expanded(TensorAt(model, path), path, original.sizes(), kept).clone();
  }
  return full;
}

void RemoveMoreChannels(torch::jit::Module& model, torch::optim::Optimizer* optimizer,
                        const std::map<std::string, torch::Tensor>& full,
                        const KeptChannels& kept_before, const KeptChannels& kept_after,
                        const std::vector<std::string>& depthwise_weights) {
  torch::NoGradGuard no_grad;
  std::map<std::string, std::unique_ptr<torch::optim::OptimizerParamState>> moved;
  if (optimizer != nullptr) {
    auto& states = optimizer->state();
    for (const auto& [path, tensor] : full) {
      const auto found = states.find(compat::OptimizerStateKey(TensorAt(model, path)));
      if (found == states.end()) continue;
      auto state = std::move(found->second);
      states.erase(found);
      const bool kept = ResliceState(*state, [&](const torch::Tensor& sliced) {
        return Sliced(Expanded(sliced, path, tensor.sizes(), kept_before), path, kept_after).contiguous();
      });
      if (kept) moved[path] = std::move(state);
    }
  }
  RemoveChannels(model, full, kept_after, depthwise_weights);
  for (auto& [path, state] : moved) {
    optimizer->state()[compat::OptimizerStateKey(TensorAt(model, path))] = std::move(state);
  }
}

}  // namespace slim::prune
