// Reading a dataset file in the layout of docs/data-format.md.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace slim::data {

enum class InputKind { kImage, kText };

// What a dataset file holds, read from its datasets and attributes.
struct DatasetInfo {
  std::string path;
  InputKind kind = InputKind::kImage;
  int64_t size = 0;
  // Per-sample input shape: {C, H, W} for images, {L} for text.
  std::vector<int64_t> sample_shape;
  // torch::kUInt8 or torch::kFloat32.
  torch::ScalarType input_type = torch::kUInt8;
  std::vector<std::string> class_names;
  // Per-channel normalisation (images); empty for text.
  std::vector<float> mean;
  std::vector<float> std;
};

// An open dataset file. Construction validates the whole layout and every label, so a
// bad file fails before training starts. Thread-safe: reads are serialised because the
// serial HDF5 library is not thread-safe.
class Hdf5Dataset {
 public:
  // Throws DataError naming `path` and what is wrong (missing file, missing or misshapen
  // dataset, wrong dtype, label out of range, ...) and what the file should contain.
  explicit Hdf5Dataset(const std::string& path);
  ~Hdf5Dataset();
  Hdf5Dataset(const Hdf5Dataset&) = delete;
  Hdf5Dataset& operator=(const Hdf5Dataset&) = delete;

  const DatasetInfo& info() const { return info_; }

  // Raw inputs of the given samples, [n, sample_shape...] of info().input_type.
  // REQUIRES: 0 <= index < info().size for every index.
  torch::Tensor ReadInputs(const std::vector<int64_t>& indices) const;
  // Labels of the given samples, int64 [n].
  torch::Tensor Labels(const std::vector<int64_t>& indices) const;

 private:
  void ReadLayout();
  void ReadAttributes();
  void ReadAndCheckLabels();

  DatasetInfo info_;
  int64_t file_ = -1;
  int64_t inputs_ = -1;
  std::vector<int64_t> labels_;
  mutable std::mutex read_mutex_;
};

}  // namespace slim::data
