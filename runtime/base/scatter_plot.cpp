#include "runtime/base/scatter_plot.h"

#include <cairo.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <iterator>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
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

constexpr const char* kWhat = "scatter plot";
constexpr double kPi = 3.14159265358979323846;

constexpr Colour kFrameColour = {0.40, 0.40, 0.40};
constexpr Colour kLeaderColour = {0.60, 0.60, 0.60};
// Marker colours, given to the labels in order of first appearance and reused after the last.
constexpr Colour kMarkerColours[] = {
    {0.12, 0.47, 0.71}, {1.00, 0.50, 0.05}, {0.17, 0.63, 0.17}, {0.84, 0.15, 0.16},
    {0.58, 0.40, 0.74}, {0.55, 0.34, 0.29}, {0.89, 0.47, 0.76}, {0.09, 0.75, 0.81},
};

// Marker radius; space between a marker and its label, and between tick labels; how far a label
// stays inside the frame; tick length; the share of an axis's data range left free at each end;
// how many tick intervals a linear axis aims for.
constexpr double kMarkerRadius = 5.0;
constexpr double kGap = 4.0;
constexpr double kInset = 3.0;
constexpr double kTickLength = 4.0;
constexpr double kRangeMargin = 0.06;
constexpr double kTargetTickIntervals = 5.0;
// How many tick intervals a log axis aims for when it falls back to linear values; how dark a
// label is drawn against its marker's colour (the fraction of each component kept).
constexpr double kTargetLogFallbackIntervals = 3.0;
constexpr double kLabelShade = 0.6;
// A log axis wants at least kMinLogTicks ticks before it settles for sparser kinds, and at most
// kMaxLogTicks powers of ten before it keeps only every 2nd, 3rd, 5th, 10th... of them.
constexpr size_t kMinLogTicks = 3;
constexpr int kMaxLogTicks = 7;

// Whether `point` can be drawn on a panel with a log (or linear) horizontal axis.
bool Drawable(const Point& point, bool log_x) {
  return std::isfinite(point.x) && std::isfinite(point.y) && (!log_x || point.x > 0.0);
}

// An axis: the data range [low, high] (log: both > 0) that the plot spans, and its ticks.
struct Axis {
  bool log = false;
  double low = 0.0, high = 1.0;
  std::vector<double> ticks;
  std::vector<std::string> tick_labels;  // one per tick
  std::vector<bool> tick_label_shown;    // one per tick; set by the layout

  // How far `value` lies from low (0) to high (1).
  double Fraction(double value) const {
    return log ? (std::log10(value) - std::log10(low)) / (std::log10(high) - std::log10(low))
               : (value - low) / (high - low);
  }
};

// [low, high] widened by kRangeMargin of its span at each end, or by `single_half` at each end
// if low == high.
std::pair<double, double> Padded(double low, double high, double single_half) {
  const double margin = low == high ? single_half : (high - low) * kRangeMargin;
  return {low - margin, high + margin};
}

// Round values in [low, high]: multiples of a 1-2-5 step giving about `target_intervals`.
std::vector<double> LinearTicks(double low, double high, double target_intervals) {
  const drawing::Ticks ticks = drawing::TicksWithin(low, high, target_intervals);
  std::vector<double> values;
  for (long k = ticks.first; k <= ticks.last; ++k) values.push_back(ticks.value(k));
  return values;
}

// Values m × 10^e in [low, high] for each mantissa m and each e that is a multiple of `stride`.
// REQUIRES: 0 < low < high, stride >= 1.
std::vector<double> DecadeTicks(double low, double high, const std::vector<double>& mantissas,
                                int stride = 1) {
  std::vector<double> values;
  const int first = static_cast<int>(std::floor(std::log10(low))) - 1;
  const int last = static_cast<int>(std::ceil(std::log10(high)));
  for (int exponent = first; exponent <= last; ++exponent) {
    if (exponent % stride != 0) continue;
    for (const double mantissa : mantissas) {
      const double value = mantissa * std::pow(10.0, exponent);
      if (value >= low * (1 - 1e-9) && value <= high * (1 + 1e-9)) values.push_back(value);
    }
  }
  return values;
}

