#include "data/synthetic_shapes.h"

#include <algorithm>
#include <cmath>

namespace slim::data {
namespace {

constexpr double kPi = 3.14159265358979323846;

// Degrees to radians.
constexpr double Rad(double degrees) { return degrees * kPi / 180.0; }

// Whether (u, v) lies in the texture patch: the unit disc or the unit square.
bool InsidePatch(const ShapeInstance& s, double u, double v) {
  return s.round_patch ? u * u + v * v <= 1.0 : std::max(std::abs(u), std::abs(v)) <= 1.0;
}

// Whether coordinate t falls in the filled part of a periodic band.
bool InBand(const ShapeInstance& s, double t) {
  const double cycles = t / s.period + s.phase;
  return cycles - std::floor(cycles) < s.duty;
}

// Signed area test: which side of edge a→b the point p lies on.
double EdgeSide(const std::array<double, 2>& a, const std::array<double, 2>& b, double u,
                double v) {
  return (b[0] - a[0]) * (v - a[1]) - (b[1] - a[1]) * (u - a[0]);
}

bool InsideTriangle(const ShapeInstance& s, double u, double v) {
  const auto& c = s.corners;
  const double d0 = EdgeSide(c[0], c[1], u, v);
  const double d1 = EdgeSide(c[1], c[2], u, v);
  const double d2 = EdgeSide(c[2], c[0], u, v);
  return (d0 >= 0 && d1 >= 0 && d2 >= 0) || (d0 <= 0 && d1 <= 0 && d2 <= 0);
}

// Sets the pattern fields of a stripe or checkerboard instance.
void SamplePattern(ShapeInstance& s, double radius_px, SeededRandom& rng) {
  s.period = rng.Uniform(3.0, 6.5) / radius_px;
  s.phase = rng.Uniform();
  s.duty = rng.Uniform(0.35, 0.65);
  s.round_patch = rng.Bernoulli(0.5);
}

}  // namespace

std::vector<std::string> ShapeClassNames() {
  return {"disc",      "ring",      "square_outline",   "triangle",     "cross",
          "h_stripes", "v_stripes", "diagonal_stripes", "checkerboard", "dots"};
}

ShapeInstance SampleShape(ShapeClass shape, double radius_px, SeededRandom& rng) {
  ShapeInstance s;
  s.shape = shape;
  s.aspect = rng.Uniform(0.85, 1.15);
  switch (shape) {
    case ShapeClass::kDisc:
      break;
    case ShapeClass::kRing:
      s.stroke = rng.Uniform(0.22, 0.45);
      break;
    case ShapeClass::kSquareOutline:
      s.stroke = rng.Uniform(0.2, 0.35);
      s.angle = Rad(rng.Uniform(-30, 30));
      break;
    case ShapeClass::kTriangle:
      for (int k = 0; k < 3; ++k) {
        const double a = Rad(-90 + 120 * k + rng.Uniform(-15, 15));
        s.corners[k] = {std::cos(a), std::sin(a)};
      }
      s.angle = rng.Uniform(0, 2 * kPi);
      break;
    case ShapeClass::kCross:
      s.stroke = rng.Uniform(0.2, 0.34);
      s.angle = Rad(rng.Uniform(-30, 30));
      break;
    case ShapeClass::kHorizontalStripes:
    case ShapeClass::kVerticalStripes:
    case ShapeClass::kDiagonalStripes: {
      SamplePattern(s, radius_px, rng);
      double base = 0;
      if (shape == ShapeClass::kVerticalStripes) base = 90;
      if (shape == ShapeClass::kDiagonalStripes) base = rng.Bernoulli(0.5) ? 45 : -45;
      s.angle = Rad(base + rng.Uniform(-12, 12));
      break;
    }
    case ShapeClass::kCheckerboard:
      SamplePattern(s, radius_px, rng);
      s.duty = 0.5;
      s.angle = Rad(rng.Uniform(-20, 20));
      break;
    case ShapeClass::kDots: {
      s.round_patch = rng.Bernoulli(0.5);
      const int count = static_cast<int>(rng.UniformInt(6, 14));
      for (int k = 0; k < count; ++k) {
        s.dots.push_back({rng.Uniform(-0.85, 0.85), rng.Uniform(-0.85, 0.85),
                          rng.Uniform(1.3, 2.5) / radius_px});
      }
      break;
    }
  }
  return s;
}

bool InsideShape(const ShapeInstance& s, double u, double v) {
  switch (s.shape) {
    case ShapeClass::kDisc:
      return u * u + v * v <= 1.0;
    case ShapeClass::kRing: {
      const double r2 = u * u + v * v;
      const double inner = 1.0 - s.stroke;
      return r2 <= 1.0 && r2 >= inner * inner;
    }
    case ShapeClass::kSquareOutline: {
      const double m = std::max(std::abs(u), std::abs(v)) / 0.85;
      return m <= 1.0 && m >= 1.0 - s.stroke;
    }
    case ShapeClass::kTriangle:
      return InsideTriangle(s, u, v);
    case ShapeClass::kCross: {
      const double au = std::abs(u), av = std::abs(v);
      return (au <= s.stroke && av <= 1.0) || (av <= s.stroke && au <= 1.0);
    }
    case ShapeClass::kHorizontalStripes:
    case ShapeClass::kVerticalStripes:
    case ShapeClass::kDiagonalStripes:
      return InsidePatch(s, u, v) && InBand(s, v);
    case ShapeClass::kCheckerboard:
      return InsidePatch(s, u, v) && (InBand(s, u) != InBand(s, v));
    case ShapeClass::kDots:
      if (!InsidePatch(s, u, v)) return false;
      for (const auto& dot : s.dots) {
        const double du = u - dot[0], dv = v - dot[1];
        if (du * du + dv * dv <= dot[2] * dot[2]) return true;
      }
      return false;
  }
  return false;
}

}  // namespace slim::data
