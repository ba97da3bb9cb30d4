#include "data/byte_dataset.h"

#include <string>

#include "runtime/base/errors.h"

namespace slim::data {

const char* SampleKindName(SampleKind kind) {
  return kind == SampleKind::kImage ? "image" : "text";
}

int64_t ByteDataset::sample_bytes() const {
  int64_t bytes = 1;
  for (int64_t dim : sample_shape) bytes *= dim;
  return bytes;
}

void ByteDataset::CheckConsistent(const std::string& what) const {
  const std::string prefix = what + ": ";
  const size_t want_dims = kind == SampleKind::kImage ? 3 : 1;
  if (sample_shape.size() != want_dims) {
    throw DataError(prefix + SampleKindName(kind) + " samples need " + std::to_string(want_dims) +
                    " dims, got " + std::to_string(sample_shape.size()));
  }
  for (int64_t dim : sample_shape) {
    if (dim <= 0) throw DataError(prefix + "sample shape has a non-positive dim");
  }
  if (labels.empty()) throw DataError(prefix + "the split has no samples");
  if (static_cast<int64_t>(inputs.size()) != size() * sample_bytes()) {
    throw DataError(prefix + "inputs hold " + std::to_string(inputs.size()) + " bytes, expected " +
                    std::to_string(size() * sample_bytes()));
  }
  if (class_names.size() < 2) {
    throw DataError(prefix + "need at least 2 classes, got " + std::to_string(class_names.size()));
  }
  const auto num_classes = static_cast<int64_t>(class_names.size());
  for (size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] < 0 || labels[i] >= num_classes) {
      throw DataError(prefix + "label " + std::to_string(labels[i]) + " of sample " +
                      std::to_string(i) + " is outside [0, " + std::to_string(num_classes) + ")");
    }
  }
}

}  // namespace slim::data
