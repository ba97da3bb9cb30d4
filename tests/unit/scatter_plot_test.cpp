#include "runtime/base/scatter_plot.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "runtime/base/errors.h"
#include "runtime/base/plot_drawing.h"
#include "tests/unit/plot_picture.h"
#include "tests/unit/temp_file.h"

namespace slim::plot {
namespace {

using testing::Columns;
using testing::Is;
using testing::kDark;
using testing::Picture;
using testing::PixelClass;
using testing::XmlText;

constexpr double kNan = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

// The core of the first label's markers (every point below that shares the label "m"); strict
// enough that no antialiased pixel of a label, drawn in a dark shade of the same blue, matches.
const PixelClass kMarkerBlue = [](const int p[3]) {
  return p[0] < 60 && p[1] > 95 && p[1] < 145 && p[2] > 160;
};
// The frame around each plot (mid grey).
const PixelClass kFrame = [](const int p[3]) {
  return p[0] == p[1] && p[1] == p[2] && p[0] > 85 && p[0] < 120;
};
// Anything drawn darker than the grid lines: text, ticks, the frame, markers.
const PixelClass kInk = [](const int p[3]) { return std::min({p[0], p[1], p[2]}) < 200; };

// A plot's frame: its left and right columns.
struct Frame {
  int left, right;
};

// Every plot's frame, left to right, from the runs of frame grey on the top frame line.
std::vector<Frame> Frames(const Picture& picture) {
  std::vector<Frame> frames;
  for (const int x : Columns(picture, ScatterPlotTop(), kFrame)) {
    if (frames.empty() || x != frames.back().right + 1) {
      frames.push_back({x, x});
    } else {
      frames.back().right = x;
    }
  }
  return frames;
}

// A marker found in a picture: the centroid of a connected set of marker pixels.
struct Marker {
  double x, y;
};

// The markers of kMarkerBlue between columns `left` and `right` (inclusive), left to right.
std::vector<Marker> Markers(const Picture& picture, int left, int right) {
  std::set<std::pair<int, int>> seen;
  std::vector<Marker> markers;
  for (int y = ScatterPlotTop(); y <= ScatterPlotBottom(); ++y) {
    for (int x = left; x <= right; ++x) {
      if (seen.count({x, y}) || !Is(picture, x, y, kMarkerBlue)) continue;
      // Flood fill of the marker's pixels.
      double sum_x = 0.0, sum_y = 0.0;
      int count = 0;
      std::vector<std::pair<int, int>> stack = {{x, y}};
      seen.insert({x, y});
      while (!stack.empty()) {
        const auto [px, py] = stack.back();
        stack.pop_back();
        sum_x += px;
        sum_y += py;
        ++count;
        for (const auto& [nx, ny] :
             {std::pair{px + 1, py}, {px - 1, py}, {px, py + 1}, {px, py - 1}}) {
          if (nx < left || nx > right || seen.count({nx, ny})) continue;
          if (!Is(picture, nx, ny, kMarkerBlue)) continue;
          seen.insert({nx, ny});
          stack.push_back({nx, ny});
        }
      }
      markers.push_back({sum_x / count, sum_y / count});
    }
  }
  std::sort(markers.begin(), markers.end(),
            [](const Marker& a, const Marker& b) { return a.x < b.x; });
  return markers;
}

// Whether any pixel of `pixel_class` lies in columns [left, right] and rows [top, bottom].
bool Any(const Picture& picture, int left, int right, int top, int bottom,
         const PixelClass& pixel_class) {
  for (int y = top; y <= bottom; ++y) {
    for (int x = left; x <= right; ++x) {
      if (Is(picture, x, y, pixel_class)) return true;
    }
  }
  return false;
}

// The columns of the tick marks under the plot from `frame`.
std::vector<int> XTicks(const Picture& picture, const Frame& frame) {
  std::vector<int> ticks;
  for (const int x : Columns(picture, ScatterPlotBottom() + 2, kDark)) {
    if (x >= frame.left && x <= frame.right) ticks.push_back(x);
  }
  return ticks;
}

// The rows of the vertical axis's tick marks, left of the first plot.
std::vector<int> YTicks(const Picture& picture, const Frame& first) {
  std::vector<int> ticks;
  for (int y = ScatterPlotTop(); y <= ScatterPlotBottom(); ++y) {
    if (Is(picture, first.left - 2, y, kDark)) ticks.push_back(y);
  }
  return ticks;
}

// Rows of the note under a plot's axis label.
constexpr int kNoteTop = ScatterPlotBottom() + kScatterAxisHeight + kScatterAxisLabelHeight;
constexpr int kNoteBottom = kNoteTop + kScatterNoteHeight - 1;

class ScatterPlotTest : public ::testing::Test {
 protected:
  // Writes `panels` as a PNG and reads it back.
  Picture Png(const std::vector<Panel>& panels, const std::string& title = "accuracy") {
    const std::string path = dir_.File("plot.png");
    WriteScatterPanels(path, title, "top-1 accuracy [%]", panels);
    return Picture(path);
  }
  // The text of the SVG of `panels`.
  std::string SvgText(const std::vector<Panel>& panels, const std::string& title = "accuracy") {
    const std::string path = dir_.File("plot.svg");
    WriteScatterPanels(path, title, "top-1 accuracy [%]", panels);
    return XmlText(path);
  }
  // The message of the OutputError that writing `panels` titled `title` to `path` throws ("" if
  // none).
  static std::string OutputErrorMessage(const std::string& path, const std::string& title,
                                        const std::vector<Panel>& panels) {
    try {
      WriteScatterPanels(path, title, "top-1", panels);
    } catch (const OutputError& error) {
      return error.what();
    }
    ADD_FAILURE() << "no OutputError for " << path;
    return "";
  }
  testing::TempDir dir_;
};

const Panel kLatencyPanel = {"latency at batch 1 [ms]",
                             {{"m", 0.4, 91.2}, {"m", 0.16, 90.7}, {"m", 0.08, 90.9}},
                             /*log_x=*/true};

TEST_F(ScatterPlotTest, PngHasTheFixedHeightAndOnePlotWidthPerPanel) {
  std::vector<int> widths;
  for (size_t count : {1, 2, 3}) {
    const Picture picture = Png(std::vector<Panel>(count, kLatencyPanel));
    EXPECT_EQ(picture.height(), ScatterFigureHeight()) << count;
    const std::vector<Frame> frames = Frames(picture);
    ASSERT_EQ(frames.size(), count);
    for (const Frame& frame : frames) {
      EXPECT_EQ(frame.right - frame.left, kScatterPlotWidth) << count;
      EXPECT_EQ(Markers(picture, frame.left, frame.right).size(), 3u) << count;
    }
    EXPECT_GE(picture.width(), frames.back().right + kScatterMargin);
    widths.push_back(picture.width());
  }
  EXPECT_EQ(widths[1] - widths[0], kScatterPlotWidth + kScatterPanelGap);
  EXPECT_EQ(widths[2] - widths[1], kScatterPlotWidth + kScatterPanelGap);
}

TEST_F(ScatterPlotTest, ALongTitleWidensThePlots) {
  const Picture picture = Png({kLatencyPanel, kLatencyPanel}, std::string(150, 'W'));
  const std::vector<Frame> frames = Frames(picture);
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_GT(frames[0].right - frames[0].left, kScatterPlotWidth);
  EXPECT_EQ(frames[0].right - frames[0].left, frames[1].right - frames[1].left);
}

TEST_F(ScatterPlotTest, MarkersSitAtTheirValuesOnLinearAxes) {
  const Picture picture = Png({{"x", {{"m", 1.0, 10.0}, {"m", 2.0, 20.0}, {"m", 4.0, 40.0}}}});
  const std::vector<Frame> frames = Frames(picture);
  ASSERT_EQ(frames.size(), 1u);
  const std::vector<Marker> markers = Markers(picture, frames[0].left, frames[0].right);
  ASSERT_EQ(markers.size(), 3u);
  EXPECT_NEAR((markers[2].x - markers[1].x) / (markers[1].x - markers[0].x), 2.0, 0.05);
  EXPECT_NEAR((markers[2].y - markers[1].y) / (markers[1].y - markers[0].y), 2.0, 0.05);
  EXPECT_LT(markers[2].y, markers[0].y) << "a larger y is higher up";
  // The data fills most of the plot, with a margin at each end.
  EXPECT_GT(markers[2].x - markers[0].x, kScatterPlotWidth * 0.8);
  EXPECT_GT(markers[0].x - frames[0].left, 5.0);
}

TEST_F(ScatterPlotTest, LinearAxesHaveEvenlySpacedTicksAtRoundValues) {
  // x and y from 0 to 5: ticks at 0, 1, ..., 5 on both axes, the outer ones at the outer points.
  const Picture picture = Png({{"x", {{"m", 0.0, 0.0}, {"m", 5.0, 5.0}, {"m", 2.2, 3.7}}}});
  const std::vector<Frame> frames = Frames(picture);
  ASSERT_EQ(frames.size(), 1u);
  const std::vector<Marker> markers = Markers(picture, frames[0].left, frames[0].right);
  ASSERT_EQ(markers.size(), 3u);
  const std::vector<int> x_ticks = XTicks(picture, frames[0]);
  const std::vector<int> y_ticks = YTicks(picture, frames[0]);
  for (const std::vector<int>* ticks : {&x_ticks, &y_ticks}) {
    ASSERT_EQ(ticks->size(), 6u);
    for (size_t i = 1; i < ticks->size(); ++i) {
      EXPECT_NEAR((*ticks)[i] - (*ticks)[i - 1], ((*ticks).back() - (*ticks).front()) / 5.0, 1);
    }
  }
  EXPECT_NEAR(x_ticks.front(), markers[0].x, 1.0);
  EXPECT_NEAR(x_ticks.back(), markers[2].x, 1.0);
  EXPECT_NEAR(y_ticks.back(), markers[0].y, 1.0) << "y = 0 is the lowest tick";
  EXPECT_NEAR(y_ticks.front(), markers[2].y, 1.0);
}

TEST_F(ScatterPlotTest, LogAxisSpacesPowersOfTenEvenlyWithTicksOnThem) {
  const std::vector<Point> points = {{"m", 1.0, 1.0}, {"m", 10.0, 2.0}, {"m", 100.0, 3.0}};
  const Picture picture = Png({{"log", points, /*log_x=*/true}, {"linear", points}});
  const std::vector<Frame> frames = Frames(picture);
  ASSERT_EQ(frames.size(), 2u);
  const std::vector<Marker> log = Markers(picture, frames[0].left, frames[0].right);
  const std::vector<Marker> linear = Markers(picture, frames[1].left, frames[1].right);
  ASSERT_EQ(log.size(), 3u);
  ASSERT_EQ(linear.size(), 3u);
  EXPECT_NEAR(log[1].x - log[0].x, log[2].x - log[1].x, 1.0);
  EXPECT_NEAR((linear[2].x - linear[1].x) / (linear[1].x - linear[0].x), 10.0, 0.3);
  const std::vector<int> ticks = XTicks(picture, frames[0]);
  ASSERT_EQ(ticks.size(), 3u) << "1, 10, 100";
  for (size_t i = 0; i < 3; ++i) EXPECT_NEAR(ticks[i], log[i].x, 1.0) << i;
}

TEST_F(ScatterPlotTest, LogAxisOverManyDecadesKeepsEvenlySpacedPowersOfTen) {
  // 0.001 to 3e6, 11 powers of ten on the padded axis: every 2nd, 0.01, 1, 100, 1e+04, 1e+06.
  const Picture picture = Png({{"size", {{"m", 0.001, 1.0}, {"m", 3e6, 2.0}}, true}});
  const std::vector<Frame> frames = Frames(picture);
  ASSERT_EQ(frames.size(), 1u);
  const std::vector<int> ticks = XTicks(picture, frames[0]);
  ASSERT_EQ(ticks.size(), 5u);
  for (size_t i = 1; i < ticks.size(); ++i) {
    EXPECT_NEAR(ticks[i] - ticks[i - 1], ticks[1] - ticks[0], 1) << i;
  }
}

TEST_F(ScatterPlotTest, LogAxisOverLessThanADecadeStillGetsSeveralTicks) {
  const Picture picture = Png({{"size", {{"m", 447.0, 1.0}, {"m", 1742.0, 2.0}}, true}});
  const std::vector<Frame> frames = Frames(picture);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_GE(XTicks(picture, frames[0]).size(), 3u);
}

TEST_F(ScatterPlotTest, PanelsShareTheVerticalAxisWithTicksOnlyLeftOfTheFirst) {
  const Picture picture = Png({{"latency", {{"m", 1.0, 90.9}, {"m", 3.0, 91.5}}},
                               {"size", {{"m", 500.0, 90.9}, {"m", 200.0, 90.1}}}});
  const std::vector<Frame> frames = Frames(picture);
  ASSERT_EQ(frames.size(), 2u);
  const std::vector<Marker> left = Markers(picture, frames[0].left, frames[0].right);
  const std::vector<Marker> right = Markers(picture, frames[1].left, frames[1].right);
  ASSERT_EQ(left.size(), 2u);
  ASSERT_EQ(right.size(), 2u);
  EXPECT_NEAR(left[0].y, right[1].y, 0.5) << "the same y is on the same row";
  EXPECT_LT(left[1].y, right[1].y);
  EXPECT_GT(right[0].y, right[1].y);
  EXPECT_FALSE(YTicks(picture, frames[0]).empty());
  EXPECT_TRUE(YTicks(picture, frames[1]).empty());
  EXPECT_FALSE(Any(picture, frames[0].right + 1, frames[1].left - 1, ScatterPlotTop(),
                   ScatterPlotBottom(), kInk))
      << "nothing between the plots";
}

TEST_F(ScatterPlotTest, LabelsStayInsideThePlot) {
  const std::string label = "a_rather_long_model_file_name.onnx";
  const Picture picture =
      Png({{"x", {{label, 10.0, 1.0}, {label + "2", 10.0, 5.0}, {label + "3", 0.0, 5.0}}}});
  const std::vector<Frame> frames = Frames(picture);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_FALSE(Any(picture, frames[0].right + 1, picture.width() - 1, ScatterPlotTop(),
                   ScatterPlotBottom(), kInk));
  // The labels are drawn: text near the right-hand points, left of them.
  EXPECT_TRUE(Any(picture, frames[0].right - 150, frames[0].right - 12, ScatterPlotTop() + 1,
                  ScatterPlotTop() + 40, kInk));
  EXPECT_TRUE(Any(picture, frames[0].right - 150, frames[0].right - 12, ScatterPlotBottom() - 40,
                  ScatterPlotBottom() - 1, kInk));
}

TEST_F(ScatterPlotTest, LabelsOfCoincidentPointsDoNotOverlap) {
  // Pixels of text in the plot, outside the marker in its middle (a single x and y value is
  // centred); overlapping labels would share some.
  const auto text_pixels = [&](const std::vector<Point>& points) {
    const Picture picture = Png({{"x", points}});
    const std::vector<Frame> frames = Frames(picture);
    EXPECT_EQ(frames.size(), 1u);
    if (frames.empty()) return 0;
    const int centre = (frames[0].left + frames[0].right) / 2;
    int count = 0;
    for (int y = ScatterPlotTop() + 1; y < ScatterPlotBottom(); ++y) {
      for (int x = frames[0].left + 1; x < frames[0].right; ++x) {
        count += std::abs(x - centre) > 8 && Is(picture, x, y, kInk);
      }
    }
    return count;
  };
  const int input_model = text_pixels({{"input model", 1.0, 91.2}});
  const int model_pt = text_pixels({{"model.pt", 1.0, 91.2}});
  const int both = text_pixels({{"input model", 1.0, 91.2}, {"model.pt", 1.0, 91.2}});
  EXPECT_GT(model_pt, 50);
  EXPECT_GT(both, 0.9 * (input_model + model_pt));
}

TEST_F(ScatterPlotTest, NonFinitePointsAreSkippedAndNamedAndTheRestDrawn) {
  const Panel linear = {
      "x",
      {{"m", 1.0, 1.0}, {"m", kNan, 2.0}, {"m", 2.0, kInf}, {"m", -kInf, 2.5}, {"m", 3.0, 3.0}}};
  const Panel log = {"log x", {{"m", 0.0, 1.0}, {"m", -1.0, 1.0}, {"m", 10.0, 2.0}}, true};
  const Panel complete = {"x", {{"m", 1.0, 1.0}, {"m", 2.0, 2.0}}};
  const Picture picture = Png({linear, log, complete});
  const std::vector<Frame> frames = Frames(picture);
  ASSERT_EQ(frames.size(), 3u);
  EXPECT_EQ(Markers(picture, frames[0].left, frames[0].right).size(), 2u);
  EXPECT_EQ(Markers(picture, frames[1].left, frames[1].right).size(), 1u);
  EXPECT_EQ(Markers(picture, frames[2].left, frames[2].right).size(), 2u);
  // The "not shown" note under the first two panels only.
  EXPECT_TRUE(Any(picture, frames[0].left, frames[0].right, kNoteTop, kNoteBottom, kDark));
  EXPECT_TRUE(Any(picture, frames[1].left, frames[1].right, kNoteTop, kNoteBottom, kDark));
  EXPECT_FALSE(Any(picture, frames[2].left, frames[2].right, kNoteTop, kNoteBottom, kInk));

  const std::string text =
      SvgText({{"x", {{"model.pt", 1.0, 91.2}, {"model.onnx", kNan, 90.9}}},
               {"size", {{"model.pt", 0.0, 91.2}, {"model.onnx", 447.0, 90.9}}, true}});
  for (const char* expected :
       {"model.pt: x = 1, y = 91.2\n", "model.onnx: x = nan, y = 90.9 (not shown)",
        "model.pt: x = 0, y = 91.2 (not shown)", "model.onnx: x = 447, y = 90.9",
        "x: size (log scale)"}) {
    EXPECT_NE(text.find(expected), std::string::npos) << expected << " in " << text;
  }
  EXPECT_EQ(text.find("x = 447, y = 90.9 (not shown)"), std::string::npos) << text;
}

TEST_F(ScatterPlotTest, APanelWithoutPointsShowsANoteAndTheOthersAreDrawn) {
  const Picture picture = Png({{"empty", {}},
                               {"all non-finite", {{"m", kNan, 1.0}}},
                               {"x", {{"m", 1.0, 1.0}, {"m", 2.0, 2.0}}}});
  const std::vector<Frame> frames = Frames(picture);
  ASSERT_EQ(frames.size(), 3u);
  constexpr int kMiddle = (ScatterPlotTop() + ScatterPlotBottom()) / 2;
  for (int i : {0, 1}) {
    const Frame& frame = frames[i];
    EXPECT_TRUE(Markers(picture, frame.left, frame.right).empty()) << i;
    EXPECT_TRUE(Any(picture, frame.left + 1, frame.right - 1, kMiddle - 4, kMiddle + 4, kDark))
        << "a note in the middle of plot " << i;
    EXPECT_TRUE(XTicks(picture, frame).empty()) << i;
  }
  EXPECT_FALSE(Any(picture, frames[0].left, frames[0].right, kNoteTop, kNoteBottom, kInk));
  EXPECT_TRUE(Any(picture, frames[1].left, frames[1].right, kNoteTop, kNoteBottom, kDark))
      << "the non-finite point is named";
  EXPECT_EQ(Markers(picture, frames[2].left, frames[2].right).size(), 2u);
  EXPECT_FALSE(XTicks(picture, frames[2]).empty());
  EXPECT_FALSE(YTicks(picture, frames[0]).empty()) << "the shared axis comes from plot 3";

  // With no drawable point at all there are no ticks, but still a picture.
  const Picture nothing = Png({{"empty", {}}, {"nan", {{"m", 1.0, kNan}}}});
  const std::vector<Frame> empty_frames = Frames(nothing);
  ASSERT_EQ(empty_frames.size(), 2u);
  EXPECT_TRUE(YTicks(nothing, empty_frames[0]).empty());
}

TEST_F(ScatterPlotTest, SvgIsWellFormedXmlWithTitlesAndPointsAsText) {
  const std::string text = SvgText(
      {{"latency at batch 1 [ms]",
        {{"input model", 0.41, 91.2}, {"model_int8.pt", 0.157, 90.7}},
        true},
       {"file size [KiB]", {{"input model", 1740.0, 91.2}, {"<odd> & label", 452.0, 90.7}}}},
      "accuracy <against> latency & size");
  for (const char* expected :
       {"accuracy <against> latency & size", "y: top-1 accuracy [%]",
        "x: latency at batch 1 [ms] (log scale)", "x: file size [KiB]\n",
        "input model: x = 0.41, y = 91.2", "model_int8.pt: x = 0.157, y = 90.7",
        "input model: x = 1740, y = 91.2", "<odd> & label: x = 452, y = 90.7"}) {
    EXPECT_NE(text.find(expected), std::string::npos) << expected << " in " << text;
  }
}

TEST_F(ScatterPlotTest, ExtensionChoosesTheFormatInAnyCase) {
  for (const char* name : {"plot.SVG", "plot.Png"}) {
    WriteScatterPanels(dir_.File(name), "title", "y", {kLatencyPanel});
  }
  EXPECT_EQ(testing::FileHead(dir_.File("plot.SVG"), 5), "<?xml");
  EXPECT_EQ(testing::FileHead(dir_.File("plot.Png"), 5), "\x89PNG\r");
}

TEST_F(ScatterPlotTest, UnwritablePathThrowsAnErrorNamingIt) {
  const std::string path = "/nonexistent-dir/plot.png";
  EXPECT_NE(OutputErrorMessage(path, "title", {kLatencyPanel}).find(path), std::string::npos);
}

TEST_F(ScatterPlotTest, BadExtensionEmptyTitleAndNoPanelsThrowErrorsNamingThePath) {
  for (const char* name : {"plot.pdf", "plot"}) {
    const std::string path = dir_.File(name);
    const std::string message = OutputErrorMessage(path, "title", {kLatencyPanel});
    EXPECT_NE(message.find(path), std::string::npos) << message;
    EXPECT_NE(message.find(".png"), std::string::npos) << "lists the valid ones: " << message;
  }
  const std::string png = dir_.File("plot.png");
  EXPECT_NE(OutputErrorMessage(png, "", {kLatencyPanel}).find(png), std::string::npos);
  EXPECT_NE(OutputErrorMessage(png, "title", {}).find(png), std::string::npos);
  EXPECT_FALSE(std::ifstream(png).good()) << "nothing written";
}

// The tick values shared by both plot writers (runtime/base/plot_drawing.h).
TEST(ScatterPlotTicksTest, NiceStepsAreOneTwoOrFiveTimesAPowerOfTen) {
  EXPECT_DOUBLE_EQ(drawing::NiceStep(10.0, 5.0), 2.0);
  EXPECT_DOUBLE_EQ(drawing::NiceStep(0.39, 4.0), 0.1);
  EXPECT_DOUBLE_EQ(drawing::NiceStep(1430.0, 3.0), 500.0);
  EXPECT_DOUBLE_EQ(drawing::NiceStep(0.0021, 6.0), 0.0005);
  EXPECT_DOUBLE_EQ(drawing::NiceStep(8.0, 1.0), 10.0);
}

TEST(ScatterPlotTicksTest, TicksWithinStayInsideAndTicksSpanningReachOutside) {
  const drawing::Ticks within = drawing::TicksWithin(0.93, 2.07, 5.0);  // step 0.2
  EXPECT_DOUBLE_EQ(within.step, 0.2);
  EXPECT_NEAR(within.low(), 1.0, 1e-12);
  EXPECT_NEAR(within.high(), 2.0, 1e-12);
  const drawing::Ticks spanning = drawing::TicksSpanning(0.93, 2.07, 5.0);
  EXPECT_NEAR(spanning.low(), 0.8, 1e-12);
  EXPECT_NEAR(spanning.high(), 2.2, 1e-12);
  // Values on a tick up to rounding add or lose none.
  const drawing::Ticks exact = drawing::TicksWithin(0.1 * 3, 0.7, 4.0);  // 0.30000000000000004
  EXPECT_NEAR(exact.low(), 0.3, 1e-12);
  EXPECT_NEAR(exact.high(), 0.7, 1e-12);
  EXPECT_EQ(drawing::TicksSpanning(0.0, 5.0, 6.0).last, 5);
}

}  // namespace
}  // namespace slim::plot
