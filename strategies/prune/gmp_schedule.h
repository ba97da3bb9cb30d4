// Gradual magnitude pruning's schedule: which share of the weights is pruned after a given
// number of optimizer steps. Dense for stable_iterations steps, then pruning_steps ratios
// each held for pruning_iterations / pruning_steps steps, rising from initial_ratio along
// a cubic (Zhu and Gupta 2017: s_f + (s_i - s_f)(1 - i/n)^3, as PaddleSlim and SparseML
// have it) or linear curve, then the final ratio for the rest of training.
#pragma once

#include <cstdint>

#include "strategies/prune/prune_options.h"

namespace slim::prune {

struct GmpPlan {
  int64_t stable_iterations = 0;
  int64_t pruning_iterations = 0;
  int64_t tunning_iterations = 0;
  int64_t pruning_steps = 1;
  double initial_ratio = 0;
  double final_ratio = 0;
  bool cubic = true;
};

// `options` with ACT's automatic values for the keys left at -1, for a run of
// `total_steps` optimizer steps pruning to `final_ratio`: pruning and tuning iterations
// max(0.45 x total_steps, 30) each, pruning_steps 100 when that exceeds 1000 else 1,
// stable_iterations 0.
GmpPlan ResolveGmpPlan(const GmpOptions& options, double final_ratio, int64_t total_steps);

// The ratio pruned once `step` optimizer steps are done (0 while stable).
double GmpRatioAt(const GmpPlan& plan, int64_t step);

// The first step at which GmpRatioAt reaches the final ratio.
int64_t GmpFinalStep(const GmpPlan& plan);

}  // namespace slim::prune
