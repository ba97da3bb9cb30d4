#include "data/hdf5_dataset_writer.h"

#include <fcntl.h>
#include <hdf5.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "data/hdf5_check.h"
#include "runtime/errors.h"

namespace slim::data {
namespace {

// The dataset format version this writer produces.
constexpr int32_t kFormatVersion = 1;

// Throws DataError for a failed file system call on `path`, with errno's text.
[[noreturn]] void ThrowFileError(const std::string& what, const std::string& path) {
  throw DataError(what + " '" + path + "' failed: " + std::strerror(errno) +
                  "; check that its directory is writable and the disk has space");
}

// Creates a dataspace of the given dims (a scalar one for empty dims).
Hdf5Handle CreateSpace(const std::vector<hsize_t>& dims, const std::string& path) {
  const hid_t id =
      dims.empty()
          ? SLIM_H5_CHECK(H5Screate(H5S_SCALAR), path)
          : SLIM_H5_CHECK(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr),
                          path);
  return Hdf5Handle(id, H5Sclose);
}

// A variable-length UTF-8 string type.
Hdf5Handle CreateStringType(const std::string& path) {
  Hdf5Handle type(SLIM_H5_CHECK(H5Tcopy(H5T_C_S1), path), H5Tclose);
  SLIM_H5_CHECK(H5Tset_size(type.get(), H5T_VARIABLE), path);
  SLIM_H5_CHECK(H5Tset_cset(type.get(), H5T_CSET_UTF8), path);
  return type;
}

// Writes root attribute `name` of file type `file_type` and shape `dims` from `data`,
// which is laid out as `memory_type`.
void WriteAttribute(hid_t file, const char* name, hid_t file_type, hid_t memory_type,
                    const std::vector<hsize_t>& dims, const void* data, const std::string& path) {
  Hdf5Handle space = CreateSpace(dims, path);
  Hdf5Handle attribute(
      SLIM_H5_CHECK(H5Acreate2(file, name, file_type, space.get(), H5P_DEFAULT, H5P_DEFAULT), path),
      H5Aclose);
  SLIM_H5_CHECK(H5Awrite(attribute.get(), memory_type, data), path);
  SLIM_H5_CHECK(attribute.Reset(), path);
}

// Writes variable-length string attribute `name`: a scalar for one string when
// `scalar`, else a 1-D array.
void WriteStringAttribute(hid_t file, const char* name, const std::vector<std::string>& values,
                          bool scalar, const std::string& path) {
  std::vector<const char*> pointers;
  for (const std::string& value : values) pointers.push_back(value.c_str());
  Hdf5Handle type = CreateStringType(path);
  const std::vector<hsize_t> dims =
      scalar ? std::vector<hsize_t>{} : std::vector<hsize_t>{values.size()};
  WriteAttribute(file, name, type.get(), type.get(), dims, pointers.data(), path);
}

// Writes dataset `name` of file type `file_type`, shape `dims`, from `data` laid out as
// `memory_type`; chunked by `chunk` when it is non-empty, contiguous otherwise.
void WriteDataset(hid_t file, const char* name, hid_t file_type, hid_t memory_type,
                  const std::vector<hsize_t>& dims, const std::vector<hsize_t>& chunk,
                  const void* data, const std::string& path) {
  Hdf5Handle space = CreateSpace(dims, path);
  Hdf5Handle properties(SLIM_H5_CHECK(H5Pcreate(H5P_DATASET_CREATE), path), H5Pclose);
  SLIM_H5_CHECK(H5Pset_obj_track_times(properties.get(), false), path);
  if (!chunk.empty()) {
    SLIM_H5_CHECK(H5Pset_chunk(properties.get(), static_cast<int>(chunk.size()), chunk.data()),
                  path);
  }
  Hdf5Handle dataset(SLIM_H5_CHECK(H5Dcreate2(file, name, file_type, space.get(), H5P_DEFAULT,
                                              properties.get(), H5P_DEFAULT),
                                   path),
                     H5Dclose);
  SLIM_H5_CHECK(H5Dwrite(dataset.get(), memory_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), path);
  SLIM_H5_CHECK(dataset.Reset(), path);
}

// Writes the whole file at `path` (the temporary name) and closes it. Objects carry no
// timestamps, so equal splits give byte-identical files.
void WriteHdf5File(const std::string& path, const ByteDataset& split,
                   const std::optional<ChannelStats>& normalisation) {
  Hdf5Handle creation(SLIM_H5_CHECK(H5Pcreate(H5P_FILE_CREATE), path), H5Pclose);
  SLIM_H5_CHECK(H5Pset_obj_track_times(creation.get(), false), path);
  Hdf5Handle file(
      SLIM_H5_CHECK(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, creation.get(), H5P_DEFAULT), path),
      H5Fclose);
  const auto n = static_cast<hsize_t>(split.size());
  std::vector<hsize_t> input_dims = {n};
  for (int64_t dim : split.sample_shape) input_dims.push_back(static_cast<hsize_t>(dim));
  std::vector<hsize_t> chunk = input_dims;
  chunk[0] = std::min<hsize_t>(n, kInputChunkSamples);
  WriteDataset(file.get(), "inputs", H5T_STD_U8LE, H5T_NATIVE_UINT8, input_dims, chunk,
               split.inputs.data(), path);
  WriteDataset(file.get(), "labels", H5T_STD_I64LE, H5T_NATIVE_INT64, {n}, {}, split.labels.data(),
               path);

  WriteStringAttribute(file.get(), "kind", {SampleKindName(split.kind)}, /*scalar=*/true, path);
  WriteStringAttribute(file.get(), "class_names", split.class_names, /*scalar=*/false, path);
  if (normalisation) {
    const std::vector<hsize_t> channels = {normalisation->mean.size()};
    WriteAttribute(file.get(), "mean", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, channels,
                   normalisation->mean.data(), path);
    WriteAttribute(file.get(), "std", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, channels,
                   normalisation->std.data(), path);
  }
  WriteAttribute(file.get(), "format_version", H5T_STD_I32LE, H5T_NATIVE_INT32, {}, &kFormatVersion,
                 path);
  SLIM_H5_CHECK(H5Fflush(file.get(), H5F_SCOPE_GLOBAL), path);
  SLIM_H5_CHECK(file.Reset(), path);
}

// Forces the file at `path` to stable storage.
void SyncFile(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY);
  if (fd < 0) ThrowFileError("opening", path);
  const int status = fsync(fd);
  close(fd);
  if (status != 0) ThrowFileError("syncing", path);
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
  const std::string temporary = path + ".tmp";
  try {
    {
      ScopedHdf5ErrorSilencer quiet;
      WriteHdf5File(temporary, split, normalisation);
    }
    SyncFile(temporary);
    if (std::rename(temporary.c_str(), path.c_str()) != 0) {
      throw DataError("cannot rename '" + temporary + "' to '" + path +
                      "': " + std::strerror(errno) + "; make sure nothing else occupies that path");
    }
  } catch (...) {
    std::remove(temporary.c_str());
    throw;
  }
}

}  // namespace slim::data
