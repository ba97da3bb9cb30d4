// Per-channel normalisation statistics of an image split, as stored in the `mean` and
// `std` attributes of the dataset format.
#pragma once

#include <vector>

#include "data/byte_dataset.h"

namespace slim::data {

// Mean and standard deviation per channel, in [0, 1] units (byte value / 255).
struct ChannelStats {
  std::vector<float> mean;
  std::vector<float> std;
};

// Computes population mean and std per channel over every pixel of every sample.
// A channel with zero spread gets std 1 so that normalising by it stays finite.
// REQUIRES: images.kind == kImage and images.CheckConsistent() passes.
ChannelStats ComputeChannelStats(const ByteDataset& images);

}  // namespace slim::data