// Round values in [low, high] for a log axis: powers of ten when there are enough (only every
// stride-th if there are too many), else 1, 2 and 5 times them, else round linear values.
// REQUIRES: 0 < low < high.
std::vector<double> LogTicks(double low, double high) {
  const double powers = std::floor(std::log10(high)) - std::ceil(std::log10(low)) + 1;
  int stride = 1;
  for (const int wider : {2, 3, 5, 10, 20, 50, 100}) {
    if (powers / stride <= kMaxLogTicks) break;
    stride = wider;
  }
  std::vector<double> values = DecadeTicks(low, high, {1.0}, stride);
  if (values.size() < kMinLogTicks) values = DecadeTicks(low, high, {1.0, 2.0, 5.0});
  if (values.size() < kMinLogTicks) values = LinearTicks(low, high, kTargetLogFallbackIntervals);
  return values;
}

// The axis for `values` (finite; all > 0 if `log`), or none if there are no values.
std::optional<Axis> AxisFor(const std::vector<double>& values, bool log) {
  if (values.empty()) return std::nullopt;
  const auto [min, max] = std::minmax_element(values.begin(), values.end());
  Axis axis;
  axis.log = log;
  if (log) {
    // A single value gets a decade around it.
    const auto [low, high] = Padded(std::log10(*min), std::log10(*max), 0.5);
    axis.low = std::pow(10.0, low);
    axis.high = std::pow(10.0, high);
    axis.ticks = LogTicks(axis.low, axis.high);
  } else {
    // A single value gets a tenth of its size around it (2 around zero).
    std::tie(axis.low, axis.high) = Padded(*min, *max, *min == 0.0 ? 1.0 : std::abs(*min) * 0.05);
    axis.ticks = LinearTicks(axis.low, axis.high, kTargetTickIntervals);
  }
  for (const double tick : axis.ticks) {
    axis.tick_labels.push_back(fmt::format("{:g}", tick));
  }
  axis.tick_label_shown.assign(axis.ticks.size(), true);
  return axis;
}

// A rectangle in pixels.
struct Box {
  double left, top, right, bottom;

  bool Overlaps(const Box& other) const {
    return left < other.right && other.left < right && top < other.bottom && other.top < bottom;
  }
  bool Inside(const Box& other) const {
    return left >= other.left && right <= other.right && top >= other.top && bottom <= other.bottom;
  }
};

// A drawable point as drawn: its marker centre, colour and label box.
struct PlacedPoint {
  double x, y;
  Colour colour;
  std::string label;
  Box label_box;
  bool leader;  // whether a line joins the marker to its label
};

// What is drawn in and under one plot.
struct PanelLayout {
  std::string x_label;
  std::optional<Axis> x_axis;
  double plot_left, plot_width;  // whole pixels
  std::vector<PlacedPoint> points;
  std::string plot_note;   // in the middle of the plot, if not empty
  std::string below_note;  // under the axis label, if not empty

  double Right() const { return plot_left + plot_width; }
  double X(double value) const { return plot_left + x_axis->Fraction(value) * plot_width; }
};

// What is drawn where in the whole figure.
struct FigureLayout {
  std::string title, y_label;
  std::optional<Axis> y_axis;
  std::vector<PanelLayout> panels;
  int width, height;

  double Y(double value) const {
    return ScatterPlotBottom() - y_axis->Fraction(value) * kScatterPlotHeight;
  }
};

// Index into kMarkerColours for every label, in order of first appearance over all panels.
std::map<std::string, size_t> ColourIndices(const std::vector<Panel>& panels) {
  std::map<std::string, size_t> indices;
  for (const Panel& panel : panels) {
    for (const Point& point : panel.points) indices.emplace(point.label, indices.size());
  }
  return indices;
}

