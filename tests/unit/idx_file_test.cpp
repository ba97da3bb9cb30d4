#include "data/idx_file.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <string>
#include <vector>

#include "data/fashion_mnist.h"
#include "runtime/base/errors.h"
#include "tests/unit/temp_file.h"

namespace slim::data {
namespace {

// An IDX file of unsigned bytes: magic, big-endian extents, then `data`.
std::string IdxBytes(const std::vector<uint32_t>& shape, const std::vector<uint8_t>& data) {
  std::string bytes = {0, 0, 0x08, static_cast<char>(shape.size())};
  for (uint32_t extent : shape) {
    for (int shift = 24; shift >= 0; shift -= 8) bytes.push_back(static_cast<char>(extent >> shift));
  }
  bytes.append(data.begin(), data.end());
  return bytes;
}

// Writes `bytes` gzip-compressed to `path`.
void WriteGzip(const std::string& path, const std::string& bytes) {
  gzFile file = gzopen(path.c_str(), "wb");
  ASSERT_NE(file, nullptr);
  ASSERT_EQ(gzwrite(file, bytes.data(), static_cast<unsigned>(bytes.size())),
            static_cast<int>(bytes.size()));
  gzclose(file);
}

std::string ErrorOf(const std::string& path, int dimensions) {
  try {
    ReadIdxFile(path, dimensions);
  } catch (const DataError& error) {
    return error.what();
  }
  ADD_FAILURE() << "no DataError for " << path;
  return "";
}

TEST(IdxFile, ReadsPlainAndGzipFilesBackByteForByte) {
  testing::TempDir dir;
  std::vector<uint8_t> pixels(2 * 3 * 4);
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<uint8_t>(i * 7);
  const auto bytes = IdxBytes({2, 3, 4}, pixels);
  WriteGzip(dir.File("a.gz"), bytes);
  for (const auto& path : {dir.Write("a", bytes), dir.File("a.gz")}) {
    const auto array = ReadIdxFile(path, 3);
    EXPECT_EQ(array.shape, (std::vector<int64_t>{2, 3, 4})) << path;
    EXPECT_EQ(array.bytes, pixels) << path;
  }
}

TEST(IdxFile, WrongMagicTruncationAndMissingFilesNameTheFile) {
  testing::TempDir dir;
  auto labels = IdxBytes({5}, {1, 2, 3, 4, 5});
  const auto path = dir.Write("labels", labels);
  EXPECT_NE(ErrorOf(path, 3).find(path + " is not an IDX file of unsigned bytes with 3"),
            std::string::npos);
  auto floats = labels;
  floats[2] = 0x0D;  // float32 elements
  EXPECT_NE(ErrorOf(dir.Write("floats", floats), 1).find("its magic is 00 00 0d 01"),
            std::string::npos);
  const auto short_path = dir.Write("short", labels.substr(0, labels.size() - 2));
  EXPECT_NE(ErrorOf(short_path, 1).find(short_path + " is truncated"), std::string::npos);
  EXPECT_NE(ErrorOf(dir.Write("header", labels.substr(0, 6)), 1).find("ends inside its header"),
            std::string::npos);
  EXPECT_NE(ErrorOf(dir.File("absent"), 1).find("cannot open IDX file"), std::string::npos);
}

TEST(FashionMnist, ReadsBothSplitsAndRefusesMismatchedFiles) {
  testing::TempDir dir;
  const std::vector<uint8_t> images(3 * 28 * 28, 9);
  for (const std::string split : {"train", "t10k"}) {
    WriteGzip(dir.File(split + "-images-idx3-ubyte.gz"), IdxBytes({3, 28, 28}, images));
    WriteGzip(dir.File(split + "-labels-idx1-ubyte.gz"), IdxBytes({3}, {0, 9, 4}));
  }
  const auto data = ReadFashionMnist(dir.File(""));
  EXPECT_EQ(data.train.sample_shape, (std::vector<int64_t>{1, 28, 28}));
  EXPECT_EQ(data.test.labels, (std::vector<int64_t>{0, 9, 4}));
  EXPECT_EQ(data.train.class_names.at(9), "ankle boot");
  WriteGzip(dir.File("t10k-labels-idx1-ubyte.gz"), IdxBytes({2}, {0, 1}));
  try {
    ReadFashionMnist(dir.File(""));
    ADD_FAILURE() << "mismatched counts were accepted";
  } catch (const DataError& error) {
    EXPECT_NE(std::string(error.what()).find("holds 3 images but"), std::string::npos)
        << error.what();
  }
  EXPECT_THROW(ReadFashionMnist(dir.File("nowhere")), DataError);
}

}  // namespace
}  // namespace slim::data
