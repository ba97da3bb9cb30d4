// Horizontal bar charts written as PNG or SVG files through Cairo, for reports that need a
// picture of one number per item (e.g. the accuracy drop per quantized layer).
#pragma once

#include <string>
#include <vector>

namespace slim::plot {

// One bar: a text label (e.g. a module path such as "layer3.2.conv2") and a value, which may be
// negative, zero or non-finite.
struct Bar {
  std::string label;
  double value;
};

// Vertical layout, in pixels (the SVG uses px units too). Below the top margin comes the title,
// then one row per bar, then the horizontal axis with its tick labels, then the bottom margin. A
// chart is kBarChartMinWidth wide unless its title needs more, or its labels and values would
// leave the plot less than kBarChartMinPlotWidth.
constexpr int kBarChartMargin = 16;
constexpr int kBarChartTitleHeight = 32;
constexpr int kBarChartRowHeight = 24;
constexpr int kBarChartAxisHeight = 32;
constexpr int kBarChartMinWidth = 800;
constexpr int kBarChartMinPlotWidth = 240;
// Labels longer than this many bytes are shortened by replacing their middle with "...".
constexpr int kBarChartMaxLabelLength = 48;

// Top edge of the row of bar `index` (0 for the first bar).
constexpr int BarChartRowTop(int index) {
  return kBarChartMargin + kBarChartTitleHeight + index * kBarChartRowHeight;
}
// Height of a chart of `bar_count` bars.
constexpr int BarChartHeight(int bar_count) {
  return BarChartRowTop(bar_count) + kBarChartAxisHeight + kBarChartMargin;
}

// Writes `bars` as a horizontal bar chart to `path`, in the format its extension names (".png"
// or ".svg", any case), replacing any existing file atomically (files::WriteAtomically). Top to
// bottom in the given order: the title, then one row per bar with its label at the left, a bar
// from the zero line whose length is proportional to its value (positive: blue, rightward;
// negative: red, leftward) and the value, to 4 significant digits, at the bar's outer end; then
// an axis with ticks at round values spanning all values and zero, with a vertical grid line
// per tick. Non-finite values are printed but get no bar. Text is drawn with Cairo's
// "sans-serif" font (fontconfig must find one). An SVG also carries the title and every
// "label: value" as text, in its <title> and <desc> elements, so that it can be searched.
//
// Throws OutputError naming `path` when the title is empty, the extension is neither .png nor
// .svg, Cairo cannot draw the chart (a PNG is limited to 32767 pixels each way, i.e. about 1360
// bars; text must be UTF-8) or the file cannot be written.
// Thread safety: safe to call concurrently for different paths.
void WriteBarChart(const std::string& path, const std::string& title, const std::vector<Bar>& bars);

}  // namespace slim::plot
