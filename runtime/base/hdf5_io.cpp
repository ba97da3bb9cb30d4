#include "runtime/base/hdf5_io.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "runtime/base/errors.h"

namespace slim::hdf5 {
namespace {

// Throws DataError for a failed file system call on `path`, with errno's text.
[[noreturn]] void ThrowFileError(const std::string& what, const std::string& path) {
  throw DataError(what + " '" + path + "' failed: " + std::strerror(errno) +
                  "; check that its directory is writable and the disk has space");
}

// A variable-length UTF-8 string type.
Hdf5Handle CreateStringType(const std::string& path) {
  Hdf5Handle type(SLIM_H5_CHECK(H5Tcopy(H5T_C_S1), path), H5Tclose);
  SLIM_H5_CHECK(H5Tset_size(type.get(), H5T_VARIABLE), path);
  SLIM_H5_CHECK(H5Tset_cset(type.get(), H5T_CSET_UTF8), path);
  return type;
}

// A variable-length string memory type with the character set of `file_type`.
Hdf5Handle VariableStringMemoryType(hid_t file_type, const std::string& path) {
  Hdf5Handle memory_type(SLIM_H5_CHECK(H5Tcopy(H5T_C_S1), path), H5Tclose);
  SLIM_H5_CHECK(H5Tset_size(memory_type.get(), H5T_VARIABLE), path);
  SLIM_H5_CHECK(H5Tset_cset(memory_type.get(), H5Tget_cset(file_type)), path);
  return memory_type;
}

// Forces the file or directory at `path` to stable storage.
void SyncPath(const std::string& path, int flags) {
  const int fd = open(path.c_str(), flags);
  if (fd < 0) ThrowFileError("opening", path);
  const int status = fsync(fd);
  close(fd);
  if (status != 0) ThrowFileError("syncing", path);
}

template <typename T>
T ReadNumericAttribute(hid_t object, const char* name, hid_t memory_type, const std::string& path) {
  Hdf5Handle attribute(SLIM_H5_CHECK(H5Aopen(object, name, H5P_DEFAULT), path), H5Aclose);
  Hdf5Handle space(SLIM_H5_CHECK(H5Aget_space(attribute.get()), path), H5Sclose);
  if (SLIM_H5_CHECK(H5Sget_simple_extent_npoints(space.get()), path) != 1) {
    throw DataError(path + ": attribute '" + name + "' must hold one number");
  }
  T value{};
  SLIM_H5_CHECK(H5Aread(attribute.get(), memory_type, &value), path);
  return value;
}

}  // namespace

Hdf5Handle CreateSpace(const std::vector<hsize_t>& dims, const std::string& path) {
  const hid_t id =
      dims.empty()
          ? SLIM_H5_CHECK(H5Screate(H5S_SCALAR), path)
          : SLIM_H5_CHECK(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr),
                          path);
  return Hdf5Handle(id, H5Sclose);
}

void WriteAttribute(hid_t object, const char* name, hid_t file_type, hid_t memory_type,
                    const std::vector<hsize_t>& dims, const void* data, const std::string& path) {
  Hdf5Handle space = CreateSpace(dims, path);
  Hdf5Handle attribute(
      SLIM_H5_CHECK(H5Acreate2(object, name, file_type, space.get(), H5P_DEFAULT, H5P_DEFAULT),
                    path),
      H5Aclose);
  if (data != nullptr) SLIM_H5_CHECK(H5Awrite(attribute.get(), memory_type, data), path);
  SLIM_H5_CHECK(attribute.Reset(), path);
}

void WriteStringAttribute(hid_t object, const char* name, const std::vector<std::string>& values,
                          bool scalar, const std::string& path) {
  std::vector<const char*> pointers;
  for (const std::string& value : values) pointers.push_back(value.c_str());
  Hdf5Handle type = CreateStringType(path);
  const std::vector<hsize_t> dims =
      scalar ? std::vector<hsize_t>{} : std::vector<hsize_t>{values.size()};
  WriteAttribute(object, name, type.get(), type.get(), dims, pointers.data(), path);
}

void WriteInt64Attribute(hid_t object, const char* name, int64_t value, const std::string& path) {
  WriteAttribute(object, name, H5T_STD_I64LE, H5T_NATIVE_INT64, {}, &value, path);
}

void WriteDoubleAttribute(hid_t object, const char* name, double value, const std::string& path) {
  WriteAttribute(object, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, {}, &value, path);
}

