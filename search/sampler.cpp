#include "search/sampler.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "search/tpe_sampler.h"

namespace slim::search {

std::mt19937_64 TrialEngine(uint64_t seed, int64_t trial) {
  // SplitMix64 of (seed, trial): neighbouring trials get unrelated streams.
  uint64_t z = seed + 0x9E3779B97F4A7C15ULL * (static_cast<uint64_t>(trial) + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return std::mt19937_64(z ^ (z >> 31));
}

Point UniformPoint(const SearchSpace& space, std::mt19937_64& engine) {
  Point point;
  for (const auto& dimension : space) {
    switch (dimension.kind) {
      case Dimension::Kind::kCategorical: {
        std::uniform_int_distribution<size_t> pick(0, dimension.choices.size() - 1);
        point.push_back(static_cast<double>(pick(engine)));
        break;
      }
      case Dimension::Kind::kFloat:
        point.push_back(std::uniform_real_distribution<double>(dimension.low, dimension.high)(engine));
        break;
      case Dimension::Kind::kInteger: {
        std::uniform_int_distribution<int64_t> pick(std::llround(dimension.low),
                                                    std::llround(dimension.high));
        point.push_back(static_cast<double>(pick(engine)));
        break;
      }
    }
  }
  return point;
}

RandomSampler::RandomSampler(SearchSpace space, uint64_t seed)
    : space_(std::move(space)), seed_(seed) {}

std::optional<Point> RandomSampler::Propose(int64_t trial,
                                            const std::vector<Observation>& /*finished*/) const {
  auto engine = TrialEngine(seed_, trial);
  return UniformPoint(space_, engine);
}

GridSampler::GridSampler(const SearchSpace& space) {
  std::vector<std::vector<double>> values;  // per dimension
  for (const auto& dimension : space) {
    std::vector<double> dimension_values;
    if (dimension.kind == Dimension::Kind::kCategorical) {
      for (size_t k = 0; k < dimension.choices.size(); ++k) {
        dimension_values.push_back(static_cast<double>(k));
      }
    } else {
      for (int i = 0; i < kGridPoints; ++i) {
        double value = dimension.low + (dimension.high - dimension.low) * i / (kGridPoints - 1);
        if (dimension.kind == Dimension::Kind::kInteger) value = std::round(value);
        if (std::find(dimension_values.begin(), dimension_values.end(), value) ==
            dimension_values.end()) {
          dimension_values.push_back(value);
        }
      }
    }
    values.push_back(std::move(dimension_values));
  }
  int64_t combinations = 1;
  for (const auto& dimension_values : values) combinations *= static_cast<int64_t>(dimension_values.size());
  for (int64_t combination = 0; combination < combinations; ++combination) {
    Point point(values.size());
    int64_t rest = combination;
    for (size_t d = values.size(); d-- > 0;) {
      const auto count = static_cast<int64_t>(values[d].size());
      point[d] = values[d][static_cast<size_t>(rest % count)];
      rest /= count;
    }
    const bool repeat = std::any_of(points_.begin(), points_.end(), [&](const Point& earlier) {
      return SameTrial(space, point, earlier);
    });
    if (!repeat) points_.push_back(std::move(point));
  }
}

int64_t GridSampler::Size() const { return static_cast<int64_t>(points_.size()); }

std::optional<Point> GridSampler::Propose(int64_t trial,
                                          const std::vector<Observation>& /*finished*/) const {
  if (trial >= Size()) return std::nullopt;
  return points_[static_cast<size_t>(trial)];
}

std::unique_ptr<Sampler> MakeSampler(const std::string& name, const SearchSpace& space,
                                     uint64_t seed, int64_t budget) {
  if (name == "tpe") return std::make_unique<TpeSampler>(space, seed, TpeStartupTrials(budget));
  if (name == "random") return std::make_unique<RandomSampler>(space, seed);
  if (name == "grid") return std::make_unique<GridSampler>(space);
  throw std::invalid_argument("unknown sampler " + name);
}

}  // namespace slim::search