// The vertical axis over the drawable points of every panel.
std::optional<Axis> SharedYAxis(const std::vector<Panel>& panels) {
  std::vector<double> values;
  for (const Panel& panel : panels) {
    for (const Point& point : panel.points) {
      if (Drawable(point, panel.log_x)) values.push_back(point.y);
    }
  }
  return AxisFor(values, /*log=*/false);
}

// Hides the tick labels of `axis` (horizontal, on a plot from `left` to `right`) that would
// overlap the one before or reach more than half a panel gap beyond the plot.
void HideCrowdedTickLabels(cairo_t* cr, Axis& axis, double left, double right) {
  double free_from = left - kScatterPanelGap / 2.0;
  for (size_t i = 0; i < axis.ticks.size(); ++i) {
    const double centre = left + axis.Fraction(axis.ticks[i]) * (right - left);
    const double half_width = TextWidth(cr, axis.tick_labels[i]) / 2;
    axis.tick_label_shown[i] =
        centre - half_width >= free_from && centre + half_width <= right + kScatterPanelGap / 2.0;
    if (axis.tick_label_shown[i]) free_from = centre + half_width + 2 * kGap;
  }
}

// "not shown: a, b" for the `labels` of points not drawn, as many as fit in `max_width`
// followed by "and N more" for the rest; "" if there are none.
std::string NotShownNote(cairo_t* cr, const std::vector<std::string>& labels, double max_width) {
  if (labels.empty()) return "";
  const auto more = [&](size_t named) {
    return named < labels.size() ? fmt::format(" and {} more", labels.size() - named) : "";
  };
  std::string note = "not shown: " + labels[0];
  size_t named = 1;
  for (; named < labels.size(); ++named) {
    const std::string longer = note + ", " + labels[named];
    if (TextWidth(cr, longer + more(named + 1)) > max_width) break;
    note = longer;
  }
  return note + more(named);
}

// The box of a label `width` × `height` on the right (else left) of a marker at (x, y), moved
// `rows` text lines down (negative: up).
Box LabelBox(double x, double y, double width, double height, bool right, int rows) {
  const double left = right ? x + kMarkerRadius + kGap : x - kMarkerRadius - kGap - width;
  const double centre_y = y + rows * (height + 1);
  return {left, centre_y - height / 2, left + width, centre_y + height / 2};
}

// `box` moved the least to lie inside `area`, as far as it fits.
Box Clamped(Box box, const Box& area) {
  const double dx = std::max(area.left - box.left, std::min(0.0, area.right - box.right));
  const double dy = std::max(area.top - box.top, std::min(0.0, area.bottom - box.bottom));
  return {box.left + dx, box.top + dy, box.right + dx, box.bottom + dy};
}

// Distance from (x, y) to the nearest point of `box`.
double Distance(double x, double y, const Box& box) {
  const double dx = std::max({box.left - x, 0.0, x - box.right});
  const double dy = std::max({box.top - y, 0.0, y - box.bottom});
  return std::hypot(dx, dy);
}

// Places the label of every point of `points` (markers placed, labels not yet) in turn: the
// first of right, left, and 1 to 3 lines up or down on either side that lies inside `area` and
// clear of the labels placed before and all markers; else on the right, moved inside `area`.
void PlaceLabels(cairo_t* cr, std::vector<PlacedPoint>& points, const Box& area) {
  const double height = drawing::TextHeight(cr);
  std::vector<Box> taken;
  for (const PlacedPoint& point : points) {
    taken.push_back({point.x - kMarkerRadius, point.y - kMarkerRadius, point.x + kMarkerRadius,
                     point.y + kMarkerRadius});
  }
  for (PlacedPoint& point : points) {
    const double width = TextWidth(cr, point.label);
    std::optional<Box> chosen;
    for (int rows : {0, -1, 1, -2, 2, -3, 3}) {
      for (bool right : {true, false}) {
        const Box box = LabelBox(point.x, point.y, width, height, right, rows);
        const bool clear = std::none_of(taken.begin(), taken.end(),
                                        [&](const Box& other) { return box.Overlaps(other); });
        if (!chosen && clear && box.Inside(area)) chosen = box;
      }
    }
    point.label_box =
        chosen ? *chosen : Clamped(LabelBox(point.x, point.y, width, height, true, 0), area);
    point.leader = Distance(point.x, point.y, point.label_box) > kMarkerRadius + kGap + height;
    taken.push_back(point.label_box);
  }
}

