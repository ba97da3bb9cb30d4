// Turns raw samples as stored into model inputs: normalisation for images, int64 tokens
// for text, and training augmentation (random crop with padding, horizontal flip).
//
// Augmentation is drawn from (seed, epoch, sample index) alone, never from the thread or
// the rank that prepares the batch, so a run is repeatable and a resumed run or a run on
// another number of ranks augments every sample exactly as the original would.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <vector>

#include "data/hdf5_dataset.h"

namespace slim::data {

struct AugmentSettings {
  // Apply the random crop and flip (training); false for evaluation.
  bool enabled = false;
  // Zero padding before the random crop, in pixels; 0 disables the crop.
  int64_t crop_padding = 0;
  bool horizontal_flip = false;
  uint64_t seed = 0;
};

class BatchTransform {
 public:
  BatchTransform(const DatasetInfo& info, const AugmentSettings& augment);

  // `raw` is [n, sample_shape...] as Hdf5Dataset::ReadInputs returns it, `indices` the
  // dataset indices of its rows. Returns float32 [n, C, H, W] normalised images or int64
  // [n, L] tokens. Thread-safe (const, no shared state).
  torch::Tensor Apply(const torch::Tensor& raw, const std::vector<int64_t>& indices,
                      int64_t epoch) const;

 private:
  torch::Tensor Augment(torch::Tensor images, const std::vector<int64_t>& indices,
                        int64_t epoch) const;

  InputKind kind_;
  torch::ScalarType input_type_;
  torch::Tensor mean_;  // [1, C, 1, 1]
  torch::Tensor std_;   // [1, C, 1, 1]
  AugmentSettings augment_;
};

}  // namespace slim::data
