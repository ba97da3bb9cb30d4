// The Tree-structured Parzen Estimator (Bergstra et al., 2011), univariate as in Optuna's
// default: after the first uniform trials, the finished trials are split into the best
// gamma(n) = min(ceil(n / 10), 25) ("good") and the rest; per dimension, one density l(x)
// is fitted to the good values and one g(x) to the rest, kCandidates values are drawn
// from l and the one with the largest l(x) / g(x) is proposed.
//
// Densities, as Optuna's univariate Parzen estimators: a choice gets a mixture of one
// component per value (one count on the value's candidate and 1 / (n + 1) on every
// candidate, normalised) and a uniform prior; a range gets a mixture of Gaussians truncated to [low, high] (an
// integer range to [low - 0.5, high + 0.5], rounded after drawing), one per value with
// sigma the larger gap to its sorted neighbours, plus a prior centred on the range with
// its width as sigma, every sigma clipped to [width / min(100, n + 2), width]. Failed
// trials (objective +infinity) count among the rest. A dimension with a condition
// (Dimension::only_when) is fitted to the trials where it mattered.
//
// Unlike Optuna's, a proposal never repeats a finished trial (SameTrial): on a space of
// few distinct settings the good density would otherwise propose the best one again, a
// trial spent to learn nothing. A repeat is drawn again, up to kRedraws times, then
// replaced by a uniform point that is new (up to kUniformRedraws draws; a repeat only
// when every setting of a small space is finished). The first, uniform, trials are new
// points too.
#pragma once

#include "search/sampler.h"

namespace slim::search {

// Uniform trials before TPE takes over for a search of `budget` trials: a quarter of it,
// at least 2 and at most 10.
int64_t TpeStartupTrials(int64_t budget);

class TpeSampler final : public Sampler {
 public:
  static constexpr int kCandidates = 24;
  static constexpr int kRedraws = 32;
  static constexpr int kUniformRedraws = 1000;
  TpeSampler(SearchSpace space, uint64_t seed, int64_t startup_trials);
  std::optional<Point> Propose(int64_t trial,
                               const std::vector<Observation>& finished) const override;

 private:
  SearchSpace space_;
  uint64_t seed_;
  int64_t startup_trials_;
};

}  // namespace slim::search
