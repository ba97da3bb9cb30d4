#include "data/rgb_canvas.h"

#include <cmath>

namespace slim::data {

RgbCanvas::RgbCanvas(int height, int width)
    : height_(height), width_(width), values_(3 * static_cast<size_t>(height) * width, 0.0) {}

Rgb RgbCanvas::Get(int x, int y) const {
  const size_t plane = static_cast<size_t>(height_) * width_;
  const size_t at = static_cast<size_t>(y) * width_ + x;
  return {values_[at], values_[plane + at], values_[2 * plane + at]};
}

void RgbCanvas::Set(int x, int y, const Rgb& colour) {
  const size_t plane = static_cast<size_t>(height_) * width_;
  const size_t at = static_cast<size_t>(y) * width_ + x;
  for (int c = 0; c < 3; ++c) values_[c * plane + at] = colour[c];
}

void RgbCanvas::AddGaussianNoise(double sigma, SeededRandom& rng) {
  for (double& value : values_) value += sigma * rng.Normal();
}

void RgbCanvas::WriteBytes(uint8_t* out) const {
  for (size_t i = 0; i < values_.size(); ++i) {
    const double clamped = std::min(1.0, std::max(0.0, values_[i]));
    out[i] = static_cast<uint8_t>(std::lround(clamped * 255.0));
  }
}

}  // namespace slim::data
