// What the mask-based pruning strategies (UnstructurePrune, ASPPrune) share: once a
// subclass has set masks, pruned weights stay exactly zero through training (gradients
// masked before the optimizer step, weights and the optimizer's state after it), the masks
// are checkpoint state, and the export reports the sparsity of the weights it holds.
// Masks are computed from the weights, which are identical on every rank, and checked
// to be identical across ranks whenever they change.
#pragma once

#include <memory>
#include <string>

#include "runtime/comm/communicator.h"
#include "strategies/prune/weight_masks.h"
#include "strategies/registry.h"
#include "strategies/strategy.h"

namespace slim::prune {

class MaskedPruning : public strategies::Strategy {
 public:
  MaskedPruning(std::string name, SparseStorage storage, comm::Communicator& comm);

  std::string Name() const override { return name_; }
  void OnBeforeOptimizerStep(strategies::HookContext& context) override;
  // Masks weights and optimizer state, after UpdateSchedule.
  void OnAfterOptimizerStep(strategies::HookContext& context) override;
  void Export(const torch::jit::Module& finalized, const std::string& output_dir,
              nlohmann::json& report) const override;
  checkpoint::TensorMap SaveState() const override;
  void LoadState(const checkpoint::TensorMap& state, torch::jit::Module& model) override;

 protected:
  // The weights this strategy masks, chosen in Prepare; set once.
  void SetWeights(std::vector<PrunableWeight> weights);
  WeightMasks& masks() { return *masks_; }
  const WeightMasks& masks() const { return *masks_; }

  // Every rank: takes new masks, zeroes the pruned weights and their optimizer state
  // (when `context` has an optimizer), checks the ranks agree and logs `what`.
  void SetMasks(std::vector<torch::Tensor> masks, strategies::HookContext& context,
                const std::string& what);

  // After each optimizer step, before the masks are applied: a schedule may set new
  // masks here.
  virtual void UpdateSchedule(strategies::HookContext& context) {}
  // Extra checkpoint state (the schedule's position), and its restore.
  virtual void SaveScheduleState(checkpoint::TensorMap& state) const {}
  virtual void LoadScheduleState(const checkpoint::TensorMap& state) {}

 private:
  std::string name_;
  SparseStorage storage_;
  comm::Communicator& comm_;
  std::unique_ptr<WeightMasks> masks_;
};

}  // namespace slim::prune
