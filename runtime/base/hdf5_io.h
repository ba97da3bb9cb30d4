// Small typed helpers over the HDF5 C API shared by the dataset and checkpoint files:
// attributes, datasets, shapes, and the atomic "temporary file, fsync, rename" commit.
// Every helper checks its calls with SLIM_H5_CHECK and throws DataError naming `path`.
#pragma once

#include <hdf5.h>

#include <functional>
#include <string>
#include <vector>

#include "runtime/base/hdf5_check.h"

namespace slim::hdf5 {

// Creates a dataspace of the given dims (a scalar one for empty dims).
Hdf5Handle CreateSpace(const std::vector<hsize_t>& dims, const std::string& path);

// Writes attribute `name` on `object` (a file, group or dataset) with file type
// `file_type` and shape `dims` (empty: scalar) from `data`, laid out as `memory_type`.
// `data` may be null only for an attribute with no elements.
void WriteAttribute(hid_t object, const char* name, hid_t file_type, hid_t memory_type,
                    const std::vector<hsize_t>& dims, const void* data, const std::string& path);

// Writes a variable-length UTF-8 string attribute: a scalar for one string when
// `scalar`, else a 1-D array.
void WriteStringAttribute(hid_t object, const char* name, const std::vector<std::string>& values,
                          bool scalar, const std::string& path);

// Scalar int64 / float64 attributes.
void WriteInt64Attribute(hid_t object, const char* name, int64_t value, const std::string& path);
void WriteDoubleAttribute(hid_t object, const char* name, double value, const std::string& path);

// How a dataset is stored.
struct DatasetStorage {
  // Chunk dims; empty: contiguous.
  std::vector<hsize_t> chunk;
};

// Creates dataset `name` under `location` with file type `file_type` and shape `dims`,
// and writes it from `data` laid out as `memory_type` (nothing is written when `data` is
// null, for an empty dataset). Objects carry no timestamps.
void WriteDataset(hid_t location, const char* name, hid_t file_type, hid_t memory_type,
                  const std::vector<hsize_t>& dims, const DatasetStorage& storage,
                  const void* data, const std::string& path);

// The dims of `dataset`'s dataspace (empty for a scalar dataset).
std::vector<int64_t> DatasetShape(hid_t dataset, const std::string& path);

// Whether `object` has attribute `name`.
bool HasAttribute(hid_t object, const char* name, const std::string& path);

// Reads a string attribute (variable or fixed length). Throws DataError naming the
// attribute when it is not a string.
std::string ReadStringAttribute(hid_t object, const char* name, const std::string& path);

// Reads a 1-D array of variable-length strings.
std::vector<std::string> ReadStringArrayAttribute(hid_t object, const char* name,
                                                  const std::string& path);

// Reads a scalar numeric attribute converted to int64 / float64.
int64_t ReadInt64Attribute(hid_t object, const char* name, const std::string& path);
double ReadDoubleAttribute(hid_t object, const char* name, const std::string& path);

// Writes `path` crash-safely: `write(temporary)` writes path + ".tmp", which is then
// fsynced and renamed over `path`, and the directory is fsynced, so `path` is either the
// old file or the complete new one. The temporary is removed when `write` throws.
void CommitAtomically(const std::string& path,
                      const std::function<void(const std::string& temporary)>& write);

}  // namespace slim::hdf5
