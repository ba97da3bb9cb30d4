#include "data/hdf5_dataset.h"

#include <hdf5.h>

#include <fstream>

#include "runtime/base/hdf5_io.h"
#include "runtime/base/errors.h"

namespace slim::data {

namespace {

constexpr const char* kLayoutHint =
    " A dataset file needs /inputs (uint8 or float32, N x C x H x W or N x L), /labels "
    "(int64, N) and the root attributes kind and class_names; see docs/data-format.md or "
    "write one with slim-data.";

// Protects every HDF5 call of this file: the serial HDF5 library is not thread-safe.
std::mutex& Hdf5Mutex() {
  static std::mutex mutex;
  return mutex;
}

std::vector<float> ReadFloatArrayAttribute(hid_t object, const char* name,
                                           const std::string& path) {
  hdf5::Hdf5Handle attribute(SLIM_H5_CHECK(H5Aopen(object, name, H5P_DEFAULT), path), H5Aclose);
  hdf5::Hdf5Handle space(SLIM_H5_CHECK(H5Aget_space(attribute.get()), path), H5Sclose);
  const hssize_t count = SLIM_H5_CHECK(H5Sget_simple_extent_npoints(space.get()), path);
  std::vector<float> values(count);
  SLIM_H5_CHECK(H5Aread(attribute.get(), H5T_NATIVE_FLOAT, values.data()), path);
  return values;
}

}  // namespace

Hdf5Dataset::Hdf5Dataset(const std::string& path) {
  info_.path = path;
  if (!std::ifstream(path)) {
    throw DataError("dataset file '" + path +
                    "' cannot be read: check the path (generate the demo data with "
                    "scripts/quickstart.sh or slim-data)");
  }
  std::lock_guard<std::mutex> lock(Hdf5Mutex());
  hdf5::ScopedHdf5ErrorSilencer silence;
  if (H5Fis_hdf5(path.c_str()) <= 0) {
    throw DataError("'" + path + "' is not an HDF5 file." + kLayoutHint);
  }
  file_ = SLIM_H5_CHECK(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), path);
  ReadLayout();
  ReadAttributes();
  ReadAndCheckLabels();
}

Hdf5Dataset::~Hdf5Dataset() {
  std::lock_guard<std::mutex> lock(Hdf5Mutex());
  if (inputs_ >= 0) H5Dclose(inputs_);
  if (file_ >= 0) H5Fclose(file_);
}

void Hdf5Dataset::ReadLayout() {
  const std::string& path = info_.path;
  for (const char* name : {"inputs", "labels"}) {
    if (H5Lexists(file_, name, H5P_DEFAULT) <= 0) {
      throw DataError(path + ": dataset /" + name + " is missing." + kLayoutHint);
    }
  }
  inputs_ = SLIM_H5_CHECK(H5Dopen2(file_, "inputs", H5P_DEFAULT), path);
  const auto shape = hdf5::DatasetShape(inputs_, path);
  if (shape.size() != 2 && shape.size() != 4) {
    throw DataError(path + ": /inputs has " + std::to_string(shape.size()) +
                    " dimensions; expected 4 (N x C x H x W) or 2 (N x L)." + kLayoutHint);
  }
  info_.size = shape[0];
  info_.sample_shape.assign(shape.begin() + 1, shape.end());
  if (info_.size == 0) throw DataError(path + ": /inputs holds no samples." + kLayoutHint);

  hdf5::Hdf5Handle type(SLIM_H5_CHECK(H5Dget_type(inputs_), path), H5Tclose);
  if (H5Tequal(type.get(), H5T_STD_U8LE) > 0) {
    info_.input_type = torch::kUInt8;
  } else if (H5Tequal(type.get(), H5T_IEEE_F32LE) > 0) {
    info_.input_type = torch::kFloat32;
  } else {
    throw DataError(path + ": /inputs must be uint8 or float32." + kLayoutHint);
  }
}

