#include "runtime/base/bar_chart.h"

#include <cairo.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "runtime/base/errors.h"
#include "runtime/base/output_file.h"
#include "runtime/base/plot_drawing.h"

namespace slim::plot {
namespace {

using drawing::Align;
using drawing::Colour;
using drawing::DrawText;
using drawing::kBackground;
using drawing::kGridColour;
using drawing::kTextColour;
using drawing::kTextFontSize;
using drawing::kTitleFontSize;
using drawing::SetColour;
using drawing::TextWidth;
using drawing::UseFont;
using drawing::VerticalLine;

constexpr Colour kPositiveBarColour = {0.22, 0.42, 0.80};
constexpr Colour kNegativeBarColour = {0.84, 0.24, 0.20};
constexpr Colour kZeroLineColour = {0.40, 0.40, 0.40};
constexpr const char* kWhat = "bar chart";

// Space between the label column, the plot and the value text; bar thickness; tick length;
// how many tick intervals the axis aims for (it gets 4 to 9).
constexpr double kGap = 8.0;
constexpr double kBarThickness = 14.0;
constexpr double kTickLength = 4.0;
constexpr double kTargetTickIntervals = 6.0;

// The axis: ticks at round values (drawing::Ticks) spanning zero and every finite value.
drawing::Ticks AxisFor(const std::vector<Bar>& bars) {
  double low = 0.0, high = 0.0;
  for (const Bar& bar : bars) {
    if (!std::isfinite(bar.value)) continue;
    low = std::min(low, bar.value);
    high = std::max(high, bar.value);
  }
  if (low == high) high = 1.0;  // no bar has a length
  return drawing::TicksSpanning(low, high, kTargetTickIntervals);
}

// What is drawn where: the texts as shown, the chart size and the plot's place.
struct ChartLayout {
  std::string title;
  std::vector<std::string> labels, values;  // one per bar
  drawing::Ticks axis;
  std::vector<std::string> tick_labels;  // one per tick, first to last
  int width, height;
  double plot_left, plot_width;

