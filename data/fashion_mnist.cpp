#include "data/fashion_mnist.h"

#include <fmt/format.h>

#include <filesystem>

#include "data/idx_file.h"
#include "runtime/base/errors.h"

namespace slim::data {

namespace {

constexpr int64_t kSide = 28;

// `directory`/`stem`, or `directory`/`stem`.gz when only that exists.
std::string FileOf(const std::string& directory, const std::string& stem) {
  const auto plain = std::filesystem::path(directory) / stem;
  if (std::filesystem::exists(plain)) return plain.string();
  const auto compressed = plain.string() + ".gz";
  if (std::filesystem::exists(compressed)) return compressed;
  throw DataError(fmt::format("Fashion-MNIST file {}[.gz] is missing; install the Debian "
                              "package dataset-fashion-mnist or pass --source DIR",
                              plain.string()));
}

ByteDataset ReadSplit(const std::string& directory, const std::string& prefix) {
  const auto images_path = FileOf(directory, prefix + "-images-idx3-ubyte");
  const auto labels_path = FileOf(directory, prefix + "-labels-idx1-ubyte");
  IdxArray images = ReadIdxFile(images_path, 3);
  const IdxArray labels = ReadIdxFile(labels_path, 1);
  if (images.shape[1] != kSide || images.shape[2] != kSide) {
    throw DataError(fmt::format("{} holds {}x{} images; Fashion-MNIST's are 28x28",
                                images_path, images.shape[1], images.shape[2]));
  }
  if (images.shape[0] != labels.shape[0]) {
    throw DataError(fmt::format("{} holds {} images but {} has {} labels", images_path,
                                images.shape[0], labels_path, labels.shape[0]));
  }
  ByteDataset split;
  split.kind = SampleKind::kImage;
  split.sample_shape = {1, kSide, kSide};
  split.inputs = std::move(images.bytes);
  split.labels.assign(labels.bytes.begin(), labels.bytes.end());
  split.class_names = {"t-shirt/top", "trouser", "pullover", "dress", "coat",
                       "sandal",      "shirt",   "sneaker",  "bag",   "ankle boot"};
  split.CheckConsistent(labels_path);
  return split;
}

}  // namespace

FashionMnist ReadFashionMnist(const std::string& directory) {
  return {ReadSplit(directory, "train"), ReadSplit(directory, "t10k")};
}

}  // namespace slim::data
