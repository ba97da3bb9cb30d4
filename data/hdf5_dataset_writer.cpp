#include "data/hdf5_dataset_writer.h"

#include <algorithm>
#include <vector>

#include "runtime/base/hdf5_io.h"
#include "runtime/base/errors.h"

namespace slim::data {
namespace {

// The dataset format version this writer produces.
constexpr int32_t kFormatVersion = 1;

// Writes the whole file at `path` (the temporary name) and closes it. Objects carry no
// timestamps, so equal splits give byte-identical files.
void WriteHdf5File(const std::string& path, const ByteDataset& split,
                   const std::optional<ChannelStats>& normalisation) {
  hdf5::Hdf5Handle creation(SLIM_H5_CHECK(H5Pcreate(H5P_FILE_CREATE), path), H5Pclose);
  SLIM_H5_CHECK(H5Pset_obj_track_times(creation.get(), false), path);
  hdf5::Hdf5Handle file(
      SLIM_H5_CHECK(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, creation.get(), H5P_DEFAULT), path),
      H5Fclose);
  const auto n = static_cast<hsize_t>(split.size());
  std::vector<hsize_t> input_dims = {n};
  for (int64_t dim : split.sample_shape) input_dims.push_back(static_cast<hsize_t>(dim));
  std::vector<hsize_t> chunk = input_dims;
  chunk[0] = std::min<hsize_t>(n, kInputChunkSamples);
  hdf5::WriteDataset(file.get(), "inputs", H5T_STD_U8LE, H5T_NATIVE_UINT8, input_dims,
               hdf5::DatasetStorage{chunk}, split.inputs.data(), path);
  hdf5::WriteDataset(file.get(), "labels", H5T_STD_I64LE, H5T_NATIVE_INT64, {n}, hdf5::DatasetStorage{},
               split.labels.data(), path);

  hdf5::WriteStringAttribute(file.get(), "kind", {SampleKindName(split.kind)}, /*scalar=*/true, path);
  hdf5::WriteStringAttribute(file.get(), "class_names", split.class_names, /*scalar=*/false, path);
  if (normalisation) {
    const std::vector<hsize_t> channels = {normalisation->mean.size()};
    hdf5::WriteAttribute(file.get(), "mean", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, channels,
                   normalisation->mean.data(), path);
    hdf5::WriteAttribute(file.get(), "std", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, channels,
                   normalisation->std.data(), path);
  }
  hdf5::WriteAttribute(file.get(), "format_version", H5T_STD_I32LE, H5T_NATIVE_INT32, {}, &kFormatVersion,
                 path);
  SLIM_H5_CHECK(H5Fflush(file.get(), H5F_SCOPE_GLOBAL), path);
  SLIM_H5_CHECK(file.Reset(), path);
}

// Throws DataError unless `normalisation` is present, with one value per channel,
// exactly when `split` holds images.
void CheckNormalisation(const ByteDataset& split, const std::optional<ChannelStats>& normalisation,
                        const std::string& path) {
  if (split.kind != SampleKind::kImage) {
    if (normalisation) throw DataError(path + ": text splits take no mean/std");
    return;
  }
  const auto channels = static_cast<size_t>(split.sample_shape[0]);
  if (!normalisation || normalisation->mean.size() != channels ||
      normalisation->std.size() != channels) {
    throw DataError(path + ": image splits need mean and std with one value per channel (" +
                    std::to_string(channels) + ")");
  }
}

}  // namespace

void WriteDatasetFile(const std::string& path, const ByteDataset& split,
                      const std::optional<ChannelStats>& normalisation) {
  split.CheckConsistent(path);
  CheckNormalisation(split, normalisation, path);
  hdf5::CommitAtomically(path, [&](const std::string& temporary) {
    hdf5::ScopedHdf5ErrorSilencer quiet;
    WriteHdf5File(temporary, split, normalisation);
  });
}

}  // namespace slim::data
