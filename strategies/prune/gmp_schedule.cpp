#include "strategies/prune/gmp_schedule.h"

#include <algorithm>
#include <cmath>

namespace slim::prune {

namespace {

constexpr double kAutoShare = 0.45;        // of the steps spent pruning, and tuning
constexpr int64_t kAutoMinimum = 30;       // steps, at least
constexpr int64_t kManyStepsAbove = 1000;  // pruning iterations that warrant many rises
constexpr int64_t kManySteps = 100;

int64_t OrAuto(int64_t value, int64_t automatic) { return value >= 0 ? value : automatic; }

}  // namespace

GmpPlan ResolveGmpPlan(const GmpOptions& options, double final_ratio, int64_t total_steps) {
  const double share = kAutoShare * static_cast<double>(total_steps);
  const int64_t phase = std::max(static_cast<int64_t>(share), kAutoMinimum);
  GmpPlan plan;
  plan.stable_iterations = OrAuto(options.stable_iterations, 0);
  plan.pruning_iterations = OrAuto(options.pruning_iterations, phase);
  plan.tunning_iterations = OrAuto(options.tunning_iterations, phase);
  plan.pruning_steps =
      OrAuto(options.pruning_steps, share > static_cast<double>(kManyStepsAbove) ? kManySteps : 1);
  plan.initial_ratio = options.initial_ratio;
  plan.final_ratio = final_ratio;
  plan.cubic = options.schedule == "cubic";
  return plan;
}

// Steps each ratio of the pruning phase is held.
int64_t PeriodOf(const GmpPlan& plan) {
  return std::max<int64_t>(plan.pruning_iterations / std::max<int64_t>(plan.pruning_steps, 1), 1);
}

double GmpRatioAt(const GmpPlan& plan, int64_t step) {
  if (step < plan.stable_iterations) return 0;
  const int64_t steps = std::max<int64_t>(plan.pruning_steps, 1);
  const int64_t index = (step - plan.stable_iterations) / PeriodOf(plan);
  if (index >= steps) return plan.final_ratio;
  const double progress = static_cast<double>(index) / static_cast<double>(steps);
  const double rise = plan.cubic ? 1 - std::pow(1 - progress, 3) : progress;
  return plan.initial_ratio + (plan.final_ratio - plan.initial_ratio) * rise;
}

int64_t GmpFinalStep(const GmpPlan& plan) {
  return plan.stable_iterations + PeriodOf(plan) * std::max<int64_t>(plan.pruning_steps, 1);
}

}  // namespace slim::prune
