// Options of HyperParameterOptimization: the search over QuantPost's settings, with the key
// names and defaults of PaddleSlim ACT's section of that name, plus the sampler, the
// objective, the acceptance criterion, the budgets and the rank groups of the trials.
// docs/hyperparameter_search.md shows the same text.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/config/options.h"

namespace slim::hpo {

struct HpoOptions : config::StrategyOptions {
  // The search space. Candidate lists are searched as categories; hist_percent and
  // batch_num are [low, high] ranges (a float and an integer range). ACT's defaults.
  std::vector<std::string> ptq_algo = {"KL", "hist", "avg", "mse"};
  std::vector<bool> bias_correct = {true};
  std::vector<std::string> weight_quantize_type = {"channel_wise_abs_max"};
  double hist_percent_low = 0.98;
  double hist_percent_high = 0.999;
  int64_t batch_num_low = 10;
  int64_t batch_num_high = 30;
  // max_quant_count: trials in all (ACT's key). Default 20.
  int64_t max_quant_count = 20;
  // sampler: tpe (default), random or grid; seed: its seed (default Global.seed).
  std::string sampler = "tpe";
  int64_t seed = -1;  // -1: Global.seed
  // objective: emd (ACT's: mean 1-D Wasserstein distance between the standardised float
  // and quantized outputs of each eval batch) or metric (the drop in eval top-1).
  std::string objective = "emd";
  // accuracy_criterion: the top-1 drop a trial may have to pass, `relative` (a share of
  // the float top-1) or `absolute` (top-1 points as a fraction). Unset: every trial passes.
  bool has_accuracy_criterion = false;
  bool relative_criterion = true;
  double allowed_drop = 0;
  // stop_at_first_pass: hand out no trial after one passed accuracy_criterion.
  bool stop_at_first_pass = false;
  // time_budget_minutes: no trial starts once this much time has passed since the run
  // started its first trial (0: no limit). Trials running then finish; a run always
  // starts at least one trial.
  double time_budget_minutes = 0;
  // trial_group_size: ranks per trial; the world splits into world_size / trial_group_size
  // groups that run trials in parallel. Default 1.
  int64_t trial_group_size = 1;
};

}  // namespace slim::hpo
