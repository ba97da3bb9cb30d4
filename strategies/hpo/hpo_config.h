// The HyperParameterOptimization section: its parser and its registration. The section
// adds no strategy to the Compressor; it tells the launcher to run QuantPost as a search
// (search/quant_search.h) instead of once.
#pragma once

#include "runtime/config/config_section.h"
#include "strategies/hpo/hpo_options.h"
#include "strategies/registry.h"

namespace slim::hpo {

// Reads the section. Throws ConfigError (file:line, key) for an unknown key, an empty
// candidate list, a candidate QuantPost does not know, a range that is not [low, high]
// with low <= high inside QuantPost's bounds, or an unknown sampler or objective.
void ParseHpo(config::ConfigSection section, HpoOptions& out);

// Section HyperParameterOptimization: only with QuantPost, which it requires.
strategies::StrategyRegistration HpoRegistration();

}  // namespace slim::hpo