// Lays out `panel` on the plot from `plot_left`, `plot_width` wide, on the shared vertical
// axis of `figure`, with its font set on `cr`.
PanelLayout LayOutPanel(cairo_t* cr, const Panel& panel, const FigureLayout& figure,
                        double plot_left, double plot_width,
                        const std::map<std::string, size_t>& colour_indices) {
  PanelLayout layout;
  layout.x_label = panel.x_label;
  layout.plot_left = plot_left;
  layout.plot_width = plot_width;
  std::vector<double> xs;
  std::vector<std::string> not_shown;
  for (const Point& point : panel.points) {
    if (Drawable(point, panel.log_x)) {
      xs.push_back(point.x);
    } else {
      not_shown.push_back(drawing::ElideMiddle(point.label, kScatterMaxLabelLength));
    }
  }
  layout.below_note = NotShownNote(cr, not_shown, plot_width + kScatterPanelGap);
  layout.x_axis = AxisFor(xs, panel.log_x);
  if (!layout.x_axis) {
    layout.plot_note = panel.points.empty() ? "no points"
                       : panel.log_x        ? "no points with finite values and x > 0"
                                            : "no points with finite values";
    return layout;
  }
  HideCrowdedTickLabels(cr, *layout.x_axis, plot_left, layout.Right());
  for (const Point& point : panel.points) {
    if (!Drawable(point, panel.log_x)) continue;
    layout.points.push_back(
        {layout.X(point.x),
         figure.Y(point.y),
         kMarkerColours[colour_indices.at(point.label) % std::size(kMarkerColours)],
         drawing::ElideMiddle(point.label, kScatterMaxLabelLength),
         {},
         false});
  }
  PlaceLabels(cr, layout.points,
              {plot_left + kInset, ScatterPlotTop() + kInset, layout.Right() - kInset,
               ScatterPlotBottom() - kInset});
  return layout;
}

// Lays out the figure, measuring text on a scratch context.
FigureLayout LayOut(const std::string& title, const std::string& y_label,
                    const std::vector<Panel>& panels) {
  FigureLayout figure;
  figure.title = title;
  figure.y_label = y_label;
  figure.y_axis = SharedYAxis(panels);
  const drawing::Context cr = drawing::ScratchContext();
  UseFont(cr.get(), kTextFontSize, CAIRO_FONT_WEIGHT_NORMAL);
  double tick_label_width = 0.0;
  if (figure.y_axis) {
    for (const std::string& label : figure.y_axis->tick_labels) {
      tick_label_width = std::max(tick_label_width, TextWidth(cr.get(), label));
    }
  }
  const double first_plot_left =
      std::ceil(kScatterMargin + (y_label.empty() ? 0.0 : kScatterAxisLabelHeight) +
                tick_label_width + kGap + kTickLength);
  const int count = static_cast<int>(panels.size());
  const double right_of_plots = kScatterPanelGap / 2.0 + kScatterMargin;
  UseFont(cr.get(), kTitleFontSize, CAIRO_FONT_WEIGHT_BOLD);
  const double title_width = TextWidth(cr.get(), title) + 2 * kScatterMargin;
  // Plots kScatterPlotWidth wide, or wider alike for a long title.
  const double plot_width = std::max<double>(
      kScatterPlotWidth,
      std::ceil((title_width - first_plot_left - right_of_plots - (count - 1) * kScatterPanelGap) /
                count));
  figure.width = static_cast<int>(first_plot_left + count * plot_width +
                                  (count - 1) * kScatterPanelGap + right_of_plots);
  figure.height = ScatterFigureHeight();
  UseFont(cr.get(), kTextFontSize, CAIRO_FONT_WEIGHT_NORMAL);
  const std::map<std::string, size_t> colour_indices = ColourIndices(panels);
  for (int i = 0; i < count; ++i) {
    figure.panels.push_back(LayOutPanel(cr.get(), panels[i], figure,
                                        first_plot_left + i * (plot_width + kScatterPanelGap),
                                        plot_width, colour_indices));
  }
  return figure;
}

