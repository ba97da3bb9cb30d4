// The ten object classes of the synthetic image set, as random shape instances with an
// inside test in the shape's own frame. Placement on a canvas (centre, size, colour) is
// up to the caller; see synthetic_images.h.
#pragma once

#include <array>
#include <string>
#include <vector>

#include "data/seeded_random.h"

namespace slim::data {

// Class indices of the synthetic image set, in label order.
enum class ShapeClass : int {
  kDisc,
  kRing,
  kSquareOutline,
  kTriangle,
  kCross,
  kHorizontalStripes,
  kVerticalStripes,
  kDiagonalStripes,
  kCheckerboard,
  kDots,
};

// Number of classes in ShapeClass.
constexpr int kNumShapeClasses = 10;

// The class names, indexed by label: "disc", "ring", "square_outline", ...
std::vector<std::string> ShapeClassNames();

// One drawn instance of a class. Its frame (u, v) is scaled so that the shape fits the
// square [-1, 1]²; `angle` says how that frame is rotated on the canvas, and is part of
// the class for the stripe classes (horizontal, vertical, diagonal).
struct ShapeInstance {
  ShapeClass shape = ShapeClass::kDisc;
  // Rotation of the frame on the canvas, radians.
  double angle = 0.0;
  // Width ratio of the frame (u is divided by it): small squash/stretch jitter.
  double aspect = 1.0;
  // Ring, outline and cross: stroke width in frame units.
  double stroke = 0.0;
  // Stripes and checkerboard: pattern period in frame units, phase in periods, and the
  // fraction of each period that is filled.
  double period = 1.0, phase = 0.0, duty = 0.5;
  // Texture classes (stripes, checkerboard, dots): the patch is a disc, else a square.
  bool round_patch = false;
  // Triangle vertices, (u, v) each.
  std::array<std::array<double, 2>, 3> corners{};
  // Dots: centre u, centre v, radius.
  std::vector<std::array<double, 3>> dots;
};

// Draws random parameters for an instance of `shape` whose frame will be `radius_px`
// pixels per unit, so that pattern periods and dot sizes come out at a few pixels.
ShapeInstance SampleShape(ShapeClass shape, double radius_px, SeededRandom& rng);

// Whether frame point (u, v) is covered by the instance.
bool InsideShape(const ShapeInstance& instance, double u, double v);

}  // namespace slim::data
