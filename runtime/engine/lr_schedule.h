// Learning-rate schedules of TrainConfig.learning_rate, as pure functions of the step.
#pragma once

#include <cstdint>

#include "runtime/config/options.h"

namespace slim::engine {

// The learning rate for optimizer step `step` (0-based) of a run of `total_steps`.
// CosineAnnealingDecay with T_max 0 anneals over the whole run (after any warmup).
double LearningRateAt(const config::LrScheduleOptions& schedule, int64_t step,
                      int64_t total_steps);

}  // namespace slim::engine
