#include "runtime/base/bar_chart.h"

#include <cairo-svg.h>
#include <cairo.h>
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "runtime/base/errors.h"
#include "runtime/base/output_file.h"

namespace slim::plot {
namespace {

struct Colour {
  double red, green, blue;
};
constexpr Colour kBackground = {1.0, 1.0, 1.0};
constexpr Colour kTextColour = {0.13, 0.13, 0.13};
constexpr Colour kPositiveBarColour = {0.22, 0.42, 0.80};
constexpr Colour kNegativeBarColour = {0.84, 0.24, 0.20};
constexpr Colour kZeroLineColour = {0.40, 0.40, 0.40};
constexpr Colour kGridColour = {0.88, 0.88, 0.88};

constexpr char kFontFamily[] = "sans-serif";
constexpr double kTitleFontSize = 15.0;
constexpr double kTextFontSize = 12.0;
// Space between the label column, the plot and the value text; bar thickness; tick length;
// how many tick intervals the axis aims for (it gets 4 to 9).
constexpr double kGap = 8.0;
constexpr double kBarThickness = 14.0;
constexpr double kTickLength = 4.0;
constexpr double kTargetTickIntervals = 6.0;

struct SurfaceDeleter {
  void operator()(cairo_surface_t* surface) const { cairo_surface_destroy(surface); }
};
struct ContextDeleter {
  void operator()(cairo_t* context) const { cairo_destroy(context); }
};
using Surface = std::unique_ptr<cairo_surface_t, SurfaceDeleter>;
using Context = std::unique_ptr<cairo_t, ContextDeleter>;

// `text` itself if it has at most `max_length` bytes, else its start and end joined by "...",
// at most max_length bytes in all, cut between UTF-8 characters. REQUIRES: max_length >= 3.
std::string ElideMiddle(const std::string& text, int max_length) {
  if (static_cast<int>(text.size()) <= max_length) return text;
  const auto is_continuation = [&](size_t i) { return (text[i] & 0xC0) == 0x80; };
  size_t head = (max_length - 3) / 2;
  while (head > 0 && is_continuation(head)) --head;
  size_t tail_start = text.size() - (max_length - 3 - (max_length - 3) / 2);
  while (tail_start < text.size() && is_continuation(tail_start)) ++tail_start;
  return text.substr(0, head) + "..." + text.substr(tail_start);
}

void SetColour(cairo_t* cr, const Colour& colour) {
  cairo_set_source_rgb(cr, colour.red, colour.green, colour.blue);
}

// Selects the chart font at `size` on `cr`, with unhinted metrics so that a text measures the
// same on every kind of surface.
void UseFont(cairo_t* cr, double size, cairo_font_weight_t weight) {
  cairo_select_font_face(cr, kFontFamily, CAIRO_FONT_SLANT_NORMAL, weight);
  cairo_set_font_size(cr, size);
  cairo_font_options_t* options = cairo_font_options_create();
  cairo_font_options_set_hint_metrics(options, CAIRO_HINT_METRICS_OFF);
  cairo_set_font_options(cr, options);
  cairo_font_options_destroy(options);
}

// Advance width of `text` in the current font of `cr`.
double TextWidth(cairo_t* cr, const std::string& text) {
  cairo_text_extents_t extents;
  cairo_text_extents(cr, text.c_str(), &extents);
  return extents.x_advance;
}

enum class Align { kLeft, kCentre, kRight };

// Draws `text` in the current font and source of `cr`, its line vertically centred on
// `centre_y` and its left end, middle or right end (per `align`) at `x`.
void DrawText(cairo_t* cr, double x, double centre_y, const std::string& text, Align align) {
  cairo_font_extents_t font;
  cairo_font_extents(cr, &font);
  const double width = TextWidth(cr, text);
  const double left = align == Align::kLeft     ? x
                      : align == Align::kCentre ? x - width / 2
                                                : x - width;
  cairo_move_to(cr, left, centre_y + (font.ascent - font.descent) / 2);
  cairo_show_text(cr, text.c_str());
}

// The axis: ticks at k × step for k in [first, last], a round step (1, 2 or 5 times a power of
// ten) such that the ticks span zero and every finite value.
struct Axis {
  double step;
  long first, last;

