#include "runtime/checkpoint/state_capture.h"

#include <unordered_map>

#include "runtime/base/errors.h"
#include "runtime/base/text.h"
#include "runtime/base/torch_compat.h"

namespace slim::checkpoint {

namespace {

torch::Tensor CpuCopy(const torch::Tensor& tensor) {
  return tensor.detach().to(torch::kCPU, /*non_blocking=*/false, /*copy=*/true).contiguous();
}

// Parameters and buffers of `model` under one name space, as the checkpoint groups them.
std::vector<std::pair<std::string, torch::Tensor>> NamedState(const torch::jit::Module& model,
                                                              bool buffers) {
  std::vector<std::pair<std::string, torch::Tensor>> named;
  if (buffers) {
    for (const auto& item : model.named_buffers()) named.emplace_back(item.name, item.value);
  } else {
    for (const auto& item : model.named_parameters()) named.emplace_back(item.name, item.value);
  }
  return named;
}

// "[3, 4] Float": a tensor's shape and type, for mismatch messages.
std::string TensorText(const torch::Tensor& tensor) {
  return ShapeText(tensor.sizes()) + " " + c10::toString(tensor.scalar_type());
}

// Appends the differences between one group of the checkpoint and the model's tensors.
void CompareGroup(const TensorMap& saved, const std::vector<std::pair<std::string, torch::Tensor>>& live,
                  const std::string& kind, std::vector<std::string>& differences) {
  std::set<std::string> seen;
  for (const auto& [name, tensor] : live) {
    seen.insert(name);
    const auto found = saved.find(name);
    if (found == saved.end()) {
      differences.push_back("missing in the checkpoint: " + kind + " " + name);
    } else if (found->second.sizes() != tensor.sizes() ||
               found->second.scalar_type() != tensor.scalar_type()) {
      differences.push_back(kind + " " + name + ": checkpoint " + TensorText(found->second) +
                            ", model " + TensorText(tensor));
    }
  }
  for (const auto& [name, tensor] : saved) {
    if (!seen.count(name)) differences.push_back("not in the model: " + kind + " " + name);
  }
}

// Copies the tensors of `saved` into the matching live tensors; returns the names that
// did not match when `only_matching`, else requires all to match.
std::vector<std::string> CopyInto(const TensorMap& saved,
                                  const std::vector<std::pair<std::string, torch::Tensor>>& live,
                                  bool only_matching) {
  torch::NoGradGuard no_grad;
  std::vector<std::string> skipped;
  for (const auto& [name, tensor] : live) {
    const auto found = saved.find(name);
    const bool matches = found != saved.end() && found->second.sizes() == tensor.sizes() &&
                         found->second.scalar_type() == tensor.scalar_type();
    if (!matches) {
      if (!only_matching) throw ModelError("checkpoint tensor " + name + " does not match");
      skipped.push_back(name);
      continue;
    }
    tensor.copy_(found->second);
  }
  return skipped;
}

// Parameter name by optimizer-state key.
std::unordered_map<std::string, std::string> ParameterNamesByKey(const torch::jit::Module& model) {
  std::unordered_map<std::string, std::string> names;
  for (const auto& item : model.named_parameters()) {
    names[compat::OptimizerStateKey(item.value)] = item.name;
  }
  return names;
}

template <typename AdamState>
void VisitAdamState(const AdamState& adam, const StateTensorVisitor& visit) {
  visit("step", torch::tensor(adam.step(), torch::kInt64));
  visit("exp_avg", adam.exp_avg());
  visit("exp_avg_sq", adam.exp_avg_sq());
  if (adam.max_exp_avg_sq().defined()) visit("max_exp_avg_sq", adam.max_exp_avg_sq());
}

template <typename AdamState>
std::unique_ptr<torch::optim::OptimizerParamState> RestoreAdamState(const TensorMap& tensors,
                                                                   const torch::Device& device) {
  auto adam = std::make_unique<AdamState>();
  adam->step(tensors.at("step").item<int64_t>());
  adam->exp_avg(tensors.at("exp_avg").to(device, false, true));
  adam->exp_avg_sq(tensors.at("exp_avg_sq").to(device, false, true));
  const auto max = tensors.find("max_exp_avg_sq");
  if (max != tensors.end()) adam->max_exp_avg_sq(max->second.to(device, false, true));
  return adam;
}

}  // namespace

void VisitParamState(const torch::optim::OptimizerParamState& state, const std::string& name,
                     const StateTensorVisitor& visit) {
  if (const auto* sgd = dynamic_cast<const torch::optim::SGDParamState*>(&state)) {
    visit("momentum_buffer", sgd->momentum_buffer());
  } else if (const auto* adam = dynamic_cast<const torch::optim::AdamParamState*>(&state)) {
    VisitAdamState(*adam, visit);
  } else if (const auto* adamw = dynamic_cast<const torch::optim::AdamWParamState*>(&state)) {
    VisitAdamState(*adamw, visit);
  } else {
    throw ModelError("cannot checkpoint the optimizer state of parameter " + name +
                     ": unknown optimizer state type");
  }
}

TensorMap CaptureParamState(const torch::optim::OptimizerParamState& state,
                            const std::string& name) {
  TensorMap tensors;
  VisitParamState(state, name, [&](const std::string& key, const torch::Tensor& tensor) {
    tensors[key] = CpuCopy(tensor);
  });
  return tensors;
}

std::unique_ptr<torch::optim::OptimizerParamState> RestoreParamState(const TensorMap& tensors,
                                                                    const std::string& type,
                                                                    const torch::Device& device) {
  if (type == "Adam") return RestoreAdamState<torch::optim::AdamParamState>(tensors, device);
  if (type == "AdamW") return RestoreAdamState<torch::optim::AdamWParamState>(tensors, device);
  auto sgd = std::make_unique<torch::optim::SGDParamState>();
  sgd->momentum_buffer(tensors.at("momentum_buffer").to(device, false, true));
  return sgd;
}

void CaptureModel(const torch::jit::Module& model, CheckpointState& state) {
  for (const auto& [name, tensor] : NamedState(model, false)) state.parameters[name] = CpuCopy(tensor);
  for (const auto& [name, tensor] : NamedState(model, true)) state.buffers[name] = CpuCopy(tensor);
}

void CaptureOptimizer(const torch::optim::Optimizer& optimizer, const std::string& type,
                      const torch::jit::Module& model, CheckpointState& state) {
  state.optimizer_type = type;
  const auto names = ParameterNamesByKey(model);
  for (const auto& [key, param_state] : optimizer.state()) {
    const auto name = names.find(key);
    if (name == names.end()) {
      throw ModelError("the optimizer holds state for a tensor that is not a model parameter");
    }
    state.optimizer_state[name->second] = CaptureParamState(*param_state, name->second);
  }
}

std::vector<std::string> ModelDifferences(const CheckpointState& state,
                                          const torch::jit::Module& model) {
  std::vector<std::string> differences;
  CompareGroup(state.parameters, NamedState(model, false), "parameter", differences);
  CompareGroup(state.buffers, NamedState(model, true), "buffer", differences);
  return differences;
}

void RestoreModel(const CheckpointState& state, torch::jit::Module& model) {
  CopyInto(state.parameters, NamedState(model, false), /*only_matching=*/false);
  CopyInto(state.buffers, NamedState(model, true), /*only_matching=*/false);
}

std::vector<std::string> RestoreMatchingWeights(const CheckpointState& state,
                                                torch::jit::Module& model) {
  auto skipped = CopyInto(state.parameters, NamedState(model, false), true);
  for (auto& name : CopyInto(state.buffers, NamedState(model, true), true)) {
    skipped.push_back(std::move(name));
  }
  return skipped;
}

void RestoreOptimizer(const CheckpointState& state, torch::optim::Optimizer& optimizer,
                      const torch::jit::Module& model) {
  auto& live = optimizer.state();
  live.clear();
  for (const auto& item : model.named_parameters()) {
    const auto saved = state.optimizer_state.find(item.name);
    if (saved == state.optimizer_state.end()) continue;
    auto restored = RestoreParamState(saved->second, state.optimizer_type, item.value.device());
    live[compat::OptimizerStateKey(item.value)] = std::move(restored);
  }
}

}  // namespace slim::checkpoint
