#include "strategies/prune/masked_pruning.h"

#include <fmt/format.h>

#include "runtime/base/logging.h"

namespace slim::prune {

namespace {

constexpr const char* kHasMasks = "has_masks";

}  // namespace

MaskedPruning::MaskedPruning(std::string name, SparseStorage storage, comm::Communicator& comm)
    : name_(std::move(name)),
      storage_(storage),
      comm_(comm),
      masks_(std::make_unique<WeightMasks>(std::vector<PrunableWeight>{})) {}

void MaskedPruning::SetWeights(std::vector<PrunableWeight> weights) {
  masks_ = std::make_unique<WeightMasks>(std::move(weights));
}

void MaskedPruning::SetMasks(std::vector<torch::Tensor> masks, strategies::HookContext& context,
                             const std::string& what) {
  masks_->Set(std::move(masks));
  if (context.optimizer != nullptr) masks_->ApplyToOptimizerState(*context.optimizer);
  masks_->CheckIdenticalAcrossRanks(comm_, name_);
  logging::Info(fmt::format("{}: step {}: {}: {:.2f} % of {} weight tensor(s) pruned", name_,
                            context.step, what, 100 * masks_->Sparsity(),
                            masks_->weights().size()));
}

void MaskedPruning::OnBeforeOptimizerStep(strategies::HookContext& context) {
  masks_->ApplyToGradients();
}

void MaskedPruning::OnAfterOptimizerStep(strategies::HookContext& context) {
  UpdateSchedule(context);
  masks_->ApplyToWeights();
  if (context.optimizer != nullptr) masks_->ApplyToOptimizerState(*context.optimizer);
}

void MaskedPruning::Export(const torch::jit::Module& finalized, const std::string& output_dir,
                           nlohmann::json& report) const {
  report["sparsity"][name_] = SparsityReport(finalized, masks_->weights(), storage_);
}

checkpoint::TensorMap MaskedPruning::SaveState() const {
  auto state = masks_->Save();
  state[kHasMasks] = torch::tensor(int64_t{masks_->HasMasks()});
  SaveScheduleState(state);
  return state;
}

void MaskedPruning::LoadState(const checkpoint::TensorMap& state, torch::jit::Module& model) {
  const auto has_masks = state.find(kHasMasks);
  if (has_masks != state.end() && has_masks->second.item<int64_t>() != 0) masks_->Load(state);
  LoadScheduleState(state);
}

}  // namespace slim::prune
