// Parsing of the QuantAware and QuantPost config sections.
#pragma once

#include "runtime/config/config_section.h"
#include "strategies/quant/quant_options.h"

namespace slim::quant {

// Reads QuantAware into `out`; throws ConfigError naming the key for unknown op types,
// bits outside 2..16, unknown quantize types and unknown keys.
void ParseQuantAware(config::ConfigSection section, QuantAwareOptions& out);

// Reads QuantPost into `out`, with the same checks plus ptq_algo and the batches.
void ParseQuantPost(config::ConfigSection section, QuantPostOptions& out);

}  // namespace slim::quant
