// Horizontal bar charts written as PNG files, for reports that need a picture without a
// plotting stack.
#pragma once

#include <string>
#include <vector>

namespace slim::data {

// One bar of a horizontal bar chart: a text label and a value (may be negative or zero).
struct ChartBar {
  std::string label;
  double value;
};

// Layout of a chart, in pixels. Text is drawn at kChartTextScale times the 5×7 bitmap font.
// A chart of n bars is 2 × kChartMargin + (n + 1) × kChartRowHeight tall (the title takes the
// first row) and at least kChartMinWidth wide; it grows wider only when the labels and values
// leave the plot less than kChartMinPlotWidth.
constexpr int kChartTextScale = 2;
constexpr int kChartMargin = 16;
constexpr int kChartRowHeight = 28;
constexpr int kChartMinWidth = 900;
constexpr int kChartMinPlotWidth = 200;
// Labels longer than this many bytes are shortened by replacing their middle with "..".
constexpr int kChartMaxLabelLength = 40;

// Writes `bars` as a horizontal bar chart PNG (8-bit RGB) to `path`, top to bottom in the given
// order: a title line, then one row per bar: its label at the left, a bar whose length is
// proportional to its value, and the value printed after the bar with `value_format`.
// Positive bars are blue and extend rightward from a zero axis, negative ones red and leftward;
// the axis sits so that the bars together span the plot width (with no negative values the
// longest bar fills it). Non-finite values are printed but get no bar. A title too long for the
// image is shortened in the middle like a label. An existing file at `path` is replaced.
//
// REQUIRES: `value_format` is a printf format that consumes exactly one double, e.g. "%.2f".
// Throws DataError (a std::runtime_error) naming `path` when the file cannot be written; no
// partial file is left behind then.
void WriteBarChartPng(const std::string& path, const std::string& title,
                      const std::vector<ChartBar>& bars, const char* value_format = "%.2f");

}  // namespace slim::data
