// Parsing of the QuantAware and QuantPost config sections.
#pragma once

#include "runtime/config/config_section.h"
#include "strategies/quant/quant_options.h"

namespace slim::quant {

// Reads QuantAware into `out`; throws ConfigError naming the key for unknown op types,
// bits outside 2..16, unknown quantize types, ACT's for_tensorrt: true (an op list this
// pass does not have) and unknown keys. ACT's op names (mul, matmul_v2,
// conv2d_transpose) are translated into the pass's.
void ParseQuantAware(config::ConfigSection section, QuantAwareOptions& out);

// Reads QuantPost into `out`, with the same checks plus ptq_algo and the batches. ACT's
// names algo, batch_nums and bias_correction are aliases (both spellings of one key are
// an error naming both); its reconstruction (recon_level) is refused, and the keys only
// reconstruction reads are accepted with a warning.
void ParseQuantPost(config::ConfigSection section, QuantPostOptions& out);

}  // namespace slim::quant
