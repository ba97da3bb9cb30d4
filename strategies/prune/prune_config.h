// Parsing of the UnstructurePrune and ASPPrune config sections.
#pragma once

#include "runtime/config/config_section.h"
#include "strategies/prune/prune_options.h"

namespace slim::prune {

// Reads UnstructurePrune into `out`; throws ConfigError naming the key for a ratio outside
// (0, 1), a threshold <= 0, unknown prune_strategy / prune_mode / prune_params_type /
// gmp_config.schedule, gmp with prune_mode threshold, gmp_config counts < 0 or
// initial_ratio outside [0, ratio), a resume_iteration other than -1 or 0 (checkpoints
// hold the schedule) and unknown keys.
void ParseUnstructurePrune(config::ConfigSection section, UnstructurePruneOptions& out);

// Reads ASPPrune into `out`; throws ConfigError for unknown keys.
void ParseAspPrune(config::ConfigSection section, AspPruneOptions& out);

// Reads ChannelPrune into `out`; throws ConfigError naming the key for a ratio outside
// [0, 1), an unknown criterion, round_to < 1, a target_macs_ratio outside (0, 1) or
// together with pruned_ratio, an unknown prune_schedule, n_steps outside [1, 1000] or
// without iterative, and unknown keys.
void ParseChannelPrune(config::ConfigSection section, ChannelPruneOptions& out);

// Reads TransformerPrune into `out`; throws ConfigError naming the key for a ratio outside
// [0, 1), an unknown importance, batch_num outside [1, 100000] or without
// loss_sensitivity, and unknown keys.
void ParseTransformerPrune(config::ConfigSection section, TransformerPruneOptions& out);

// Reads ResRep into `out`; throws ConfigError naming the key for a flops_target outside
// (0, 1), negative strengths, rates and thresholds, num_at_least < 1, step counts out of
// range, and unknown keys.
void ParseResRep(config::ConfigSection section, ResRepOptions& out);

}  // namespace slim::prune