void Hdf5Dataset::ReadAttributes() {
  const std::string& path = info_.path;
  for (const char* name : {"kind", "class_names"}) {
    if (!hdf5::HasAttribute(file_, name, path)) {
      throw DataError(path + ": root attribute '" + name + "' is missing." + kLayoutHint);
    }
  }
  const std::string kind = hdf5::ReadStringAttribute(file_, "kind", path);
  if (kind == "image") {
    info_.kind = InputKind::kImage;
    if (info_.sample_shape.size() != 3) {
      throw DataError(path + ": kind is 'image' but /inputs is not N x C x H x W." + kLayoutHint);
    }
  } else if (kind == "text") {
    info_.kind = InputKind::kText;
    if (info_.sample_shape.size() != 1 || info_.input_type != torch::kUInt8) {
      throw DataError(path + ": kind is 'text' but /inputs is not uint8 N x L." + kLayoutHint);
    }
  } else {
    throw DataError(path + ": attribute kind is '" + kind + "'; expected 'image' or 'text'.");
  }
  info_.class_names = hdf5::ReadStringArrayAttribute(file_, "class_names", path);
  if (info_.class_names.size() < 2) {
    throw DataError(path + ": class_names must name at least two classes." + kLayoutHint);
  }
  if (info_.kind == InputKind::kImage) {
    const size_t channels = info_.sample_shape[0];
    for (const char* name : {"mean", "std"}) {
      auto values = hdf5::HasAttribute(file_, name, path) ? ReadFloatArrayAttribute(file_, name, path)
                                                    : std::vector<float>();
      if (values.empty()) values.assign(channels, name[0] == 'm' ? 0.0f : 1.0f);
      if (values.size() != channels) {
        throw DataError(path + ": attribute " + name + " has " + std::to_string(values.size()) +
                        " values for " + std::to_string(channels) + " channels.");
      }
      (name[0] == 'm' ? info_.mean : info_.std) = values;
    }
    for (float deviation : info_.std) {
      if (!(deviation > 0)) throw DataError(path + ": attribute std must be positive.");
    }
  }
}

void Hdf5Dataset::ReadAndCheckLabels() {
  const std::string& path = info_.path;
  hdf5::Hdf5Handle labels(SLIM_H5_CHECK(H5Dopen2(file_, "labels", H5P_DEFAULT), path), H5Dclose);
  const auto shape = hdf5::DatasetShape(labels.get(), path);
  if (shape.size() != 1 || shape[0] != info_.size) {
    throw DataError(path + ": /labels must be a 1-D array of " + std::to_string(info_.size) +
                    " labels, one per sample of /inputs." + kLayoutHint);
  }
  hdf5::Hdf5Handle type(SLIM_H5_CHECK(H5Dget_type(labels.get()), path), H5Tclose);
  if (H5Tget_class(type.get()) != H5T_INTEGER) {
    throw DataError(path + ": /labels must hold integers (int64)." + kLayoutHint);
  }
  labels_.resize(info_.size);
  SLIM_H5_CHECK(H5Dread(labels.get(), H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT,
                        labels_.data()),
                path);
  const auto classes = static_cast<int64_t>(info_.class_names.size());
  for (int64_t i = 0; i < info_.size; ++i) {
    if (labels_[i] < 0 || labels_[i] >= classes) {
      throw DataError(path + ": label " + std::to_string(labels_[i]) + " of sample " +
                      std::to_string(i) + " is out of range: class_names lists " +
                      std::to_string(classes) + " classes (0.." + std::to_string(classes - 1) +
                      "). Fix the labels or the class_names attribute.");
    }
  }
}

torch::Tensor Hdf5Dataset::ReadInputs(const std::vector<int64_t>& indices) const {
  std::vector<int64_t> shape = {static_cast<int64_t>(indices.size())};
  shape.insert(shape.end(), info_.sample_shape.begin(), info_.sample_shape.end());
  auto batch = torch::empty(shape, torch::TensorOptions().dtype(info_.input_type));
  const int64_t sample_bytes = batch.numel() == 0 ? 0 : batch.nbytes() / indices.size();
  const hid_t memory_type =
      info_.input_type == torch::kUInt8 ? H5T_NATIVE_UINT8 : H5T_NATIVE_FLOAT;

  std::vector<hsize_t> start(shape.size(), 0);
  std::vector<hsize_t> count(shape.begin(), shape.end());
  count[0] = 1;
  std::lock_guard<std::mutex> lock(Hdf5Mutex());
  hdf5::ScopedHdf5ErrorSilencer silence;
  const std::string& path = info_.path;
  hdf5::Hdf5Handle file_space(SLIM_H5_CHECK(H5Dget_space(inputs_), path), H5Sclose);
  hdf5::Hdf5Handle memory_space(
      SLIM_H5_CHECK(H5Screate_simple(count.size(), count.data(), nullptr), path), H5Sclose);
  auto* out = static_cast<uint8_t*>(batch.data_ptr());
  for (size_t i = 0; i < indices.size(); ++i) {
    start[0] = indices[i];
    SLIM_H5_CHECK(H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start.data(), nullptr,
                                      count.data(), nullptr),
                  path);
    SLIM_H5_CHECK(H5Dread(inputs_, memory_type, memory_space.get(), file_space.get(), H5P_DEFAULT,
                          out + i * sample_bytes),
                  path);
  }
  return batch;
}

torch::Tensor Hdf5Dataset::Labels(const std::vector<int64_t>& indices) const {
  auto labels = torch::empty({static_cast<int64_t>(indices.size())}, torch::kInt64);
  auto* out = labels.data_ptr<int64_t>();
  for (size_t i = 0; i < indices.size(); ++i) out[i] = labels_[indices[i]];
  return labels;
}

}  // namespace slim::data
