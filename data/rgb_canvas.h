// A small floating-point RGB image for compositing synthetic pictures: shapes are blended in with
// anti-aliased coverage, then noise is added and the result is quantised to uint8 CHW.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <vector>

#include "data/seeded_random.h"

namespace slim::data {

// A colour with channels nominally in [0, 1].
using Rgb = std::array<double, 3>;

// Pixel rectangle [x0, x1) × [y0, y1); Blend() clips it to the canvas.
struct PixelBox {
  int x0, y0, x1, y1;
};

// Channel-planar image of doubles. Values may leave [0, 1] while compositing; WriteBytes()
// clamps. Not thread-safe.
class RgbCanvas {
 public:
  // A black canvas. REQUIRES: height, width > 0.
  RgbCanvas(int height, int width);

  int height() const { return height_; }
  int width() const { return width_; }

  // The colour of pixel (x, y). REQUIRES: inside the canvas.
  Rgb Get(int x, int y) const;
  // Sets pixel (x, y). REQUIRES: inside the canvas.
  void Set(int x, int y, const Rgb& colour);

  // Blends `colour` over the pixels of `box` with weight opacity × coverage, where
  // coverage is the fraction of a pixel's 2×2 sub-samples at which inside(x, y) holds
  // (x, y in pixel units, pixel centres at integer + 0.5).
  template <typename InsideFn>
  void Blend(const InsideFn& inside, const Rgb& colour, double opacity, PixelBox box);

  // Adds independent N(0, sigma²) noise to every channel value.
  void AddGaussianNoise(double sigma, SeededRandom& rng);

  // Writes the image as 3 × height × width uint8 bytes (CHW), each value clamped to
  // [0, 1] and rounded to the nearest of 0..255.
  void WriteBytes(uint8_t* out) const;

 private:
  int height_, width_;
  std::vector<double> values_;  // CHW
};

template <typename InsideFn>
void RgbCanvas::Blend(const InsideFn& inside, const Rgb& colour, double opacity, PixelBox box) {
  static constexpr double kSubOffsets[2] = {0.25, 0.75};
  const int x0 = std::max(box.x0, 0), x1 = std::min(box.x1, width_);
  const int y0 = std::max(box.y0, 0), y1 = std::min(box.y1, height_);
  const size_t plane = static_cast<size_t>(height_) * width_;
  for (int y = y0; y < y1; ++y) {
    for (int x = x0; x < x1; ++x) {
      int hits = 0;
      for (double dy : kSubOffsets) {
        for (double dx : kSubOffsets) hits += inside(x + dx, y + dy) ? 1 : 0;
      }
      if (hits == 0) continue;
      const double weight = opacity * hits / 4.0;
      const size_t at = static_cast<size_t>(y) * width_ + x;
      for (int c = 0; c < 3; ++c) {
        double& value = values_[c * plane + at];
        value += weight * (colour[c] - value);
      }
    }
  }
}

}  // namespace slim::data
