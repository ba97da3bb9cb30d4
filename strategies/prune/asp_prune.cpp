#include "strategies/prune/asp_prune.h"

#include <fmt/format.h>

#include "runtime/base/errors.h"
#include "runtime/base/logging.h"
#include "strategies/prune/magnitude_masks.h"
#include "strategies/prune/prune_config.h"

namespace slim::prune {

namespace {

constexpr const char* kSection = "ASPPrune";

}  // namespace

strategies::StrategyRegistration AspPrune::Registration() {
  auto registration = strategies::PruningRegistration(kSection, strategies::PassOrder::kMasks, "training");
  registration.parse = strategies::ParserOf(&ParseAspPrune);
  registration.create = strategies::FactoryOf<AspPrune, AspPruneOptions>();
  return registration;
}

AspPrune::AspPrune(const AspPruneOptions& options,
                   const strategies::StrategyEnvironment& environment)
    : MaskedPruning(kSection, SparseStorage::kTwoFour, *environment.comm), options_(options) {}

void AspPrune::Prepare(torch::jit::Module& model) {
  auto candidates = WeightsOf(model);
  if (!options_.prune_params_name.empty()) {
    candidates = NamedWeights(candidates, options_.prune_params_name, kSection);
  }
  candidates = WithoutSkipped(std::move(candidates), options_.skip_params, kSection);
  std::vector<PrunableWeight> pruned;
  for (auto& weight : candidates) {
    const auto why = TwoFourRefusal(weight.Tensor());
    if (why.empty()) {
      pruned.push_back(std::move(weight));
    } else {
      skipped_.emplace_back(weight.name, why);
      logging::Warning(fmt::format("{}: {} stays dense: {}", kSection, weight.name, why));
    }
  }
  if (pruned.empty()) {
    throw ConfigError(fmt::format("{}: no selected weight can take 2:4 sparsity (each needs a "
                                  "multiple of 4 input channels per group); {} skipped",
                                  kSection, skipped_.size()));
  }
  logging::Info(fmt::format("{}: 2:4 on {} weight tensor(s), {} skipped", kSection,
                            pruned.size(), skipped_.size()));
  SetWeights(std::move(pruned));
}

void AspPrune::OnTrainBegin(strategies::HookContext& context) {
  if (masks().HasMasks()) return;
  std::vector<torch::Tensor> two_four;
  for (const auto& tensor : masks().Tensors()) two_four.push_back(TwoFourMask(tensor));
  SetMasks(std::move(two_four), context, "2:4");
}

void AspPrune::Export(const torch::jit::Module& finalized, const std::string& output_dir,
                      nlohmann::json& report) const {
  MaskedPruning::Export(finalized, output_dir, report);
  auto& skipped = report["sparsity"][kSection]["skipped"] = nlohmann::json::array();
  for (const auto& [weight, why] : skipped_) skipped.push_back({{"weight", weight}, {"why", why}});
}

}  // namespace slim::prune
