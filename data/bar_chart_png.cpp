#include "data/bar_chart_png.h"

#include <png.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "data/bitmap_font.h"
#include "data/rgb_canvas.h"
#include "runtime/errors.h"

namespace slim::data {
namespace {

constexpr Rgb kBackground = {1.0, 1.0, 1.0};
constexpr Rgb kTextColour = {0.13, 0.13, 0.13};
constexpr Rgb kPositiveBarColour = {0.22, 0.42, 0.80};
constexpr Rgb kNegativeBarColour = {0.84, 0.24, 0.20};
constexpr Rgb kAxisColour = {0.82, 0.82, 0.82};

// Space between the label column, the plot and the value text; bar thickness; text placement
// that centres a line of text vertically in its row.
constexpr int kGap = 8;
constexpr int kBarThickness = 16;
constexpr int kTextTopInRow = (kChartRowHeight - kTextLineHeight * kChartTextScale) / 2;

// `text` itself if it has at most `max_length` bytes, else its start and end joined by "..",
// max_length bytes in all. REQUIRES: max_length >= 2.
std::string ElideMiddle(const std::string& text, int max_length) {
  if (static_cast<int>(text.size()) <= max_length) return text;
  const int head = (max_length - 1) / 2;
  const int tail = max_length - 2 - head;
  return text.substr(0, head) + ".." + text.substr(text.size() - tail);
}

// `value` printed with the printf `format`; empty if the format produces nothing.
std::string FormatValue(const char* format, double value) {
  const int length = std::snprintf(nullptr, 0, format, value);
  if (length <= 0) return "";
  std::vector<char> text(length + 1);
  std::snprintf(text.data(), text.size(), format, value);
  return std::string(text.data(), length);
}

// The value a bar is drawn for: non-finite values get no bar.
double BarValue(const ChartBar& bar) { return std::isfinite(bar.value) ? bar.value : 0.0; }

// Paints `box`, clipped to the canvas, in `colour`.
void FillBox(RgbCanvas& canvas, PixelBox box, const Rgb& colour) {
  canvas.Blend([](double, double) { return true; }, colour, 1.0, box);
}

// Pixel positions in a chart, which follow from the widths of its text and the range of its values.
struct ChartLayout {
  int width, height;
  int plot_left, plot_width;
  int axis_x;              // first column right of the zero axis
  double pixels_per_unit;  // bar length per unit of value
};

// Lays out `bars`, whose label and value text are `labels` and `values` (one per bar).
ChartLayout LayOut(const std::vector<ChartBar>& bars, const std::vector<std::string>& labels,
                   const std::vector<std::string>& values) {
  int label_width = 0, value_width = 0;
  double max_positive = 0.0, max_negative = 0.0;
  for (size_t i = 0; i < bars.size(); ++i) {
    label_width = std::max(label_width, TextWidth(labels[i], kChartTextScale));
    value_width = std::max(value_width, TextWidth(values[i], kChartTextScale));
    max_positive = std::max(max_positive, BarValue(bars[i]));
    max_negative = std::max(max_negative, -BarValue(bars[i]));
  }
  ChartLayout layout;
  layout.plot_left = kChartMargin + label_width + kGap;
  const int right_of_plot = kGap + value_width + kChartMargin;
  layout.plot_width =
      std::max(kChartMinPlotWidth, kChartMinWidth - layout.plot_left - right_of_plot);
  layout.width = layout.plot_left + layout.plot_width + right_of_plot;
  layout.height = 2 * kChartMargin + (static_cast<int>(bars.size()) + 1) * kChartRowHeight;
  const double span = max_positive + max_negative;
  layout.pixels_per_unit = span > 0.0 ? layout.plot_width / span : 0.0;
  layout.axis_x =
      layout.plot_left + static_cast<int>(std::lround(max_negative * layout.pixels_per_unit));
  return layout;
}

// Writes `canvas` as an 8-bit RGB PNG. libpng's simplified writer closes the file on every
// path and removes it after a failed write.
void WritePng(const std::string& path, const RgbCanvas& canvas) {
  const size_t pixels = static_cast<size_t>(canvas.height()) * canvas.width();
  std::vector<uint8_t> planar(3 * pixels);
  canvas.WriteBytes(planar.data());
  std::vector<uint8_t> interleaved(3 * pixels);
  for (size_t i = 0; i < pixels; ++i) {
    for (size_t c = 0; c < 3; ++c) interleaved[3 * i + c] = planar[c * pixels + i];
  }
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  image.width = canvas.width();
  image.height = canvas.height();
  image.format = PNG_FORMAT_RGB;
  if (!png_image_write_to_file(&image, path.c_str(), 0, interleaved.data(), 0, nullptr)) {
    throw DataError("cannot write bar chart PNG " + path + ": " + image.message);
  }
}

}  // namespace

void WriteBarChartPng(const std::string& path, const std::string& title,
                      const std::vector<ChartBar>& bars, const char* value_format) {
  std::vector<std::string> labels, values;
  for (const ChartBar& bar : bars) {
    labels.push_back(ElideMiddle(bar.label, kChartMaxLabelLength));
    values.push_back(FormatValue(value_format, bar.value));
  }
  const ChartLayout layout = LayOut(bars, labels, values);

  RgbCanvas canvas(layout.height, layout.width);
  FillBox(canvas, {0, 0, layout.width, layout.height}, kBackground);
  const int title_length = (layout.width - 2 * kChartMargin) / (kGlyphAdvance * kChartTextScale);
  DrawText(canvas, kChartMargin, kChartMargin + kTextTopInRow, ElideMiddle(title, title_length),
           kTextColour, kChartTextScale);

  const int rows_top = kChartMargin + kChartRowHeight;
  const int rows_bottom = layout.height - kChartMargin;
  FillBox(canvas, {layout.axis_x - 1, rows_top, layout.axis_x, rows_bottom}, kAxisColour);
  for (size_t i = 0; i < bars.size(); ++i) {
    const int row_top = rows_top + static_cast<int>(i) * kChartRowHeight;
    const double value = BarValue(bars[i]);
    const int length = static_cast<int>(std::lround(std::abs(value) * layout.pixels_per_unit));
    const int bar_left = value < 0.0 ? layout.axis_x - length : layout.axis_x;
    const int bar_top = row_top + (kChartRowHeight - kBarThickness) / 2;
    FillBox(canvas, {bar_left, bar_top, bar_left + length, bar_top + kBarThickness},
            value < 0.0 ? kNegativeBarColour : kPositiveBarColour);
    const int text_top = row_top + kTextTopInRow;
    DrawText(canvas, kChartMargin, text_top, labels[i], kTextColour, kChartTextScale);
    // The bar's right end is the axis for a negative value, so the value never overlaps it.
    DrawText(canvas, bar_left + length + kGap, text_top, values[i], kTextColour, kChartTextScale);
  }
  WritePng(path, canvas);
}

}  // namespace slim::data
