// Fashion-MNIST (Zalando Research: 70,000 28x28 grey images of 10 clothing classes) from its
// IDX files, as the Debian package dataset-fashion-mnist installs them.
#pragma once

#include <string>

#include "data/byte_dataset.h"

namespace slim::data {

// Where dataset-fashion-mnist puts the files.
constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

struct FashionMnist {
  ByteDataset train;  // 60,000 images, sample shape {1, 28, 28}
  ByteDataset test;   // 10,000 images
};

// Reads {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz] from `directory`. Throws
// DataError naming the file that is missing, malformed or inconsistent (image and label
// counts, 28x28 images, labels 0..9).
FashionMnist ReadFashionMnist(const std::string& directory);

}  // namespace slim::data
