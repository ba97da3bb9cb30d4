#include "strategies/prune/prune_sensitivity.h"

#include <fmt/format.h>

#include "runtime/base/errors.h"
#include "runtime/base/logging.h"
#include "strategies/prune/magnitude_masks.h"
#include "strategies/prune/unstructure_prune.h"

namespace slim::prune {

namespace {

constexpr const char* kSection = "UnstructurePrune";

}  // namespace

const std::vector<double>& AnalysedRatios() {
  static const std::vector<double> ratios = {0.3, 0.5, 0.7, 0.9};
  return ratios;
}

PruneAnalysis UsePruningForAnalysis(config::Config& config) {
  if (config.global.eval_data.empty()) {
    throw ConfigError(config.file + ": --analyze prune measures accuracy on Global.eval_data; "
                      "set it");
  }
  if (config.HasStrategy("ChannelPrune")) {
    PruneAnalysis analysis{std::static_pointer_cast<const ChannelPruneOptions>(
        config.strategies.at("ChannelPrune"))};
    config.strategies.clear();
    return analysis;
  }
  std::shared_ptr<config::StrategyOptions> selection;
  if (config.HasStrategy(kSection)) {
    selection = config.strategies.at(kSection);
  } else {
    auto defaults = std::make_shared<UnstructurePruneOptions>();
    defaults->prune_params_type = "none";
    selection = defaults;
  }
  config.strategies.clear();
  config.strategies[kSection] = selection;
  return {};
}

PruneSensitivityReport AnalyzePruneSensitivity(
    const std::vector<PrunableWeight>& weights, const std::vector<double>& ratios,
    const std::function<strategies::EvalMetrics()>& evaluate) {
  PruneSensitivityReport report;
  report.dense = evaluate();
  torch::NoGradGuard no_grad;
  for (const auto& weight : weights) {
    auto tensor = weight.Tensor();
    const auto dense = tensor.clone();
    WeightSensitivity sensitivity{weight.name, {}, 0};
    for (double ratio : ratios) {
      tensor.mul_(RatioMasks({dense}, ratio, /*local=*/true).front());
      sensitivity.results.push_back({ratio, evaluate()});
      tensor.copy_(dense);
    }
    sensitivity.suggested_ratio = SuggestedRatio(sensitivity.results, report.dense);
    logging::Info(fmt::format("{}: suggested ratio {:.2f}", weight.name,
                              sensitivity.suggested_ratio));
    report.weights.push_back(std::move(sensitivity));
  }
  return report;
}

void RunPruneSensitivity(torch::jit::Module& model, const config::Config& config,
                         const std::function<strategies::EvalMetrics()>& evaluate,
                         comm::Communicator& comm) {
  const auto weights =
      SelectUnstructuredWeights(model, config.StrategyOptionsOf<UnstructurePruneOptions>(kSection));
  logging::Info(fmt::format("evaluating {} times: dense, and each of {} weights pruned alone "
                            "to {} ratios",
                            1 + weights.size() * AnalysedRatios().size(), weights.size(),
                            AnalysedRatios().size()));
  const auto report = AnalyzePruneSensitivity(weights, AnalysedRatios(), evaluate);
  if (comm.Rank() == 0) {
    WriteSensitivityOutputs(
        report, AnalysedRatios(),
        {"weight", "each weight pruned alone by magnitude",
         fmt::format("suggested unstructured ratio (top-1 drop <= {:.1f} point)",
                     kToleratedDropPoints)},
        "", nlohmann::json::object(), config.global.output_dir);
  }
  comm.Barrier()->Wait(comm.DefaultTimeout());
}

}  // namespace slim::prune