  // The x coordinate of `value` on the axis.
  double X(double value) const {
    return plot_left + (value - axis.low()) / (axis.high() - axis.low()) * plot_width;
  }
};

// Lays out the chart, measuring text on a scratch surface.
ChartLayout LayOut(const std::string& title, const std::vector<Bar>& bars) {
  ChartLayout layout;
  layout.title = title;
  layout.axis = AxisFor(bars);
  for (long k = layout.axis.first; k <= layout.axis.last; ++k) {
    layout.tick_labels.push_back(fmt::format("{:g}", k * layout.axis.step));
  }
  const drawing::Context cr = drawing::ScratchContext();
  UseFont(cr.get(), kTextFontSize, CAIRO_FONT_WEIGHT_NORMAL);
  double label_width = 0.0, left_value_width = 0.0, right_value_width = 0.0;
  for (const Bar& bar : bars) {
    layout.labels.push_back(drawing::ElideMiddle(bar.label, kBarChartMaxLabelLength));
    layout.values.push_back(fmt::format("{:.4g}", bar.value));
    label_width = std::max(label_width, TextWidth(cr.get(), layout.labels.back()));
    double& value_width = bar.value < 0.0 ? left_value_width : right_value_width;
    value_width = std::max(value_width, TextWidth(cr.get(), layout.values.back()));
  }
  // Room for the values beside the plot, and for half of the outer tick labels.
  const auto pad = [](double text_width) { return text_width > 0.0 ? text_width + kGap : 0.0; };
  const double half_first_tick = TextWidth(cr.get(), layout.tick_labels.front()) / 2;
  const double half_last_tick = TextWidth(cr.get(), layout.tick_labels.back()) / 2;
  layout.plot_left =
      kBarChartMargin + std::max(pad(label_width) + pad(left_value_width), half_first_tick);
  const double right_of_plot = std::max(pad(right_value_width), half_last_tick) + kBarChartMargin;
  UseFont(cr.get(), kTitleFontSize, CAIRO_FONT_WEIGHT_BOLD);
  const double title_width = TextWidth(cr.get(), title) + 2 * kBarChartMargin;
  layout.width = static_cast<int>(
      std::ceil(std::max({static_cast<double>(kBarChartMinWidth),
                          layout.plot_left + kBarChartMinPlotWidth + right_of_plot, title_width})));
  layout.plot_width = layout.width - layout.plot_left - right_of_plot;
  layout.height = BarChartHeight(static_cast<int>(bars.size()));
  return layout;
}

// Draws the whole chart onto `cr`, whose surface is layout.width × layout.height.
void DrawChart(cairo_t* cr, const ChartLayout& layout, const std::vector<Bar>& bars) {
  SetColour(cr, kBackground);
  cairo_paint(cr);
  SetColour(cr, kTextColour);
  UseFont(cr, kTitleFontSize, CAIRO_FONT_WEIGHT_BOLD);
  DrawText(cr, kBarChartMargin, kBarChartMargin + kBarChartTitleHeight / 2.0, layout.title,
           Align::kLeft);

  UseFont(cr, kTextFontSize, CAIRO_FONT_WEIGHT_NORMAL);
  const double rows_top = BarChartRowTop(0);
  const double rows_bottom = BarChartRowTop(static_cast<int>(bars.size()));
  const double tick_label_centre = rows_bottom + kTickLength + kBarChartAxisHeight / 2.0;
  for (long k = layout.axis.first; k <= layout.axis.last; ++k) {
    const double x = layout.X(k * layout.axis.step);
    VerticalLine(cr, x, rows_top, rows_bottom, kGridColour);
    VerticalLine(cr, x, rows_bottom, rows_bottom + kTickLength, kTextColour);
    DrawText(cr, std::floor(x) + 0.5, tick_label_centre, layout.tick_labels[k - layout.axis.first],
             Align::kCentre);
  }
  SetColour(cr, kTextColour);
  cairo_rectangle(
      cr, std::floor(layout.plot_left), rows_bottom,
      std::floor(layout.plot_left + layout.plot_width) - std::floor(layout.plot_left) + 1, 1.0);
  cairo_fill(cr);

  const double zero_x = layout.X(0.0);
  for (size_t i = 0; i < bars.size(); ++i) {
    const double row_centre = BarChartRowTop(static_cast<int>(i)) + kBarChartRowHeight / 2.0;
    const double value = bars[i].value;
    const double end_x = std::isfinite(value) ? layout.X(value) : zero_x;
    // Whole pixels, so that bars have sharp edges and lengths that compare exactly.
    const double left = std::round(std::min(zero_x, end_x));
    const double right = std::round(std::max(zero_x, end_x));
    SetColour(cr, value < 0.0 ? kNegativeBarColour : kPositiveBarColour);
    cairo_rectangle(cr, left, std::round(row_centre - kBarThickness / 2), right - left,
                    kBarThickness);
    cairo_fill(cr);
    SetColour(cr, kTextColour);
    DrawText(cr, kBarChartMargin, row_centre, layout.labels[i], Align::kLeft);
    if (value < 0.0) {
      DrawText(cr, left - kGap, row_centre, layout.values[i], Align::kRight);
    } else {
      DrawText(cr, right + kGap, row_centre, layout.values[i], Align::kLeft);
    }
  }
  VerticalLine(cr, zero_x, rows_top, rows_bottom, kZeroLineColour);
}

// "label: value" for each bar, one a line.
std::string Description(const ChartLayout& layout) {
  std::string description;
  for (size_t i = 0; i < layout.labels.size(); ++i) {
    description += fmt::format("{}{}: {}", i == 0 ? "" : "\n", layout.labels[i], layout.values[i]);
  }
  return description;
}

}  // namespace

void WriteBarChart(const std::string& path, const std::string& title,
                   const std::vector<Bar>& bars) {
  if (title.empty()) throw OutputError(fmt::format("{} {}: the title is empty", kWhat, path));
  const drawing::ImageFormat format = drawing::ImageFormatOf(path, kWhat);
  const ChartLayout layout = LayOut(title, bars);
  const std::string image = drawing::RenderImage(
      format, layout.width, layout.height, [&](cairo_t* cr) { DrawChart(cr, layout, bars); }, kWhat,
      path);
  files::WriteAtomically(path, format == drawing::ImageFormat::kSvg
                                   ? drawing::WithSvgTitleAndDesc(image, title, Description(layout))
                                   : image);
}

}  // namespace slim::plot
