#include "runtime/engine/lr_schedule.h"

#include <gtest/gtest.h>

#include <cmath>

namespace slim::engine {
namespace {

TEST(LrSchedule, ConstantStaysPut) {
  config::LrScheduleOptions constant;
  constant.learning_rate = 0.3;
  EXPECT_DOUBLE_EQ(LearningRateAt(constant, 0, 10), 0.3);
  EXPECT_DOUBLE_EQ(LearningRateAt(constant, 9, 10), 0.3);
}

TEST(LrSchedule, CosineFollowsTheFormula) {
  config::LrScheduleOptions cosine;
  cosine.type = "CosineAnnealingDecay";
  cosine.learning_rate = 1.0;
  cosine.eta_min = 0.1;
  EXPECT_DOUBLE_EQ(LearningRateAt(cosine, 0, 100), 1.0);
  EXPECT_NEAR(LearningRateAt(cosine, 50, 100), 0.55, 1e-12);
  EXPECT_NEAR(LearningRateAt(cosine, 25, 100), 0.1 + 0.9 * (1 + std::cos(M_PI / 4)) / 2, 1e-12);
  cosine.t_max = 10;
  EXPECT_NEAR(LearningRateAt(cosine, 10, 100), 0.1, 1e-12);
  EXPECT_NEAR(LearningRateAt(cosine, 40, 100), 0.1, 1e-12);
}

TEST(LrSchedule, PiecewiseSwitchesAfterEachBoundary) {
  config::LrScheduleOptions piecewise;
  piecewise.type = "PiecewiseDecay";
  piecewise.boundaries = {3, 6};
  piecewise.values = {1.0, 0.1, 0.01};
  EXPECT_DOUBLE_EQ(LearningRateAt(piecewise, 0, 10), 1.0);
  EXPECT_DOUBLE_EQ(LearningRateAt(piecewise, 2, 10), 1.0);
  EXPECT_DOUBLE_EQ(LearningRateAt(piecewise, 3, 10), 0.1);
  EXPECT_DOUBLE_EQ(LearningRateAt(piecewise, 5, 10), 0.1);
  EXPECT_DOUBLE_EQ(LearningRateAt(piecewise, 6, 10), 0.01);
}

TEST(LrSchedule, LinearWarmupThenInnerSchedule) {
  auto inner = std::make_shared<config::LrScheduleOptions>();
  inner->type = "ExponentialDecay";
  inner->learning_rate = 0.5;
  inner->gamma = 0.5;
  config::LrScheduleOptions warmup;
  warmup.type = "LinearWarmup";
  warmup.warmup_steps = 4;
  warmup.start_lr = 0.0;
  warmup.end_lr = 0.5;
  warmup.after_warmup = inner;
  EXPECT_DOUBLE_EQ(LearningRateAt(warmup, 0, 10), 0.0);
  EXPECT_DOUBLE_EQ(LearningRateAt(warmup, 2, 10), 0.25);
  EXPECT_DOUBLE_EQ(LearningRateAt(warmup, 4, 10), 0.5);
  EXPECT_DOUBLE_EQ(LearningRateAt(warmup, 6, 10), 0.125);
}

}  // namespace
}  // namespace slim::engine
