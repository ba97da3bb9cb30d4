// Reading IDX files (the format of MNIST and Fashion-MNIST), plain or gzip-compressed:
// a big-endian header (magic 0x0000 08 NN: unsigned bytes, NN dimensions), NN big-endian
// uint32 extents, then the bytes row-major.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace slim::data {

struct IdxArray {
  std::vector<int64_t> shape;  // extents, the first one the sample count
  std::vector<uint8_t> bytes;  // product(shape) bytes
};

// Reads `path` (gzip or not: zlib tells). Throws DataError naming the file for a missing or
// unreadable file, a magic that is not unsigned-byte IDX, a dimension count other than
// `dimensions`, and a file shorter than its header says.
IdxArray ReadIdxFile(const std::string& path, int dimensions);

}  // namespace slim::data
