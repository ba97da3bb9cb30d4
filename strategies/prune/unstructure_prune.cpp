#include "strategies/prune/unstructure_prune.h"

#include <fmt/format.h>

#include <algorithm>

#include "runtime/base/errors.h"
#include "runtime/base/logging.h"
#include "strategies/prune/magnitude_masks.h"
#include "strategies/prune/prune_config.h"

namespace slim::prune {

namespace {

constexpr const char* kSection = "UnstructurePrune";
constexpr const char* kRatioKey = "schedule_ratio";

}  // namespace

std::vector<PrunableWeight> SelectUnstructuredWeights(const torch::jit::Module& model,
                                                      const UnstructurePruneOptions& options) {
  auto weights = WeightsOf(model);
  if (options.prune_params_type == "conv1x1_only") {
    weights.erase(std::remove_if(weights.begin(), weights.end(),
                                 [](const auto& weight) { return !IsPointwiseConv(weight); }),
                  weights.end());
  } else if (options.skip_first_last && weights.size() > 2) {
    weights = {weights.begin() + 1, weights.end() - 1};
  }
  weights = WithoutSkipped(std::move(weights), options.skip_params, kSection);
  if (weights.empty()) {
    throw ConfigError(fmt::format(
        "{}: no weight of the model is selected (prune_params_type: {}); {}", kSection,
        options.prune_params_type,
        options.prune_params_type == "conv1x1_only"
            ? "the model has no 1x1 convolution left to prune: set prune_params_type: null to "
              "prune every convolution and linear weight"
            : "narrow skip_params, or set skip_first_last: false"));
  }
  return weights;
}

strategies::StrategyRegistration UnstructurePrune::Registration() {
  auto registration = strategies::PruningRegistration(kSection, strategies::PassOrder::kMasks, "training");
  registration.refusals.emplace(
      "ASPPrune", "UnstructurePrune and ASPPrune would both mask the same weights; keep one of "
                  "the two sections");
  registration.parse = strategies::ParserOf(&ParseUnstructurePrune);
  registration.create = strategies::FactoryOf<UnstructurePrune, UnstructurePruneOptions>();
  return registration;
}

UnstructurePrune::UnstructurePrune(const UnstructurePruneOptions& options,
                                   const strategies::StrategyEnvironment& environment)
    : MaskedPruning(kSection, SparseStorage::kCsr, *environment.comm), options_(options) {}

void UnstructurePrune::Prepare(torch::jit::Module& model) {
  SetWeights(SelectUnstructuredWeights(model, options_));
  int64_t elements = 0;
  for (const auto& weight : masks().weights()) elements += weight.Tensor().numel();
  logging::Info(fmt::format("{}: {} weight tensor(s), {} elements, pruned by {} ({})", kSection,
                            masks().weights().size(), elements, options_.prune_mode,
                            options_.prune_strategy == "gmp" ? "gradual" : "one-shot"));
}

void UnstructurePrune::OnTrainBegin(strategies::HookContext& context) {
  plan_ = ResolveGmpPlan(options_.gmp_config, options_.ratio, context.total_steps);
  if (options_.prune_strategy != "gmp") {
    if (!masks().HasMasks()) Prune(context, options_.ratio);
    return;
  }
  logging::Info(fmt::format(
      "{}: gmp: dense for {} step(s), then {} {} rise(s) to {} over {} step(s) from {}, "
      "then {} step(s) at it",
      kSection, plan_.stable_iterations, plan_.pruning_steps, options_.gmp_config.schedule,
      plan_.final_ratio, plan_.pruning_iterations, plan_.initial_ratio,
      plan_.tunning_iterations));
  if (GmpFinalStep(plan_) > context.total_steps) {
    logging::Warning(fmt::format(
        "{}: gmp reaches ratio {} at step {}, after the run's {} steps: the model will end at "
        "ratio {:.4f}; shorten gmp_config or train longer",
        kSection, plan_.final_ratio, GmpFinalStep(plan_), context.total_steps,
        GmpRatioAt(plan_, context.total_steps)));
  }
  UpdateSchedule(context);
}

void UnstructurePrune::UpdateSchedule(strategies::HookContext& context) {
  if (options_.prune_strategy != "gmp") return;
  const double ratio = GmpRatioAt(plan_, context.step);
  if (ratio != ratio_) Prune(context, ratio);
}

void UnstructurePrune::Prune(strategies::HookContext& context, double ratio) {
  if (options_.prune_mode == "threshold") {
    SetMasks(ThresholdMasks(masks().Tensors(), options_.threshold), context,
             fmt::format("|w| < {}", options_.threshold));
    return;
  }
  if (ratio <= 0) return;
  ratio_ = ratio;
  SetMasks(RatioMasks(masks().Tensors(), ratio, options_.local_sparsity), context,
           fmt::format("ratio {:.4f} ({})", ratio,
                       options_.local_sparsity ? "per weight" : "global"));
}

void UnstructurePrune::SaveScheduleState(checkpoint::TensorMap& state) const {
  state[kRatioKey] = torch::tensor(ratio_, torch::kFloat64);
}

void UnstructurePrune::LoadScheduleState(const checkpoint::TensorMap& state) {
  const auto found = state.find(kRatioKey);
  if (found != state.end()) ratio_ = found->second.item<double>();
}

}  // namespace slim::prune
