// In-memory form of one dataset split whose samples are bytes: uint8 images (C×H×W) or
// byte sequences (L). The generators fill it and the HDF5 writer stores it in the layout
// of docs/data-format.md.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace slim::data {

// How the samples of a split are to be interpreted; stored as the root attribute `kind`.
enum class SampleKind { kImage, kText };

// The name of `kind` as written to the `kind` attribute: "image" or "text".
const char* SampleKindName(SampleKind kind);

// One split held in memory. A plain value type: no invariants are enforced on
// construction; CheckConsistent() states and verifies them.
struct ByteDataset {
  SampleKind kind = SampleKind::kImage;
  // Per-sample shape: {C, H, W} for images, {L} for text.
  std::vector<int64_t> sample_shape;
  // All samples back to back, each laid out row-major in sample_shape (CHW for images).
  std::vector<uint8_t> inputs;
  // Class index of each sample, 0 <= label < class_names.size().
  std::vector<int64_t> labels;
  // One name per class; the number of classes is its length.
  std::vector<std::string> class_names;

  // Number of samples (labels.size()).
  int64_t size() const { return static_cast<int64_t>(labels.size()); }
  // Bytes per sample: the product of sample_shape.
  int64_t sample_bytes() const;
  // Throws DataError, prefixed with `what`, unless: the split has at least one sample,
  // sample_shape has 3 dims (image) or 1 dim (text), all positive; inputs holds exactly
  // size() * sample_bytes() bytes; there are at least 2 class names and every label
  // indexes one of them.
  void CheckConsistent(const std::string& what) const;
};

}  // namespace slim::data