// Draws the title, and the vertical axis label turned a quarter left of the first plot.
void DrawTitles(cairo_t* cr, const FigureLayout& figure) {
  SetColour(cr, kTextColour);
  UseFont(cr, kTitleFontSize, CAIRO_FONT_WEIGHT_BOLD);
  DrawText(cr, kScatterMargin, kScatterMargin + kScatterTitleHeight / 2.0, figure.title,
           Align::kLeft);
  UseFont(cr, kTextFontSize, CAIRO_FONT_WEIGHT_NORMAL);
  if (figure.y_label.empty()) return;
  cairo_save(cr);
  cairo_translate(cr, kScatterMargin + kScatterAxisLabelHeight / 2.0,
                  (ScatterPlotTop() + ScatterPlotBottom()) / 2.0);
  cairo_rotate(cr, -kPi / 2);
  DrawText(cr, 0.0, 0.0, figure.y_label, Align::kCentre);
  cairo_restore(cr);
}

// Draws the ticks and tick labels of the shared vertical axis left of the first plot.
void DrawYTicks(cairo_t* cr, const FigureLayout& figure) {
  if (!figure.y_axis) return;
  const double left = figure.panels.front().plot_left;
  for (size_t i = 0; i < figure.y_axis->ticks.size(); ++i) {
    const double y = figure.Y(figure.y_axis->ticks[i]);
    drawing::HorizontalLine(cr, y, left - kTickLength, left, kTextColour);
    SetColour(cr, kTextColour);
    DrawText(cr, left - kTickLength - kGap, std::floor(y) + 0.5, figure.y_axis->tick_labels[i],
             Align::kRight);
  }
}

// Draws the grid lines of both axes inside the plot of `panel`, and the plot's frame.
void DrawGridAndFrame(cairo_t* cr, const FigureLayout& figure, const PanelLayout& panel) {
  if (figure.y_axis) {
    for (const double tick : figure.y_axis->ticks) {
      drawing::HorizontalLine(cr, figure.Y(tick), panel.plot_left, panel.Right(), kGridColour);
    }
  }
  if (panel.x_axis) {
    for (const double tick : panel.x_axis->ticks) {
      drawing::VerticalLine(cr, panel.X(tick), ScatterPlotTop(), ScatterPlotBottom(), kGridColour);
    }
  }
  SetColour(cr, kFrameColour);
  cairo_set_line_width(cr, 1.0);
  cairo_rectangle(cr, panel.plot_left + 0.5, ScatterPlotTop() + 0.5, panel.plot_width,
                  kScatterPlotHeight);
  cairo_stroke(cr);
}

// Draws the horizontal axis of `panel` under its plot: ticks, tick labels, the axis label and
// the note on points not shown.
void DrawXAxis(cairo_t* cr, const PanelLayout& panel) {
  const double bottom = ScatterPlotBottom();
  if (panel.x_axis) {
    const Axis& axis = *panel.x_axis;
    for (size_t i = 0; i < axis.ticks.size(); ++i) {
      const double x = panel.X(axis.ticks[i]);
      drawing::VerticalLine(cr, x, bottom, bottom + kTickLength, kTextColour);
      if (!axis.tick_label_shown[i]) continue;
      SetColour(cr, kTextColour);
      DrawText(cr, std::floor(x) + 0.5,
               bottom + kTickLength + (kScatterAxisHeight - kTickLength) / 2.0, axis.tick_labels[i],
               Align::kCentre);
    }
  }
  SetColour(cr, kTextColour);
  const double centre = panel.plot_left + panel.plot_width / 2;
  DrawText(cr, centre, bottom + kScatterAxisHeight + kScatterAxisLabelHeight / 2.0, panel.x_label,
           Align::kCentre);
  DrawText(cr, panel.plot_left,
           bottom + kScatterAxisHeight + kScatterAxisLabelHeight + kScatterNoteHeight / 2.0,
           panel.below_note, Align::kLeft);
}

