#include "search/tpe_sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace slim::search {

namespace {

constexpr double kPi = 3.14159265358979323846;

double NormalCdf(double z) { return 0.5 * std::erfc(-z / std::sqrt(2.0)); }

// The probabilities of a choice's candidates under a mixture of equally weighted
// components: one per value in `values`, which puts one count on its own candidate and a
// prior weight of 1 / (n + 1) on every candidate, and a uniform prior component.
std::vector<double> ChoiceWeights(const std::vector<double>& values, size_t choices) {
  const double n = static_cast<double>(values.size());
  const double k = static_cast<double>(choices);
  const double floor = 1.0 / (n + 1);
  std::vector<double> weights(choices, 1.0 / k);  // the prior component
  for (const double value : values) {
    for (auto& weight : weights) weight += floor / (1 + floor * k);
    weights[static_cast<size_t>(value)] += 1 / (1 + floor * k);
  }
  for (auto& weight : weights) weight /= n + 1;
  return weights;
}

// A mixture of equally weighted Gaussians truncated to [low, high].
class ParzenDensity {
 public:
  ParzenDensity(std::vector<double> values, double low, double high) : low_(low), high_(high) {
    const double width = high - low;
    mus_ = std::move(values);
    mus_.push_back((low + high) / 2);  // the prior
    std::vector<size_t> order(mus_.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return mus_[a] < mus_[b]; });
    // Each sigma: the larger gap to its sorted neighbours, the range's ends counting as
    // neighbours only when there is a single centre; at either end of two or more, the
    // inner gap.
    sigmas_.assign(mus_.size(), width);
    const size_t count = order.size();
    for (size_t rank = 0; rank < count; ++rank) {
      const double mu = mus_[order[rank]];
      const double left = rank == 0 ? mu - low : mu - mus_[order[rank - 1]];
      const double right = rank + 1 == count ? high - mu : mus_[order[rank + 1]] - mu;
      double sigma = std::max(left, right);
      if (count >= 2 && rank == 0) sigma = right;
      if (count >= 2 && rank + 1 == count) sigma = left;
      sigmas_[order[rank]] = sigma;
    }
    const double floor = width / std::min(100.0, 1.0 + static_cast<double>(count));
    for (auto& sigma : sigmas_) sigma = std::clamp(sigma, floor, width);
    sigmas_.back() = width;  // the prior's
  }

  double Draw(std::mt19937_64& engine) const {
    std::uniform_int_distribution<size_t> component(0, mus_.size() - 1);
    const size_t i = component(engine);
    std::normal_distribution<double> normal(mus_[i], sigmas_[i]);
    for (int attempt = 0; attempt < 100; ++attempt) {
      const double x = normal(engine);
      if (x >= low_ && x <= high_) return x;
    }
    return std::uniform_real_distribution<double>(low_, high_)(engine);
  }

  double LogDensity(double x) const {
    double density = 0;
    for (size_t i = 0; i < mus_.size(); ++i) {
      const double s = sigmas_[i];
      const double mass = NormalCdf((high_ - mus_[i]) / s) - NormalCdf((low_ - mus_[i]) / s);
      const double z = (x - mus_[i]) / s;
      density += std::exp(-0.5 * z * z) / (s * std::sqrt(2 * kPi) * std::max(mass, 1e-12));
    }
    return std::log(density / static_cast<double>(mus_.size()) +
                    std::numeric_limits<double>::min());
  }

 private:
  double low_;
  double high_;
  std::vector<double> mus_;
  std::vector<double> sigmas_;
};

// The value of one dimension with the largest l(x) / g(x) among kCandidates draws from l.
double ProposeChoice(const std::vector<double>& good, const std::vector<double>& bad,
                     size_t choices, std::mt19937_64& engine) {
  const auto l = ChoiceWeights(good, choices);
  const auto g = ChoiceWeights(bad, choices);
  std::discrete_distribution<size_t> draw(l.begin(), l.end());
  size_t best = draw(engine);
  for (int i = 1; i < TpeSampler::kCandidates; ++i) {
    const size_t candidate = draw(engine);
    if (l[candidate] / g[candidate] > l[best] / g[best]) best = candidate;
  }
  return static_cast<double>(best);
}

