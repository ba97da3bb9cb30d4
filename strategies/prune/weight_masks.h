// The masks of one pruning strategy over its weights, and everything that keeps a pruned
// weight at zero: the weights themselves, their gradients (before the optimizer step) and
// the optimizer's per-weight state (momentum, Adam's moments), which would otherwise
// revive them. Masks live here, not in the model: the exported model holds the zeroed
// weights and no mask tensors.
#pragma once

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <string>
#include <vector>

#include "runtime/checkpoint/checkpoint_state.h"
#include "runtime/comm/communicator.h"
#include "strategies/prune/prunable_weights.h"

namespace slim::prune {

class WeightMasks {
 public:
  // No masks yet: every weight dense until Set.
  explicit WeightMasks(std::vector<PrunableWeight> weights);

  const std::vector<PrunableWeight>& weights() const { return weights_; }
  // The weights' current tensors, in order.
  std::vector<torch::Tensor> Tensors() const;
  bool HasMasks() const { return !masks_.empty(); }

  // Takes `masks` (one per weight, in order, shaped as it) and zeroes the pruned weights.
  void Set(std::vector<torch::Tensor> masks);

  // Zero the pruned entries of the weights / of their gradients / of the optimizer's
  // state for them (SGD momentum buffers, Adam and AdamW moments). No-ops before Set.
  void ApplyToWeights() const;
  void ApplyToGradients() const;
  void ApplyToOptimizerState(torch::optim::Optimizer& optimizer) const;

  // Every rank: throws RuntimeError naming `section` unless every rank holds the same
  // masks (one allreduce of a hash, min and max).
  void CheckIdenticalAcrossRanks(comm::Communicator& comm, const std::string& section) const;

  // Pruned share of the masked elements.
  double Sparsity() const;

  // Checkpoint state: one uint8 tensor per weight under its parameter name. Load throws
  // ModelError naming the weight when a mask is missing or shaped differently.
  checkpoint::TensorMap Save() const;
  void Load(const checkpoint::TensorMap& state);

 private:
  std::vector<PrunableWeight> weights_;
  std::vector<torch::Tensor> masks_;  // empty before Set
};

// The storage layouts a sparsity report prices a pruned weight in.
enum class SparseStorage { kCsr, kTwoFour };

// Per-layer and total sparsity of `weights` as they are in `model` (zeros counted in the
// weights, so it describes the exported file), with the bytes of the pruned weights in
// float32 dense and in `storage` (CSR of the [out, rest] matrix: float32 values, 16-bit
// column indices where the columns allow, 32-bit row offsets; 2:4: half the values plus a
// 2-bit position each).
nlohmann::json SparsityReport(const torch::jit::Module& model,
                              const std::vector<PrunableWeight>& weights,
                              SparseStorage storage);

}  // namespace slim::prune
