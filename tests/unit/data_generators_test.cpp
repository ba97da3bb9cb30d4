#include <gtest/gtest.h>

#include <algorithm>

#include "data/synthetic_images.h"
#include "data/text_corpus.h"
#include "runtime/base/errors.h"
#include "tests/unit/temp_file.h"

namespace slim::data {
namespace {

TEST(SyntheticImages, SameSeedSameBytesOtherSeedOtherBytes) {
  const auto first = GenerateImages(40, 9);
  const auto again = GenerateImages(40, 9);
  const auto other = GenerateImages(40, 10);
  EXPECT_EQ(first.inputs, again.inputs);
  EXPECT_EQ(first.labels, again.labels);
  EXPECT_NE(first.inputs, other.inputs);
  EXPECT_EQ(first.sample_shape, (std::vector<int64_t>{3, 32, 32}));
  EXPECT_EQ(first.inputs.size(), 40u * 3 * 32 * 32);
}

TEST(SyntheticImages, LabelsAreBalanced) {
  const auto images = GenerateImages(200, 1);
  ASSERT_EQ(images.class_names.size(), 10u);
  for (int64_t label = 0; label < 10; ++label) {
    EXPECT_EQ(std::count(images.labels.begin(), images.labels.end(), label), 20) << label;
  }
}

class TextCorpusTest : public ::testing::Test {
 protected:
  std::string Text(const std::string& name, char letter, size_t bytes) {
    std::string text;
    for (size_t i = 0; i < bytes; ++i) text += static_cast<char>(letter + i % 7);
    return dir_.Write(name, text);
  }
  testing::TempDir dir_;
};

TEST_F(TextCorpusTest, BuildsBalancedSplitsFromOneFilePerClass) {
  TextCorpusOptions options;
  options.seq_len = 16;
  options.train_per_class = 5;
  options.eval_per_class = 3;
  const auto splits = BuildTextCorpus({Text("alpha", 'a', 400), Text("beta", 'A', 400)}, options);
  EXPECT_EQ(splits.train.class_names, (std::vector<std::string>{"alpha", "beta"}));
  EXPECT_EQ(splits.train.size(), 10);
  EXPECT_EQ(splits.eval.size(), 6);
  EXPECT_EQ(splits.train.sample_shape, (std::vector<int64_t>{16}));
  // Every window holds its class's letters only.
  for (int64_t i = 0; i < splits.train.size(); ++i) {
    const char base = splits.train.labels[i] == 0 ? 'a' : 'A';
    for (int64_t j = 0; j < 16; ++j) {
      const char c = static_cast<char>(splits.train.inputs[i * 16 + j]);
      EXPECT_TRUE(c >= base && c < base + 7) << "sample " << i;
    }
  }
}

TEST_F(TextCorpusTest, RefusesOneClassAndMissingOrShortFiles) {
  TextCorpusOptions options;
  options.seq_len = 64;
  EXPECT_THROW(BuildTextCorpus({Text("only", 'a', 1000)}, options), DataError);
  EXPECT_THROW(BuildTextCorpus({Text("x", 'a', 1000), dir_.File("absent")}, options), DataError);
  EXPECT_THROW(BuildTextCorpus({Text("y", 'a', 1000), Text("short", 'b', 70)}, options),
               DataError);
}

}  // namespace
}  // namespace slim::data
