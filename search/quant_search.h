// The job of a config with HyperParameterOptimization: QuantPost run as a search over its
// settings instead of once. The world splits into groups of trial_group_size ranks; each
// group calibrates and scores one trial at a time on its own (QuantPost's reductions and
// the scoring run over the group), and a coordinator on rank 0 (search_coordinator.h)
// hands out the trials to whichever group is free. Every finished trial is logged in
// hpo/trials.jsonl; the group whose trial became the best exports its model, which the
// coordinator then moves into the output directory, so a stop at any point leaves the best
// model found so far. A search whose log exists continues it (--resume auto).
#pragma once

#include "runtime/engine/trainer.h"
#include "search/search_space.h"
#include "strategies/hpo/hpo_options.h"
#include "strategies/strategy.h"

namespace slim::search {

// The search space of `options`: ptq_algo, bias_correct and weight_quantize_type as
// choices, hist_percent a float range, batch_num an integer range.
SearchSpace QuantSearchSpace(const hpo::HpoOptions& options);

// Throws ConfigError (naming the key) when `world_size` ranks cannot form groups of
// trial_group_size, or when the config has no eval_data to score the trials on.
void CheckSearchLayout(const config::Config& config, int world_size);

// Runs the search. `setup.input_model` is the float model; `context` what the strategies
// of each trial are built with. With `fresh` (--resume none) an earlier search's hpo/
// folder is moved aside first. Collective over setup.comm.
void RunQuantSearch(const engine::TrainingSetup& setup, const strategies::JobContext& context,
                    bool fresh);

}  // namespace slim::search
