#include "data/synthetic_images.h"

#include <algorithm>
#include <cmath>

#include "data/rgb_canvas.h"
#include "data/seeded_random.h"
#include "data/synthetic_shapes.h"

namespace slim::data {
namespace {

constexpr double kPi = 3.14159265358979323846;

// Difficulty knobs. Raising noise, distractor opacity or occlusion, or lowering the
// object's contrast, makes the set harder.
constexpr double kMinNoiseSigma = 0.02, kMaxNoiseSigma = 0.07;
constexpr int kMinDistractors = 1, kMaxDistractors = 3;
constexpr double kMinDistractorOpacity = 0.12, kMaxDistractorOpacity = 0.32;
constexpr double kMinObjectOpacity = 0.6;
constexpr double kMinObjectContrast = 0.3;  // mean |channel difference| to the background
constexpr double kOcclusionProbability = 0.2;

// Where a shape's frame sits on the canvas.
struct Placement {
  double cx, cy;  // centre, pixels
  double radius;  // pixels per frame unit
};

// A half plane in frame units: points with nu * u + nv * v > offset are cut away.
struct FrameClip {
  double nu = 0, nv = 0, offset = 1e9;
};

Rgb RandomColour(SeededRandom& rng) { return {rng.Uniform(), rng.Uniform(), rng.Uniform()}; }

double MeanAbsDifference(const Rgb& a, const Rgb& b) {
  return (std::abs(a[0] - b[0]) + std::abs(a[1] - b[1]) + std::abs(a[2] - b[2])) / 3.0;
}

// A random colour at least kMinObjectContrast away from `background` (a few tries, then
// the complement of the background, which is always far enough unless it is mid-grey).
Rgb ContrastingColour(const Rgb& background, SeededRandom& rng) {
  for (int attempt = 0; attempt < 8; ++attempt) {
    Rgb colour = RandomColour(rng);
    if (MeanAbsDifference(colour, background) >= kMinObjectContrast) return colour;
  }
  return {1.0 - background[0], 1.0 - background[1], 1.0 - background[2]};
}

// Fills the canvas with a two-colour linear gradient plus low-frequency colour waves
// (periods of 14-40 pixels, far coarser than the stripe classes).
void PaintBackground(RgbCanvas& canvas, SeededRandom& rng) {
  const Rgb from = RandomColour(rng);
  Rgb to;
  for (int c = 0; c < 3; ++c) to[c] = from[c] + rng.Uniform(-0.35, 0.35);
  const double direction = rng.Uniform(0, 2 * kPi);
  const double gx = std::cos(direction), gy = std::sin(direction);
  struct Wave {
    double kx, ky, phase;
    Rgb amplitude;
  };
  Wave waves[2];
  for (Wave& wave : waves) {
    const double angle = rng.Uniform(0, 2 * kPi);
    const double frequency = 2 * kPi / rng.Uniform(14, 40);
    wave = {frequency * std::cos(angle),
            frequency * std::sin(angle),
            rng.Uniform(0, 2 * kPi),
            {rng.Uniform(-0.1, 0.1), rng.Uniform(-0.1, 0.1), rng.Uniform(-0.1, 0.1)}};
  }
  const double half = canvas.width() / 2.0;
  for (int y = 0; y < canvas.height(); ++y) {
    for (int x = 0; x < canvas.width(); ++x) {
      const double t = 0.5 + ((x - half) * gx + (y - half) * gy) / (2 * half);
      Rgb colour;
      for (int c = 0; c < 3; ++c) colour[c] = from[c] + t * (to[c] - from[c]);
      for (const Wave& wave : waves) {
        const double s = std::sin(wave.kx * x + wave.ky * y + wave.phase);
        for (int c = 0; c < 3; ++c) colour[c] += wave.amplitude[c] * s;
      }
      canvas.Set(x, y, colour);
    }
  }
}

// Blends `shape` at `where`, leaving out the part of its frame beyond `clip`.
void DrawShape(RgbCanvas& canvas, const ShapeInstance& shape, const Placement& where,
               const FrameClip& clip, const Rgb& colour, double opacity) {
  const double cos_a = std::cos(shape.angle), sin_a = std::sin(shape.angle);
  const double inv_u = 1.0 / (where.radius * shape.aspect), inv_v = 1.0 / where.radius;
  auto inside = [&](double x, double y) {
    const double dx = x - where.cx, dy = y - where.cy;
    const double u = (cos_a * dx + sin_a * dy) * inv_u;
    const double v = (-sin_a * dx + cos_a * dy) * inv_v;
    return clip.nu * u + clip.nv * v <= clip.offset && InsideShape(shape, u, v);
  };
  // The frame square [-1, 1]², rotated and stretched by up to 15%, stays within 1.65 r.
  const double reach = 1.65 * where.radius;
  const PixelBox box = {static_cast<int>(std::floor(where.cx - reach)),
                        static_cast<int>(std::floor(where.cy - reach)),
                        static_cast<int>(std::ceil(where.cx + reach)) + 1,
                        static_cast<int>(std::ceil(where.cy + reach)) + 1};
  canvas.Blend(inside, colour, opacity, box);
}

// A faint, partly cut-away instance of a class other than `label`, anywhere on the canvas.
void DrawDistractor(RgbCanvas& canvas, int label, SeededRandom& rng) {
  int other = static_cast<int>(rng.UniformInt(kNumShapeClasses - 1));
  if (other >= label) ++other;
  const double size = canvas.width();
  const Placement where = {rng.Uniform(0, size), rng.Uniform(0, size), rng.Uniform(4, 9)};
  const ShapeInstance shape = SampleShape(static_cast<ShapeClass>(other), where.radius, rng);
  const double clip_angle = rng.Uniform(0, 2 * kPi);
  const FrameClip clip = {std::cos(clip_angle), std::sin(clip_angle), rng.Uniform(-0.3, 0.7)};
  // Separate statements: the order of function arguments is unspecified, and the draws
  // must happen in the same order under every compiler.
  const Rgb colour = RandomColour(rng);
  const double opacity = rng.Uniform(kMinDistractorOpacity, kMaxDistractorOpacity);
  DrawShape(canvas, shape, where, clip, colour, opacity);
}

// An opaque rectangle of random colour with one corner near `where`'s centre, hiding part
// of the object there.
void DrawOccluder(RgbCanvas& canvas, const Placement& where, SeededRandom& rng) {
  const double w = rng.Uniform(0.6, 1.2) * where.radius;
  const double h = rng.Uniform(0.6, 1.2) * where.radius;
  double x0 = where.cx + rng.Uniform(-0.3, 0.3) * where.radius;
  if (rng.Bernoulli(0.5)) x0 -= w;
  double y0 = where.cy + rng.Uniform(-0.3, 0.3) * where.radius;
  if (rng.Bernoulli(0.5)) y0 -= h;
  auto inside = [&](double x, double y) { return x >= x0 && x < x0 + w && y >= y0 && y < y0 + h; };
  const PixelBox box = {static_cast<int>(std::floor(x0)), static_cast<int>(std::floor(y0)),
                        static_cast<int>(std::ceil(x0 + w)), static_cast<int>(std::ceil(y0 + h))};
  canvas.Blend(inside, RandomColour(rng), 1.0, box);
}

// The object of class `label`, placed so that most of it is on the canvas.
void DrawObject(RgbCanvas& canvas, int label, SeededRandom& rng) {
  const auto shape_class = static_cast<ShapeClass>(label);
  const bool texture = shape_class >= ShapeClass::kHorizontalStripes;
  const double radius = texture ? rng.Uniform(7, 13) : rng.Uniform(6, 12);
  const double size = canvas.width();
  const double margin = 0.7 * radius;
  const Placement where = {rng.Uniform(margin, size - margin), rng.Uniform(margin, size - margin),
                           radius};
  const ShapeInstance shape = SampleShape(shape_class, radius, rng);
  const Rgb behind = canvas.Get(static_cast<int>(where.cx), static_cast<int>(where.cy));
  const Rgb colour = ContrastingColour(behind, rng);
  const double opacity = rng.Uniform(kMinObjectOpacity, 1.0);
  DrawShape(canvas, shape, where, FrameClip{}, colour, opacity);
  if (rng.Bernoulli(kOcclusionProbability)) DrawOccluder(canvas, where, rng);
}

// Renders one image of class `label` into `out` (3 × 32 × 32 bytes).
void RenderImage(int label, SeededRandom& rng, uint8_t* out) {
  RgbCanvas canvas(kSyntheticImageSize, kSyntheticImageSize);
  PaintBackground(canvas, rng);
  const int distractors = static_cast<int>(rng.UniformInt(kMinDistractors, kMaxDistractors));
  for (int k = 0; k < distractors; ++k) DrawDistractor(canvas, label, rng);
  DrawObject(canvas, label, rng);
  canvas.AddGaussianNoise(rng.Uniform(kMinNoiseSigma, kMaxNoiseSigma), rng);
  canvas.WriteBytes(out);
}

}  // namespace

ByteDataset GenerateImages(int64_t count, uint64_t seed) {
  ByteDataset images;
  images.kind = SampleKind::kImage;
  images.sample_shape = {3, kSyntheticImageSize, kSyntheticImageSize};
  images.class_names = ShapeClassNames();
  images.labels.resize(count);
  for (int64_t i = 0; i < count; ++i) images.labels[i] = i % kNumShapeClasses;
  SeededRandom label_rng(DeriveSeed(seed, 0));
  label_rng.Shuffle(images.labels);

  const uint64_t image_seed = DeriveSeed(seed, 1);
  const int64_t bytes = images.sample_bytes();
  images.inputs.resize(count * bytes);
  for (int64_t i = 0; i < count; ++i) {
    SeededRandom rng(DeriveSeed(image_seed, static_cast<uint64_t>(i)));
    RenderImage(static_cast<int>(images.labels[i]), rng, images.inputs.data() + i * bytes);
  }
  return images;
}

}  // namespace slim::data
