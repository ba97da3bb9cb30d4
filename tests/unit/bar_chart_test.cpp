#include "runtime/base/bar_chart.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <string>
#include <vector>

#include "runtime/base/errors.h"
#include "tests/unit/plot_picture.h"
#include "tests/unit/temp_file.h"

namespace slim::plot {
namespace {

using testing::Columns;
using testing::kDark;
using testing::Picture;
using testing::PixelClass;
using testing::XmlText;

const PixelClass kBlue = [](const int p[3]) { return p[2] > 150 && p[0] < 120; };
const PixelClass kRed = [](const int p[3]) { return p[0] > 150 && p[1] < 120 && p[2] < 120; };

// The scanline through the middle of the bar in row `index`.
int BarCentreY(int index) { return BarChartRowTop(index) + kBarChartRowHeight / 2; }

// The x of every column that has a pixel of `pixel_class` in row `index`, left to right.
std::vector<int> RowColumns(const Picture& picture, int index, const PixelClass& pixel_class) {
  std::vector<int> columns;
  for (int y = BarChartRowTop(index); y < BarChartRowTop(index + 1); ++y) {
    const std::vector<int> line = Columns(picture, y, pixel_class);
    columns.insert(columns.end(), line.begin(), line.end());
  }
  std::sort(columns.begin(), columns.end());
  columns.erase(std::unique(columns.begin(), columns.end()), columns.end());
  return columns;
}

class BarChartTest : public ::testing::Test {
 protected:
  // Writes `bars` as a PNG and reads it back.
  Picture Png(const std::vector<Bar>& bars) {
    const std::string path = dir_.File("chart.png");
    WriteBarChart(path, "top-1 drop (points) with only this layer quantized", bars);
    return Picture(path);
  }
  // The message of the OutputError that writing a chart titled `title` to `path` throws ("" if
  // none).
  static std::string OutputErrorMessage(const std::string& path, const std::string& title) {
    try {
      WriteBarChart(path, title, {{"layer1.0.conv1", 1.0}});
    } catch (const OutputError& error) {
      return error.what();
    }
    ADD_FAILURE() << "no OutputError for " << path;
    return "";
  }
  testing::TempDir dir_;
};

TEST_F(BarChartTest, PngHasOneRowPerBarBetweenTitleAndAxis) {
  int previous_height = 0;
  for (int count : {1, 3, 20}) {
    const Picture picture = Png(std::vector<Bar>(count, {"layer3.2.conv2", 1.0}));
    EXPECT_EQ(picture.height(), BarChartHeight(count)) << count;
    EXPECT_GT(picture.height(), previous_height) << count;
    EXPECT_EQ(picture.width(), kBarChartMinWidth) << count;
    previous_height = picture.height();
  }
}

TEST_F(BarChartTest, PngGrowsWiderForATitleLongerThanTheMinimumWidth) {
  const std::string path = dir_.File("wide.png");
  WriteBarChart(path, std::string(200, 'W'), {{"fc", 1.0}});
  EXPECT_GT(Picture(path).width(), kBarChartMinWidth);
}

TEST_F(BarChartTest, BarLengthIsProportionalToValue) {
  const Picture picture = Png({{"layer1.0.conv1", 4.0}, {"layer2.0.conv1", 2.0}, {"fc", 1.0}});
  const std::vector<int> four = Columns(picture, BarCentreY(0), kBlue);
  const std::vector<int> two = Columns(picture, BarCentreY(1), kBlue);
  const std::vector<int> one = Columns(picture, BarCentreY(2), kBlue);
  ASSERT_FALSE(one.empty());
  EXPECT_NEAR(static_cast<double>(four.size()) / two.size(), 2.0, 0.02);
  EXPECT_NEAR(static_cast<double>(two.size()) / one.size(), 2.0, 0.02);
  // All start at the zero line; the largest reaches furthest.
  EXPECT_EQ(four.front(), one.front());
  EXPECT_GT(four.back(), two.back());
  EXPECT_GT(two.back(), one.back());
  EXPECT_GE(four.size(), static_cast<size_t>(kBarChartMinPlotWidth) * 9 / 10);
}

TEST_F(BarChartTest, NegativeValuesAreRedAndLeftOfTheZeroLine) {
  const Picture picture =
      Png({{"layer3.2.conv2", 3.0}, {"layer4.0.downsample.0", -1.5}, {"fc", 0.0}});
  const std::vector<int> gain = Columns(picture, BarCentreY(0), kBlue);
  const std::vector<int> loss = Columns(picture, BarCentreY(1), kRed);
  ASSERT_FALSE(gain.empty());
  ASSERT_FALSE(loss.empty());
  EXPECT_LT(loss.back(), gain.front());
  EXPECT_NEAR(static_cast<double>(gain.size()) / loss.size(), 2.0, 0.03);
  EXPECT_TRUE(Columns(picture, BarCentreY(0), kRed).empty());
  EXPECT_TRUE(Columns(picture, BarCentreY(1), kBlue).empty());
  EXPECT_TRUE(Columns(picture, BarCentreY(2), kBlue).empty()) << "a zero value has no bar";
  EXPECT_TRUE(Columns(picture, BarCentreY(2), kRed).empty()) << "a zero value has no bar";
}

TEST_F(BarChartTest, LabelsAreLeftOfThePlotAndValuesAtTheBarsOuterEnds) {
  const Picture picture = Png({{"layer3.2.conv2", 3.0}, {"fc", -1.5}});
  const std::vector<int> gain = Columns(picture, BarCentreY(0), kBlue);
  const std::vector<int> loss = Columns(picture, BarCentreY(1), kRed);
  const std::vector<int> gain_text = RowColumns(picture, 0, kDark);
  const std::vector<int> loss_text = RowColumns(picture, 1, kDark);
  ASSERT_FALSE(gain.empty() || loss.empty() || gain_text.empty() || loss_text.empty());
  EXPECT_GE(gain_text.front(), kBarChartMargin);
  EXPECT_GE(loss_text.front(), kBarChartMargin);
  EXPECT_LT(gain_text.front(), loss.front()) << "the label precedes the plot";
  EXPECT_GT(gain_text.back(), gain.back()) << "a positive value follows its bar";
  const auto near_loss_start = [&](int x) { return x < loss.front() && x >= loss.front() - 12; };
  EXPECT_TRUE(std::any_of(loss_text.begin(), loss_text.end(), near_loss_start))
      << "a negative value precedes its bar";
}

TEST_F(BarChartTest, AxisHasEvenlySpacedTicksFromZeroToTheLargestValue) {
  // Values 0..5 get ticks at 0, 1, 2, 3, 4, 5: the first at the bars' start, the last at the end
  // of the longest bar.
  const Picture picture = Png({{"layer1.0.conv1", 5.0}, {"fc", 1.0}});
  const std::vector<int> bar = Columns(picture, BarCentreY(0), kBlue);
  const std::vector<int> ticks = Columns(picture, BarChartRowTop(2) + 2, kDark);
  ASSERT_EQ(ticks.size(), 6u);
  EXPECT_NEAR(ticks.front(), bar.front(), 1);
  EXPECT_NEAR(ticks.back(), bar.back(), 1);
  for (size_t i = 1; i < ticks.size(); ++i) {
    EXPECT_NEAR(ticks[i] - ticks[i - 1], (ticks.back() - ticks.front()) / 5.0, 1) << i;
  }
}

TEST_F(BarChartTest, SvgIsWellFormedXmlWithTheTitleAndLabelsAsText) {
  const std::string path = dir_.File("chart.svg");
  WriteBarChart(path, "drop <points> & more",
                {{"layer3.2.conv2", 0.25}, {"layer4.0.downsample.0", -1.5}, {"fc", 0.0}});
  const std::string text = XmlText(path);
  for (const char* expected :
       {"drop <points> & more", "layer3.2.conv2: 0.25", "layer4.0.downsample.0: -1.5", "fc: 0"}) {
    EXPECT_NE(text.find(expected), std::string::npos) << expected << " in " << text;
  }
}

TEST_F(BarChartTest, ExtensionChoosesTheFormatInAnyCase) {
  const auto head = [&](const std::string& name) {
    WriteBarChart(dir_.File(name), "title", {{"fc", 1.0}});
    std::ifstream file(dir_.File(name), std::ios::binary);
    std::string bytes(5, '\0');
    file.read(&bytes[0], 5);
    return bytes;
  };
  EXPECT_EQ(head("chart.SVG"), "<?xml");
  EXPECT_EQ(head("chart.Png"), "\x89PNG\r");
}

TEST_F(BarChartTest, LongLabelsAreShortenedInTheMiddle) {
  const std::string path = dir_.File("chart.svg");
  const std::string label = "encoder.layers.11.self_attention.output_projection.linear";
  ASSERT_GT(label.size(), static_cast<size_t>(kBarChartMaxLabelLength));
  WriteBarChart(path, "title", {{label, 1.0}});
  const std::string text = XmlText(path);
  EXPECT_EQ(text.find(label), std::string::npos);
  EXPECT_NE(text.find("encoder.layers.11.self...utput_projection.linear"), std::string::npos)
      << text;
}

TEST_F(BarChartTest, UnwritablePathThrowsAnErrorNamingIt) {
  const std::string path = "/nonexistent-dir/chart.png";
  EXPECT_NE(OutputErrorMessage(path, "title").find(path), std::string::npos);
}

TEST_F(BarChartTest, UnknownExtensionAndEmptyTitleThrowErrorsNamingThePath) {
  const std::string pdf = dir_.File("chart.pdf");
  const std::string message = OutputErrorMessage(pdf, "title");
  EXPECT_NE(message.find(pdf), std::string::npos) << message;
  EXPECT_NE(message.find(".png"), std::string::npos) << "lists the valid ones: " << message;
  const std::string png = dir_.File("chart.png");
  EXPECT_NE(OutputErrorMessage(png, "").find(png), std::string::npos);
}

}  // namespace
}  // namespace slim::plot
