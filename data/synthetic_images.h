// A procedural 10-class image classification set (32×32 RGB) that needs no download and
// is not trivial: each image has a textured, gradient background, 1-3 faint fragments of
// other classes, the class object at a random position, size, colour and (where the
// class allows) rotation, sometimes a partial occluder, and gaussian pixel noise.
// A ResNet-20 trained for about two epochs on 10k images lands well above chance and
// well below 100% eval accuracy.
#pragma once

#include <cstdint>

#include "data/byte_dataset.h"

namespace slim::data {

// Side length of the generated images, in pixels.
constexpr int kSyntheticImageSize = 32;

// Generates `count` images: kind image, sample_shape {3, 32, 32}, uint8 CHW pixels,
// class names from ShapeClassNames(). Labels are balanced (i % 10, shuffled). The result
// depends only on (count, seed): no std distributions are used, random draws happen in
// a fixed order, and each image draws from its own stream derived from the seed. Bytes
// can differ between platforms only where libm's sin/cos/log differ in the last bit or
// the compiler fuses multiply-adds (build with -ffp-contract=off to rule that out).
// Pass different seeds for different splits. REQUIRES: count > 0.
ByteDataset GenerateImages(int64_t count, uint64_t seed);

}  // namespace slim::data
