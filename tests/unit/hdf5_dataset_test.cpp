#include "data/hdf5_dataset.h"

#include <gtest/gtest.h>
#include <hdf5.h>

#include "data/batch_transform.h"
#include "data/channel_stats.h"
#include "data/hdf5_dataset_writer.h"
#include "data/synthetic_images.h"
#include "runtime/base/errors.h"
#include "tests/unit/temp_file.h"

namespace slim::data {
namespace {

class Hdf5DatasetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    images_ = GenerateImages(20, 3);
    path_ = dir_.File("train.h5");
    WriteDatasetFile(path_, images_, ComputeChannelStats(images_));
  }

  // The DataError message that opening `path` gives.
  static std::string OpenError(const std::string& path) {
    try {
      Hdf5Dataset dataset(path);
    } catch (const DataError& e) {
      return e.what();
    }
    ADD_FAILURE() << "no DataError for " << path;
    return "";
  }

  testing::TempDir dir_;
  ByteDataset images_;
  std::string path_;
};

TEST_F(Hdf5DatasetTest, ReadsWhatTheWriterWrote) {
  Hdf5Dataset dataset(path_);
  const auto& info = dataset.info();
  EXPECT_EQ(info.kind, InputKind::kImage);
  EXPECT_EQ(info.size, 20);
  EXPECT_EQ(info.sample_shape, (std::vector<int64_t>{3, 32, 32}));
  EXPECT_EQ(info.class_names, images_.class_names);
  ASSERT_EQ(info.mean.size(), 3u);

  const std::vector<int64_t> indices = {7, 2};
  const auto inputs = dataset.ReadInputs(indices);
  ASSERT_EQ(inputs.sizes(), (std::vector<int64_t>{2, 3, 32, 32}));
  const int64_t sample = 3 * 32 * 32;
  for (size_t i = 0; i < indices.size(); ++i) {
    const auto* expected = images_.inputs.data() + indices[i] * sample;
    EXPECT_EQ(std::memcmp(inputs[i].data_ptr(), expected, sample), 0) << "sample " << indices[i];
  }
  const auto labels = dataset.Labels(indices);
  EXPECT_EQ(labels[0].item<int64_t>(), images_.labels[7]);
  EXPECT_EQ(labels[1].item<int64_t>(), images_.labels[2]);
}

TEST_F(Hdf5DatasetTest, LabelOutOfRangeNamesSampleAndClassCount) {
  const hid_t file = H5Fopen(path_.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  const hid_t labels = H5Dopen2(file, "labels", H5P_DEFAULT);
  const hid_t space = H5Dget_space(labels);
  const hsize_t start = 5, count = 1;
  H5Sselect_hyperslab(space, H5S_SELECT_SET, &start, nullptr, &count, nullptr);
  const hid_t one = H5Screate_simple(1, &count, nullptr);
  const int64_t bad = 12;
  ASSERT_GE(H5Dwrite(labels, H5T_NATIVE_INT64, one, space, H5P_DEFAULT, &bad), 0);
  H5Sclose(one);
  H5Sclose(space);
  H5Dclose(labels);
  H5Fclose(file);
  const auto message = OpenError(path_);
  EXPECT_NE(message.find("label 12 of sample 5 is out of range"), std::string::npos) << message;
  EXPECT_NE(message.find(path_), std::string::npos) << message;
}

TEST_F(Hdf5DatasetTest, WrongLayoutIsExplained) {
  const hid_t file = H5Fopen(path_.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  H5Ldelete(file, "inputs", H5P_DEFAULT);
  const hsize_t dims[3] = {20, 4, 4};
  const hid_t space = H5Screate_simple(3, dims, nullptr);
  const hid_t inputs = H5Dcreate2(file, "inputs", H5T_STD_U8LE, space, H5P_DEFAULT, H5P_DEFAULT,
                                  H5P_DEFAULT);
  H5Dclose(inputs);
  H5Sclose(space);
  H5Fclose(file);
  const auto message = OpenError(path_);
  EXPECT_NE(message.find("/inputs has 3 dimensions"), std::string::npos) << message;
  EXPECT_NE(message.find("docs/data-format.md"), std::string::npos) << message;
}

TEST_F(Hdf5DatasetTest, MissingAndNonHdf5FilesAreDataErrors) {
  EXPECT_NE(OpenError(dir_.File("absent.h5")).find("cannot be read"), std::string::npos);
  EXPECT_NE(OpenError(dir_.Write("text.h5", "not hdf5")).find("is not an HDF5 file"),
            std::string::npos);
}

TEST_F(Hdf5DatasetTest, AugmentationDependsOnSampleAndEpochOnly) {
  Hdf5Dataset dataset(path_);
  BatchTransform transform(dataset.info(), AugmentSettings{true, 4, true, 11});
  const std::vector<int64_t> pair = {3, 9};
  const std::vector<int64_t> alone = {9};
  const auto together = transform.Apply(dataset.ReadInputs(pair), pair, 2);
  const auto single = transform.Apply(dataset.ReadInputs(alone), alone, 2);
  EXPECT_TRUE(torch::equal(together[1], single[0]));
  EXPECT_FALSE(torch::equal(together[1], transform.Apply(dataset.ReadInputs(alone), alone, 3)[0]));

  BatchTransform plain(dataset.info(), AugmentSettings{});
  const auto normalised = plain.Apply(dataset.ReadInputs(alone), alone, 0);
  const auto expected = (dataset.ReadInputs(alone).to(torch::kFloat32) / 255.0 -
                         torch::tensor(dataset.info().mean).view({1, 3, 1, 1})) /
                        torch::tensor(dataset.info().std).view({1, 3, 1, 1});
  EXPECT_TRUE(torch::allclose(normalised, expected));
}

}  // namespace
}  // namespace slim::data