double ProposeRange(const Dimension& dimension, const std::vector<double>& good,
                    const std::vector<double>& bad, std::mt19937_64& engine) {
  const bool integer = dimension.kind == Dimension::Kind::kInteger;
  const double low = integer ? dimension.low - 0.5 : dimension.low;
  const double high = integer ? dimension.high + 0.5 : dimension.high;
  if (high <= low) return dimension.low;
  const ParzenDensity l(good, low, high);
  const ParzenDensity g(bad, low, high);
  double best = l.Draw(engine);
  double best_score = l.LogDensity(best) - g.LogDensity(best);
  for (int i = 1; i < TpeSampler::kCandidates; ++i) {
    const double candidate = l.Draw(engine);
    const double score = l.LogDensity(candidate) - g.LogDensity(candidate);
    if (score > best_score) best = candidate, best_score = score;
  }
  return integer ? std::clamp(std::round(best), dimension.low, dimension.high) : best;
}

}  // namespace

int64_t TpeStartupTrials(int64_t budget) { return std::clamp<int64_t>(budget / 4, 2, 10); }

TpeSampler::TpeSampler(SearchSpace space, uint64_t seed, int64_t startup_trials)
    : space_(std::move(space)), seed_(seed), startup_trials_(startup_trials) {}

std::optional<Point> TpeSampler::Propose(int64_t trial,
                                         const std::vector<Observation>& finished) const {
  auto engine = TrialEngine(seed_, trial);
  const auto repeats = [&](const Point& point) {
    return std::any_of(finished.begin(), finished.end(), [&](const Observation& observation) {
      return SameTrial(space_, point, observation.point);
    });
  };
  // A uniform point that is new, if one turns up (on a space of N settings with one left,
  // kUniformRedraws draws all miss it with probability (1 - 1/N)^kUniformRedraws).
  const auto new_uniform_point = [&] {
    Point point = UniformPoint(space_, engine);
    for (int attempt = 1; attempt < kUniformRedraws && repeats(point); ++attempt) {
      point = UniformPoint(space_, engine);
    }
    return point;
  };
  if (static_cast<int64_t>(finished.size()) < startup_trials_) return new_uniform_point();
  // Best first; ties by trial number, so the split never depends on arrival order.
  std::vector<const Observation*> ranked;
  for (const auto& observation : finished) ranked.push_back(&observation);
  std::sort(ranked.begin(), ranked.end(), [](const auto* a, const auto* b) {
    return a->objective != b->objective ? a->objective < b->objective : a->trial < b->trial;
  });
  const auto n = static_cast<int64_t>(ranked.size());
  const int64_t good_count = std::min<int64_t>((n + 9) / 10, 25);
  // Per dimension, its values at the good and at the other trials where it mattered.
  std::vector<std::vector<double>> good(space_.size());
  std::vector<std::vector<double>> bad(space_.size());
  for (int64_t i = 0; i < n; ++i) {
    for (size_t d = 0; d < space_.size(); ++d) {
      if (Matters(space_, d, ranked[i]->point)) {
        (i < good_count ? good : bad)[d].push_back(ranked[i]->point[d]);
      }
    }
  }
  for (int attempt = 0; attempt < kRedraws; ++attempt) {
    Point point;
    for (size_t d = 0; d < space_.size(); ++d) {
      const auto& dimension = space_[d];
      point.push_back(dimension.kind == Dimension::Kind::kCategorical
                          ? ProposeChoice(good[d], bad[d], dimension.choices.size(), engine)
                          : ProposeRange(dimension, good[d], bad[d], engine));
    }
    if (!repeats(point)) return point;
  }
  return new_uniform_point();  // the densities keep proposing finished trials
}

}  // namespace slim::search
