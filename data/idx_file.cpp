#include "data/idx_file.h"

#include <zlib.h>

#include <fmt/format.h>

#include <memory>

#include "runtime/base/errors.h"

namespace slim::data {

namespace {

using GzFile = std::unique_ptr<gzFile_s, decltype(&gzclose)>;

// Reads exactly `size` bytes into `out`; false when the file ends first.
bool ReadExactly(gzFile file, void* out, size_t size) {
  auto* cursor = static_cast<unsigned char*>(out);
  while (size > 0) {
    const unsigned chunk = static_cast<unsigned>(std::min<size_t>(size, 1u << 30));
    const int read = gzread(file, cursor, chunk);
    if (read <= 0) return false;
    cursor += read;
    size -= static_cast<size_t>(read);
  }
  return true;
}

uint32_t BigEndian(const unsigned char* bytes) {
  return uint32_t{bytes[0]} << 24 | uint32_t{bytes[1]} << 16 | uint32_t{bytes[2]} << 8 |
         uint32_t{bytes[3]};
}

}  // namespace

IdxArray ReadIdxFile(const std::string& path, int dimensions) {
  GzFile file(gzopen(path.c_str(), "rb"), &gzclose);
  if (!file) throw DataError(fmt::format("cannot open IDX file {}: check the path", path));
  unsigned char magic[4];
  if (!ReadExactly(file.get(), magic, sizeof(magic))) {
    throw DataError(fmt::format("{} is empty or not an IDX file", path));
  }
  if (magic[0] != 0 || magic[1] != 0 || magic[2] != 0x08 || magic[3] != dimensions) {
    throw DataError(fmt::format(
        "{} is not an IDX file of unsigned bytes with {} dimension(s): its magic is "
        "{:02x} {:02x} {:02x} {:02x}, expected 00 00 08 {:02x}",
        path, dimensions, magic[0], magic[1], magic[2], magic[3], dimensions));
  }
  IdxArray array;
  size_t total = 1;
  for (int d = 0; d < dimensions; ++d) {
    unsigned char extent[4];
    if (!ReadExactly(file.get(), extent, sizeof(extent))) {
      throw DataError(fmt::format("{} ends inside its header", path));
    }
    array.shape.push_back(BigEndian(extent));
    total *= BigEndian(extent);
  }
  array.bytes.resize(total);
  if (!ReadExactly(file.get(), array.bytes.data(), total)) {
    throw DataError(fmt::format("{} is truncated: its header announces {} bytes of data", path,
                                total));
  }
  return array;
}

}  // namespace slim::data
