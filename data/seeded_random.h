// A seeded random source whose output depends only on the seed, never on the standard
// library: it draws from std::mt19937_64 (fully specified by the standard) and turns the
// raw bits into numbers itself, because std::*_distribution and std::shuffle may produce
// different values under libstdc++, libc++ and MSVC.
#pragma once

#include <cstdint>
#include <random>
#include <utility>
#include <vector>

namespace slim::data {

// Mixes `seed` and `stream` (SplitMix64) into a new seed, so that independent streams
// (train/eval, one per image) come from one user seed without sharing a sequence.
uint64_t DeriveSeed(uint64_t seed, uint64_t stream);

// Not thread-safe: one instance per thread.
class SeededRandom {
 public:
  explicit SeededRandom(uint64_t seed) : engine_(seed) {}

  // Uniform in [0, 1) with 53 random bits.
  double Uniform();
  // Uniform in [lo, hi).
  double Uniform(double lo, double hi) { return lo + (hi - lo) * Uniform(); }
  // Uniform integer in [0, n). REQUIRES: n > 0.
  int64_t UniformInt(int64_t n);
  // Uniform integer in [lo, hi] (both inclusive). REQUIRES: lo <= hi.
  int64_t UniformInt(int64_t lo, int64_t hi) { return lo + UniformInt(hi - lo + 1); }
  // True with probability p.
  bool Bernoulli(double p) { return Uniform() < p; }
  // Standard normal (Box-Muller; the second value of each pair is kept for the next call).
  double Normal();

  // Fisher-Yates shuffle of `items` in place.
  template <typename T>
  void Shuffle(std::vector<T>& items) {
    for (size_t i = items.size(); i > 1; --i) {
      std::swap(items[i - 1], items[UniformInt(static_cast<int64_t>(i))]);
    }
  }

 private:
  std::mt19937_64 engine_;
  bool has_spare_normal_ = false;
  double spare_normal_ = 0.0;
};

}  // namespace slim::data