// Draws the points of `panel`: leader lines, then markers, then labels on top in a dark shade
// of their marker's colour; then the note, if any.
void DrawPoints(cairo_t* cr, const PanelLayout& panel) {
  for (const PlacedPoint& point : panel.points) {
    if (!point.leader) continue;
    const Box& box = point.label_box;
    SetColour(cr, kLeaderColour);
    cairo_set_line_width(cr, 1.0);
    cairo_move_to(cr, point.x, point.y);
    cairo_line_to(cr, std::clamp(point.x, box.left, box.right),
                  std::clamp(point.y, box.top, box.bottom));
    cairo_stroke(cr);
  }
  for (const PlacedPoint& point : panel.points) {
    // A white rim keeps markers that overlap apart. A new path, since drawn text leaves a current
    // point that cairo_arc would join with a line.
    cairo_new_path(cr);
    cairo_arc(cr, point.x, point.y, kMarkerRadius, 0.0, 2 * kPi);
    SetColour(cr, point.colour);
    cairo_fill_preserve(cr);
    SetColour(cr, kBackground);
    cairo_set_line_width(cr, 1.0);
    cairo_stroke(cr);
  }
  for (const PlacedPoint& point : panel.points) {
    SetColour(cr, {point.colour.red * kLabelShade, point.colour.green * kLabelShade,
                   point.colour.blue * kLabelShade});
    DrawText(cr, point.label_box.left, (point.label_box.top + point.label_box.bottom) / 2,
             point.label, Align::kLeft);
  }
  SetColour(cr, kTextColour);
  if (!panel.plot_note.empty()) {
    DrawText(cr, panel.plot_left + panel.plot_width / 2,
             (ScatterPlotTop() + ScatterPlotBottom()) / 2.0, panel.plot_note, Align::kCentre);
  }
}

// Draws the whole figure onto `cr`, whose surface is figure.width × figure.height.
void DrawFigure(cairo_t* cr, const FigureLayout& figure) {
  SetColour(cr, kBackground);
  cairo_paint(cr);
  DrawTitles(cr, figure);
  DrawYTicks(cr, figure);
  for (const PanelLayout& panel : figure.panels) {
    DrawGridAndFrame(cr, figure, panel);
    DrawXAxis(cr, panel);
    DrawPoints(cr, panel);
  }
}

// The axis labels and every point with its values, one a line.
std::string Description(const std::string& y_label, const std::vector<Panel>& panels) {
  std::string description = "y: " + y_label;
  for (const Panel& panel : panels) {
    description += fmt::format("\nx: {}{}", panel.x_label, panel.log_x ? " (log scale)" : "");
    for (const Point& point : panel.points) {
      description += fmt::format("\n{}: x = {:.4g}, y = {:.4g}{}", point.label, point.x, point.y,
                                 Drawable(point, panel.log_x) ? "" : " (not shown)");
    }
  }
  return description;
}

}  // namespace

void WriteScatterPanels(const std::string& path, const std::string& title,
                        const std::string& y_label, const std::vector<Panel>& panels) {
  if (title.empty()) throw OutputError(fmt::format("{} {}: the title is empty", kWhat, path));
  if (panels.empty()) throw OutputError(fmt::format("{} {}: there are no panels", kWhat, path));
  const drawing::ImageFormat format = drawing::ImageFormatOf(path, kWhat);
  const FigureLayout figure = LayOut(title, y_label, panels);
  const std::string image = drawing::RenderImage(
      format, figure.width, figure.height, [&](cairo_t* cr) { DrawFigure(cr, figure); }, kWhat,
      path);
  files::WriteAtomically(
      path, format == drawing::ImageFormat::kSvg
                ? drawing::WithSvgTitleAndDesc(image, title, Description(y_label, panels))
                : image);
}

}  // namespace slim::plot