  double low() const { return first * step; }
  double high() const { return last * step; }
};

Axis AxisFor(const std::vector<Bar>& bars) {
  double low = 0.0, high = 0.0;
  for (const Bar& bar : bars) {
    if (!std::isfinite(bar.value)) continue;
    low = std::min(low, bar.value);
    high = std::max(high, bar.value);
  }
  if (low == high) high = 1.0;  // no bar has a length
  const double rough = (high - low) / kTargetTickIntervals;
  const double power = std::pow(10.0, std::floor(std::log10(rough)));
  const double fraction = rough / power;
  // The round step nearest to `rough`, so that there are about kTargetTickIntervals intervals.
  const double step = power * (fraction < 1.5   ? 1.0
                               : fraction < 3.0 ? 2.0
                               : fraction < 7.0 ? 5.0
                                                : 10.0);
  // The tolerance keeps a value that is a multiple of step up to rounding from adding a tick.
  return {step, std::lround(std::floor(low / step + 1e-9)),
          std::lround(std::ceil(high / step - 1e-9))};
}

// What is drawn where: the texts as shown, the chart size and the plot's place.
struct ChartLayout {
  std::string title;
  std::vector<std::string> labels, values;  // one per bar
  Axis axis;
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
  const Surface scratch(cairo_image_surface_create(CAIRO_FORMAT_RGB24, 1, 1));
  const Context cr(cairo_create(scratch.get()));
  UseFont(cr.get(), kTextFontSize, CAIRO_FONT_WEIGHT_NORMAL);
  double label_width = 0.0, left_value_width = 0.0, right_value_width = 0.0;
  for (const Bar& bar : bars) {
    layout.labels.push_back(ElideMiddle(bar.label, kBarChartMaxLabelLength));
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

// Draws a vertical 1-unit line at `x`, on the pixel grid so that it stays crisp.
void VerticalLine(cairo_t* cr, double x, double top, double bottom, const Colour& colour) {
  SetColour(cr, colour);
  cairo_set_line_width(cr, 1.0);
  cairo_move_to(cr, std::floor(x) + 0.5, top);
  cairo_line_to(cr, std::floor(x) + 0.5, bottom);
  cairo_stroke(cr);
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

// Cairo write callback appending to the std::string `closure`.
cairo_status_t AppendToString(void* closure, const unsigned char* data, unsigned int length) {
  static_cast<std::string*>(closure)->append(reinterpret_cast<const char*>(data), length);
  return CAIRO_STATUS_SUCCESS;
}

// Throws OutputError naming `path` if `status` is an error.
void CheckCairo(cairo_status_t status, const std::string& path) {
  if (status != CAIRO_STATUS_SUCCESS) {
    throw OutputError(
        fmt::format("cannot draw bar chart {}: {}", path, cairo_status_to_string(status)));
  }
}

std::string RenderPng(const ChartLayout& layout, const std::vector<Bar>& bars,
                      const std::string& path) {
  const Surface surface(
      cairo_image_surface_create(CAIRO_FORMAT_RGB24, layout.width, layout.height));
  CheckCairo(cairo_surface_status(surface.get()), path);
  const Context cr(cairo_create(surface.get()));
  DrawChart(cr.get(), layout, bars);
  CheckCairo(cairo_status(cr.get()), path);
  std::string png;
  CheckCairo(cairo_surface_write_to_png_stream(surface.get(), AppendToString, &png), path);
  return png;
}

// `text` with the characters XML gives a meaning escaped.
std::string XmlEscaped(const std::string& text) {
  std::string escaped;
  for (const char c : text) {
    switch (c) {
      case '&':
        escaped += "&amp;";
        break;
      case '<':
        escaped += "&lt;";
        break;
      case '>':
        escaped += "&gt;";
        break;
      default:
        escaped += c;
    }
  }
  return escaped;
}

// `svg` with <title> and <desc> elements (the chart's title, one "label: value" line per bar)
// inserted as the first children of its root element, where SVG viewers and search look.
std::string WithTextDescription(const std::string& svg, const ChartLayout& layout) {
  std::string description;
  for (size_t i = 0; i < layout.labels.size(); ++i) {
    description += fmt::format("{}{}: {}", i == 0 ? "" : "\n", layout.labels[i], layout.values[i]);
  }
  const size_t root_end = svg.find('>', svg.find("<svg")) + 1;
  return svg.substr(0, root_end) + "\n<title>" + XmlEscaped(layout.title) + "</title>\n<desc>" +
         XmlEscaped(description) + "</desc>" + svg.substr(root_end);
}

std::string RenderSvg(const ChartLayout& layout, const std::vector<Bar>& bars,
                      const std::string& path) {
  std::string svg;
  const Surface surface(
      cairo_svg_surface_create_for_stream(AppendToString, &svg, layout.width, layout.height));
  CheckCairo(cairo_surface_status(surface.get()), path);
  cairo_svg_surface_set_document_unit(surface.get(), CAIRO_SVG_UNIT_PX);
  {
    const Context cr(cairo_create(surface.get()));
    DrawChart(cr.get(), layout, bars);
    CheckCairo(cairo_status(cr.get()), path);
  }
  cairo_surface_finish(surface.get());
  CheckCairo(cairo_surface_status(surface.get()), path);
  return WithTextDescription(svg, layout);
}

}  // namespace

void WriteBarChart(const std::string& path, const std::string& title,
                   const std::vector<Bar>& bars) {
  if (title.empty()) throw OutputError(fmt::format("bar chart {}: the title is empty", path));
  std::string extension = std::filesystem::path(path).extension().string();
  std::transform(extension.begin(), extension.end(), extension.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  if (extension != ".png" && extension != ".svg") {
    throw OutputError(fmt::format(
        "bar chart {}: unknown file extension \"{}\"; valid ones are .png, .svg", path, extension));
  }
  const ChartLayout layout = LayOut(title, bars);
  files::WriteAtomically(
      path, extension == ".png" ? RenderPng(layout, bars, path) : RenderSvg(layout, bars, path));
}

}  // namespace slim::plot