void WriteDataset(hid_t location, const char* name, hid_t file_type, hid_t memory_type,
                  const std::vector<hsize_t>& dims, const DatasetStorage& storage,
                  const void* data, const std::string& path) {
  Hdf5Handle space = CreateSpace(dims, path);
  Hdf5Handle properties(SLIM_H5_CHECK(H5Pcreate(H5P_DATASET_CREATE), path), H5Pclose);
  SLIM_H5_CHECK(H5Pset_obj_track_times(properties.get(), false), path);
  if (!storage.chunk.empty()) {
    SLIM_H5_CHECK(H5Pset_chunk(properties.get(), static_cast<int>(storage.chunk.size()),
                               storage.chunk.data()),
                  path);
  }
  Hdf5Handle dataset(SLIM_H5_CHECK(H5Dcreate2(location, name, file_type, space.get(),
                                              H5P_DEFAULT, properties.get(), H5P_DEFAULT),
                                   path),
                     H5Dclose);
  if (data != nullptr) {
    SLIM_H5_CHECK(H5Dwrite(dataset.get(), memory_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), path);
  }
  SLIM_H5_CHECK(dataset.Reset(), path);
}

std::vector<int64_t> DatasetShape(hid_t dataset, const std::string& path) {
  Hdf5Handle space(SLIM_H5_CHECK(H5Dget_space(dataset), path), H5Sclose);
  const int rank = SLIM_H5_CHECK(H5Sget_simple_extent_ndims(space.get()), path);
  std::vector<hsize_t> dims(rank);
  SLIM_H5_CHECK(H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr), path);
  return std::vector<int64_t>(dims.begin(), dims.end());
}

bool HasAttribute(hid_t object, const char* name, const std::string& path) {
  return SLIM_H5_CHECK(H5Aexists(object, name), path) > 0;
}

std::string ReadStringAttribute(hid_t object, const char* name, const std::string& path) {
  Hdf5Handle attribute(SLIM_H5_CHECK(H5Aopen(object, name, H5P_DEFAULT), path), H5Aclose);
  Hdf5Handle file_type(SLIM_H5_CHECK(H5Aget_type(attribute.get()), path), H5Tclose);
  if (H5Tget_class(file_type.get()) != H5T_STRING) {
    throw DataError(path + ": attribute '" + name + "' must be a string");
  }
  if (H5Tis_variable_str(file_type.get()) > 0) {
    Hdf5Handle memory_type = VariableStringMemoryType(file_type.get(), path);
    char* text = nullptr;
    SLIM_H5_CHECK(H5Aread(attribute.get(), memory_type.get(), &text), path);
    std::string value = text ? text : "";
    H5free_memory(text);
    return value;
  }
  const size_t size = H5Tget_size(file_type.get());
  std::string value(size, '\0');
  SLIM_H5_CHECK(H5Aread(attribute.get(), file_type.get(), value.data()), path);
  return value.substr(0, value.find('\0'));
}

std::vector<std::string> ReadStringArrayAttribute(hid_t object, const char* name,
                                                  const std::string& path) {
  Hdf5Handle attribute(SLIM_H5_CHECK(H5Aopen(object, name, H5P_DEFAULT), path), H5Aclose);
  Hdf5Handle file_type(SLIM_H5_CHECK(H5Aget_type(attribute.get()), path), H5Tclose);
  Hdf5Handle space(SLIM_H5_CHECK(H5Aget_space(attribute.get()), path), H5Sclose);
  const hssize_t count = SLIM_H5_CHECK(H5Sget_simple_extent_npoints(space.get()), path);
  if (H5Tget_class(file_type.get()) != H5T_STRING || H5Tis_variable_str(file_type.get()) <= 0) {
    throw DataError(path + ": attribute '" + name +
                    "' must be an array of variable-length strings");
  }
  if (count == 0) return {};
  Hdf5Handle memory_type = VariableStringMemoryType(file_type.get(), path);
  std::vector<char*> texts(count, nullptr);
  SLIM_H5_CHECK(H5Aread(attribute.get(), memory_type.get(), texts.data()), path);
  std::vector<std::string> values;
  for (char* text : texts) {
    values.emplace_back(text ? text : "");
    H5free_memory(text);
  }
  return values;
}

int64_t ReadInt64Attribute(hid_t object, const char* name, const std::string& path) {
  return ReadNumericAttribute<int64_t>(object, name, H5T_NATIVE_INT64, path);
}

double ReadDoubleAttribute(hid_t object, const char* name, const std::string& path) {
  return ReadNumericAttribute<double>(object, name, H5T_NATIVE_DOUBLE, path);
}

void CommitAtomically(const std::string& path,
                      const std::function<void(const std::string& temporary)>& write) {
  const std::string temporary = path + ".tmp";
  try {
    write(temporary);
    SyncPath(temporary, O_RDONLY);
    if (std::rename(temporary.c_str(), path.c_str()) != 0) {
      throw DataError("cannot rename '" + temporary + "' to '" + path +
                      "': " + std::strerror(errno) + "; make sure nothing else occupies that path");
    }
  } catch (...) {
    std::remove(temporary.c_str());
    throw;
  }
  const auto directory = std::filesystem::path(path).parent_path();
  SyncPath(directory.empty() ? "." : directory.string(), O_RDONLY | O_DIRECTORY);
}

}  // namespace slim::hdf5
