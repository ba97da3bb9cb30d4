// Samplers: which point of a search space trial k evaluates, given the trials finished so
// far. A proposal depends only on (seed, k, the finished trials), never on the order in
// which results arrived, so a one-group search rebuilt from its trial log proposes what
// the uninterrupted search would have (with several groups, which trials had finished
// when a trial was proposed depends on timing).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "search/search_space.h"

namespace slim::search {

class Sampler {
 public:
  virtual ~Sampler() = default;
  // The point of trial `trial` (0-based), or nullopt when the sampler has no point left
  // (a grid walked to its end). `finished` may be in any order.
  virtual std::optional<Point> Propose(int64_t trial,
                                       const std::vector<Observation>& finished) const = 0;
};

// The random engine of trial `trial` of a search seeded with `seed`.
std::mt19937_64 TrialEngine(uint64_t seed, int64_t trial);

// A point drawn uniformly: every candidate alike, floats uniform, integers uniform.
Point UniformPoint(const SearchSpace& space, std::mt19937_64& engine);

// Uniform draws, independent of the history.
class RandomSampler final : public Sampler {
 public:
  RandomSampler(SearchSpace space, uint64_t seed);
  std::optional<Point> Propose(int64_t trial,
                               const std::vector<Observation>& finished) const override;

 private:
  SearchSpace space_;
  uint64_t seed_;
};

// Every combination of the candidates and of kGridPoints values per range (its ends and
// middle; one value when low == high, integers without repeats), the last dimension
// changing fastest, less those that are the same trial as an earlier one (differing only
// in a dimension whose condition fails there). Trial k is the k-th of them; there are
// none past the last.
class GridSampler final : public Sampler {
 public:
  static constexpr int kGridPoints = 3;
  explicit GridSampler(const SearchSpace& space);
  std::optional<Point> Propose(int64_t trial,
                               const std::vector<Observation>& finished) const override;
  // The number of combinations.
  int64_t Size() const;

 private:
  std::vector<Point> points_;
};

// `name` is tpe, random or grid. `budget` (the trials planned) sets how many of TPE's
// first trials are uniform draws.
std::unique_ptr<Sampler> MakeSampler(const std::string& name, const SearchSpace& space,
                                     uint64_t seed, int64_t budget);

}  // namespace slim::search
