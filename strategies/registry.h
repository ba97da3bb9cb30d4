// The strategies slim-train knows. Each strategy folder provides one registration (its
// YAML section, option parser, place in the pass order, the sections it runs with and a
// factory) and registry.cpp lists them, one line each; config parsing and the Compressor
// only go through this list.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "runtime/comm/communicator.h"
#include "runtime/config/config_loader.h"
#include "strategies/strategy.h"

namespace slim::strategies {

// Where a strategy's graph passes run among the others: structure-changing passes first
// (channel removal), then masks, then quantizers, distillation taps last.
enum class PassOrder { kStructure, kMasks, kQuantizers, kTaps };

struct StrategyRegistration {
  // The YAML section, e.g. "QuantAware".
  std::string section;
  PassOrder order = PassOrder::kQuantizers;
  // Sections this one runs together with in one job. A pair is allowed when either side
  // lists the other.
  std::vector<std::string> combines_with;
  // For sections it refuses to run with, why (shown to the user); a refused section
  // without an entry gets a generic message.
  std::map<std::string, std::string> refusals;
  // Refusals that depend on this section's options: given them and another section present
  // in the config, why the two cannot run together, or "". Unset: none.
  std::function<std::string(const config::StrategyOptions& options, const std::string& other)>
      refuses_with;
  // A section that must be present with this one, or "".
  std::string required_section;
  // Reads the section (unknown keys, types and values fail with file:line and key path).
  std::function<std::shared_ptr<config::StrategyOptions>(config::ConfigSection section)> parse;
  // Builds the strategy from what `parse` returned. Unset for a section that changes how
  // the job runs the other strategies rather than adding one (HyperParameterOptimization):
  // the Compressor builds nothing for it.
  std::function<std::unique_ptr<Strategy>(const config::StrategyOptions& options,
                                          const StrategyEnvironment& environment)>
      create;
};

// A StrategyRegistration::parse from a function filling an `Options`.
template <typename Options>
auto ParserOf(void (*parse)(config::ConfigSection, Options&)) {
  return [parse](config::ConfigSection section) -> std::shared_ptr<config::StrategyOptions> {
    auto options = std::make_shared<Options>();
    parse(section, *options);
    return options;
  };
}

// A StrategyRegistration::create for a strategy constructed as
// `StrategyType(const Options&, const StrategyEnvironment&)`.
template <typename StrategyType, typename Options>
auto FactoryOf() {
  return [](const config::StrategyOptions& options,
            const StrategyEnvironment& environment) -> std::unique_ptr<Strategy> {
    return std::make_unique<StrategyType>(static_cast<const Options&>(options), environment);
  };
}

// The registration of a pruning strategy `section` (masks: UnstructurePrune, ASPPrune;
// structure: ChannelPrune, TransformerPrune) at pass `order`: runs with QuantAware,
// Distillation and MultiTeacherDistillation; refuses QuantPost, which only calibrates,
// saying that the strategy `needs` ("training", "fine-tuning") and to quantize in a
// second run.
StrategyRegistration PruningRegistration(const std::string& section, PassOrder order,
                                         const std::string& needs);

// Every registered strategy, in pass order.
const std::vector<StrategyRegistration>& RegisteredStrategies();

// Reads every strategy section present under `top` into config.strategies, and accepts
// with a warning the sections of ACT's example configs that ACT ignores (Eval, Train,
// PostProcess, Metric, Prune, DataLoader). Throws ConfigError for a section of a strategy
// this version does not have, and for two sections that do not run together (naming
// both, with the reason).
void ParseStrategySections(config::ConfigSection& top, config::Config& config);

// config::LoadConfig with every registered strategy's section.
config::Config LoadJobConfig(const std::string& file, const std::vector<std::string>& overrides);

}  // namespace slim::strategies
