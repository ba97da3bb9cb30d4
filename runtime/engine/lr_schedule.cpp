#include "runtime/engine/lr_schedule.h"

#include <algorithm>
#include <cmath>

namespace slim::engine {

double LearningRateAt(const config::LrScheduleOptions& schedule, int64_t step,
                      int64_t total_steps) {
  if (schedule.type == "LinearWarmup") {
    if (step < schedule.warmup_steps) {
      const double progress = static_cast<double>(step) / schedule.warmup_steps;
      return schedule.start_lr + (schedule.end_lr - schedule.start_lr) * progress;
    }
    return LearningRateAt(*schedule.after_warmup, step - schedule.warmup_steps,
                          std::max<int64_t>(1, total_steps - schedule.warmup_steps));
  }
  if (schedule.type == "CosineAnnealingDecay") {
    const int64_t period = schedule.t_max > 0 ? schedule.t_max : std::max<int64_t>(1, total_steps);
    const double progress = static_cast<double>(std::min(step, period)) / period;
    return schedule.eta_min +
           (schedule.learning_rate - schedule.eta_min) * (1 + std::cos(M_PI * progress)) / 2;
  }
  if (schedule.type == "PiecewiseDecay") {
    // values[i] applies from boundaries[i-1] (inclusive) to boundaries[i] (exclusive).
    const auto passed =
        std::upper_bound(schedule.boundaries.begin(), schedule.boundaries.end(), step) -
        schedule.boundaries.begin();
    return schedule.values[passed];
  }
  if (schedule.type == "ExponentialDecay") {
    return schedule.learning_rate * std::pow(schedule.gamma, static_cast<double>(step));
  }
  return schedule.learning_rate;
}

}  // namespace slim::engine
