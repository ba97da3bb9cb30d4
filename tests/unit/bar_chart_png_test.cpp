#include "data/bar_chart_png.h"

#include <gtest/gtest.h>
#include <png.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "data/bitmap_font.h"
#include "tests/unit/temp_file.h"

namespace slim::data {
namespace {

// An 8-bit RGB image read back from a PNG file.
struct Picture {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;  // HWC

  const uint8_t* At(int x, int y) const { return &rgb[3 * (static_cast<size_t>(y) * width + x)]; }
};

Picture ReadPng(const std::string& path) {
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_file(&image, path.c_str())) {
    throw std::runtime_error("cannot read " + path + ": " + image.message);
  }
  image.format = PNG_FORMAT_RGB;
  Picture picture;
  picture.width = image.width;
  picture.height = image.height;
  picture.rgb.resize(PNG_IMAGE_SIZE(image));
  if (!png_image_finish_read(&image, nullptr, picture.rgb.data(), 0, nullptr)) {
    throw std::runtime_error("cannot decode " + path + ": " + image.message);
  }
  return picture;
}

// Pixel classes, loose enough not to depend on the exact shades.
bool IsPositiveBar(const uint8_t* p) { return p[2] > 150 && p[0] < 120; }
bool IsNegativeBar(const uint8_t* p) { return p[0] > 150 && p[1] < 120 && p[2] < 120; }
bool IsText(const uint8_t* p) { return p[0] < 80 && p[1] < 80 && p[2] < 80; }

// Top pixel row of the row of bar `index` (the title takes the row above the first bar).
int BarRowTop(int index) { return kChartMargin + (index + 1) * kChartRowHeight; }

// The x of every pixel in the row of bar `index` that satisfies `is_class`.
std::vector<int> BarRowPixelXs(const Picture& picture, int index,
                               const std::function<bool(const uint8_t*)>& is_class) {
  std::vector<int> columns;
  for (int y = BarRowTop(index); y < BarRowTop(index + 1); ++y) {
    for (int x = 0; x < picture.width; ++x) {
      if (is_class(picture.At(x, y))) columns.push_back(x);
    }
  }
  return columns;
}

// The smallest and largest x in `columns`. REQUIRES: not empty.
int Leftmost(const std::vector<int>& columns) {
  return *std::min_element(columns.begin(), columns.end());
}
int Rightmost(const std::vector<int>& columns) {
  return *std::max_element(columns.begin(), columns.end());
}

class BarChartPngTest : public ::testing::Test {
 protected:
  Picture Chart(const std::vector<ChartBar>& bars) {
    const std::string path = dir_.File("chart.png");
    WriteBarChartPng(path, "Step time (ms) per strategy", bars);
    return ReadPng(path);
  }
  testing::TempDir dir_;
};

TEST_F(BarChartPngTest, HeightHasOneRowPerBarBelowTheTitle) {
  for (int count : {1, 3, 7}) {
    const Picture picture = Chart(std::vector<ChartBar>(count, {"ddp", 1.0}));
    EXPECT_EQ(picture.height, 2 * kChartMargin + (count + 1) * kChartRowHeight) << count;
    EXPECT_EQ(picture.width, kChartMinWidth) << count;
  }
}

TEST_F(BarChartPngTest, BarLengthIsProportionalToValue) {
  const Picture picture = Chart({{"fsdp", 4.0}, {"ddp", 2.0}, {"zero1", 1.0}});
  const std::vector<int> largest = BarRowPixelXs(picture, 0, IsPositiveBar);
  const std::vector<int> half = BarRowPixelXs(picture, 1, IsPositiveBar);
  const std::vector<int> quarter = BarRowPixelXs(picture, 2, IsPositiveBar);
  ASSERT_FALSE(largest.empty());
  ASSERT_FALSE(quarter.empty());
  EXPECT_NEAR(static_cast<double>(largest.size()) / half.size(), 2.0, 0.02);
  EXPECT_NEAR(static_cast<double>(half.size()) / quarter.size(), 2.0, 0.02);
  // All bars start at the zero axis, and with no negative values the longest fills the plot.
  EXPECT_EQ(Leftmost(largest), Leftmost(quarter));
  EXPECT_GE(Rightmost(largest) - Leftmost(largest) + 1, kChartMinPlotWidth);
}

TEST_F(BarChartPngTest, NegativeValuesAreRedAndLeftOfTheAxis) {
  const Picture picture = Chart({{"gain", 3.0}, {"loss", -1.5}, {"flat", 0.0}});
  const std::vector<int> gain = BarRowPixelXs(picture, 0, IsPositiveBar);
  const std::vector<int> loss = BarRowPixelXs(picture, 1, IsNegativeBar);
  ASSERT_FALSE(gain.empty());
  ASSERT_FALSE(loss.empty());
  EXPECT_LT(Rightmost(loss), Leftmost(gain));
  EXPECT_NEAR(static_cast<double>(gain.size()) / loss.size(), 2.0, 0.02);
  EXPECT_TRUE(BarRowPixelXs(picture, 0, IsNegativeBar).empty());
  EXPECT_TRUE(BarRowPixelXs(picture, 1, IsPositiveBar).empty());
  EXPECT_TRUE(BarRowPixelXs(picture, 2, IsPositiveBar).empty());
  EXPECT_TRUE(BarRowPixelXs(picture, 2, IsNegativeBar).empty());
}

TEST_F(BarChartPngTest, LabelsAreDrawnLeftOfTheBarsAndValuesRightOfThem) {
  const Picture picture = Chart({{"gain", 3.0}, {"loss", -1.5}});
  const std::vector<int> loss = BarRowPixelXs(picture, 1, IsNegativeBar);
  ASSERT_FALSE(loss.empty());
  const int plot_left = Leftmost(loss);
  for (int index : {0, 1}) {
    const std::vector<int> text = BarRowPixelXs(picture, index, IsText);
    ASSERT_FALSE(text.empty()) << index;
    EXPECT_GE(Leftmost(text), kChartMargin) << index;
    const int label_pixels =
        std::count_if(text.begin(), text.end(), [&](int x) { return x < plot_left; });
    EXPECT_GT(label_pixels, 0) << index;
    EXPECT_GT(Rightmost(text), plot_left) << "the value follows the bar in row " << index;
  }
}

TEST_F(BarChartPngTest, LongLabelsAreShortenedToTheMaximumLength) {
  const Picture picture = Chart({{std::string(3 * kChartMaxLabelLength, 'x'), 1.0}});
  const std::vector<int> bar = BarRowPixelXs(picture, 0, IsPositiveBar);
  ASSERT_FALSE(bar.empty());
  const int plot_left = Leftmost(bar);
  const auto column_end = [](int length) {
    return kChartMargin + TextWidth(std::string(length, 'x'), kChartTextScale);
  };
  EXPECT_GE(plot_left, column_end(kChartMaxLabelLength));
  EXPECT_LT(plot_left, column_end(kChartMaxLabelLength + 1));
}

TEST_F(BarChartPngTest, UnwritablePathThrowsAnErrorNamingIt) {
  const std::string path = "/nonexistent-dir/chart.png";
  try {
    WriteBarChartPng(path, "title", {{"a", 1.0}});
    FAIL() << "expected std::runtime_error";
  } catch (const std::runtime_error& error) {
    EXPECT_NE(std::string(error.what()).find(path), std::string::npos) << error.what();
  }
}

}  // namespace
}  // namespace slim::data
