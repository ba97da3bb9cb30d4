#include "data/seeded_random.h"

#include <cmath>

namespace slim::data {

namespace {

// The SplitMix64 output function: a bijection of 64-bit values that scatters nearby inputs.
uint64_t SplitMix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace

uint64_t DeriveSeed(uint64_t seed, uint64_t stream) {
  return SplitMix64(SplitMix64(seed) ^ stream);
}

double SeededRandom::Uniform() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }

int64_t SeededRandom::UniformInt(int64_t n) {
  // Rejection sampling keeps the result exactly uniform for any n.
  const uint64_t range = static_cast<uint64_t>(n);
  const uint64_t limit = UINT64_MAX - UINT64_MAX % range;
  uint64_t bits = engine_();
  while (bits >= limit) bits = engine_();
  return static_cast<int64_t>(bits % range);
}

double SeededRandom::Normal() {
  if (has_spare_normal_) {
    has_spare_normal_ = false;
    return spare_normal_;
  }
  constexpr double kTwoPi = 6.283185307179586476925;
  const double u1 = 1.0 - Uniform();  // in (0, 1], so log(u1) is finite
  const double u2 = Uniform();
  const double radius = std::sqrt(-2.0 * std::log(u1));
  spare_normal_ = radius * std::sin(kTwoPi * u2);
  has_spare_normal_ = true;
  return radius * std::cos(kTwoPi * u2);
}

}  // namespace slim::data
