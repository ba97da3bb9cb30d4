#include "strategies/prune/weight_masks.h"

#include <fmt/format.h>

#include "runtime/base/errors.h"
#include "strategies/graph/layer_finder.h"
#include "strategies/prune/rank_agreement.h"

namespace slim::prune {

namespace {

// CSR of `weight` as an [out, in x kh x kw] matrix with `nonzeros` entries: float32 values,
// column indices of 16 bits where the columns allow it (else 32), 32-bit row offsets.
int64_t CsrBytes(const torch::Tensor& weight, int64_t nonzeros) {
  const int64_t rows = weight.size(0);
  const int64_t columns = weight.numel() / rows;
  const int64_t index_bytes = columns <= 65536 ? 2 : 4;
  return nonzeros * (4 + index_bytes) + 4 * (rows + 1);
}

void MaskInPlace(torch::Tensor tensor, const torch::Tensor& mask) {
  if (tensor.defined()) tensor.mul_(mask);
}

}  // namespace

WeightMasks::WeightMasks(std::vector<PrunableWeight> weights) : weights_(std::move(weights)) {}

std::vector<torch::Tensor> WeightMasks::Tensors() const {
  std::vector<torch::Tensor> tensors;
  for (const auto& weight : weights_) tensors.push_back(weight.Tensor());
  return tensors;
}

void WeightMasks::Set(std::vector<torch::Tensor> masks) {
  masks_ = std::move(masks);
  ApplyToWeights();
}

void WeightMasks::ApplyToWeights() const {
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < masks_.size(); ++i) MaskInPlace(weights_[i].Tensor(), masks_[i]);
}

void WeightMasks::ApplyToGradients() const {
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < masks_.size(); ++i) MaskInPlace(weights_[i].Tensor().grad(), masks_[i]);
}

void WeightMasks::ApplyToOptimizerState(torch::optim::Optimizer& optimizer) const {
  torch::NoGradGuard no_grad;
  auto& states = optimizer.state();
  for (size_t i = 0; i < masks_.size(); ++i) {
    const auto found = states.find(c10::guts::to_string(weights_[i].Tensor().unsafeGetTensorImpl()));
    if (found == states.end()) continue;
    auto* state = found->second.get();
    if (auto* sgd = dynamic_cast<torch::optim::SGDParamState*>(state)) {
      MaskInPlace(sgd->momentum_buffer(), masks_[i]);
    } else if (auto* adam = dynamic_cast<torch::optim::AdamParamState*>(state)) {
      MaskInPlace(adam->exp_avg(), masks_[i]);
      MaskInPlace(adam->exp_avg_sq(), masks_[i]);
      MaskInPlace(adam->max_exp_avg_sq(), masks_[i]);
    } else if (auto* adamw = dynamic_cast<torch::optim::AdamWParamState*>(state)) {
      MaskInPlace(adamw->exp_avg(), masks_[i]);
      MaskInPlace(adamw->exp_avg_sq(), masks_[i]);
      MaskInPlace(adamw->max_exp_avg_sq(), masks_[i]);
    }
  }
}

void WeightMasks::CheckIdenticalAcrossRanks(comm::Communicator& comm,
                                            const std::string& section) const {
  std::vector<torch::Tensor> bytes;
  for (const auto& mask : masks_) bytes.push_back(mask.to(torch::kUInt8));
  CheckSameOnAllRanks(bytes, comm, section + ": the pruning masks");
}

double WeightMasks::Sparsity() const {
  int64_t elements = 0;
  double kept = 0;
  for (const auto& mask : masks_) {
    elements += mask.numel();
    kept += mask.sum().item<double>();
  }
  return elements == 0 ? 0 : 1 - kept / static_cast<double>(elements);
}

checkpoint::TensorMap WeightMasks::Save() const {
  checkpoint::TensorMap state;
  for (size_t i = 0; i < masks_.size(); ++i) {
    state[weights_[i].name] = masks_[i].to(torch::kUInt8);
  }
  return state;
}

void WeightMasks::Load(const checkpoint::TensorMap& state) {
  std::vector<torch::Tensor> masks;
  for (const auto& weight : weights_) {
    const auto found = state.find(weight.name);
    const auto tensor = weight.Tensor();
    if (found == state.end() || !found->second.sizes().equals(tensor.sizes())) {
      throw ModelError(fmt::format(
          "the checkpoint's pruning masks do not fit the model: {} {}; resume with the "
          "configuration that wrote the checkpoint",
          weight.name, found == state.end() ? "has no mask" : "has a mask of another shape"));
    }
    masks.push_back(found->second.to(tensor.scalar_type()));
  }
  Set(std::move(masks));
}

nlohmann::json SparsityReport(const torch::jit::Module& model,
                              const std::vector<PrunableWeight>& weights,
                              SparseStorage storage) {
  const auto modules = graph::ModulesByPath(model);
  nlohmann::json layers = nlohmann::json::array();
  int64_t elements = 0, zeros = 0, sparse_bytes = 0;
  for (const auto& weight : weights) {
    const auto tensor = modules.at(weight.layer).attr("weight").toTensor();
    const int64_t count = tensor.numel();
    const int64_t zero = count - tensor.count_nonzero().item<int64_t>();
    const int64_t bytes = storage == SparseStorage::kCsr ? CsrBytes(tensor, count - zero)
                                                         : 4 * count / 2 + (count / 2 * 2 + 7) / 8;
    layers.push_back({{"weight", weight.name},
                      {"elements", count},
                      {"zeros", zero},
                      {"sparsity", static_cast<double>(zero) / static_cast<double>(count)}});
    elements += count;
    zeros += zero;
    sparse_bytes += bytes;
  }
  int64_t parameters = 0, parameter_zeros = 0;
  for (const auto& parameter : model.parameters()) {
    parameters += parameter.numel();
    parameter_zeros += parameter.numel() - parameter.count_nonzero().item<int64_t>();
  }
  return {{"layers", layers},
          {"pruned_weights_sparsity",
           elements == 0 ? 0.0 : static_cast<double>(zeros) / static_cast<double>(elements)},
          {"model_sparsity", parameters == 0 ? 0.0
                                             : static_cast<double>(parameter_zeros) /
                                                   static_cast<double>(parameters)},
          {"pruned_weights_dense_bytes", 4 * elements},
          {storage == SparseStorage::kCsr ? "pruned_weights_csr_bytes"
                                          : "pruned_weights_2to4_bytes",
           sparse_bytes}};
}

}  // namespace slim::prune
