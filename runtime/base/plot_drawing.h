// Drawing helpers shared by the plot writers (bar_chart.cpp, scatter_plot.cpp): Cairo handles,
// the common colours and font, text measuring and placing, round ("nice") tick values, and
// rendering a picture to PNG or SVG bytes chosen by a file's extension. Internal to
// slim::plot: callers outside the plot writers use bar_chart.h and scatter_plot.h.
#pragma once

#include <cairo.h>

#include <functional>
#include <memory>
#include <string>

namespace slim::plot::drawing {

struct Colour {
  double red, green, blue;
};
constexpr Colour kBackground = {1.0, 1.0, 1.0};
constexpr Colour kTextColour = {0.13, 0.13, 0.13};
constexpr Colour kGridColour = {0.88, 0.88, 0.88};

constexpr char kFontFamily[] = "sans-serif";
constexpr double kTitleFontSize = 15.0;
constexpr double kTextFontSize = 12.0;

struct SurfaceDeleter {
  void operator()(cairo_surface_t* surface) const { cairo_surface_destroy(surface); }
};
struct ContextDeleter {
  void operator()(cairo_t* context) const { cairo_destroy(context); }
};
using Surface = std::unique_ptr<cairo_surface_t, SurfaceDeleter>;
using Context = std::unique_ptr<cairo_t, ContextDeleter>;

// A context on a 1 × 1 image surface, for measuring text before the picture's size is known.
Context ScratchContext();

// `text` itself if it has at most `max_length` bytes, else its start and end joined by "...",
// at most max_length bytes in all, cut between UTF-8 characters. REQUIRES: max_length >= 3.
std::string ElideMiddle(const std::string& text, int max_length);

// `text` with the characters XML gives a meaning (&, <, >) escaped.
std::string XmlEscaped(const std::string& text);

void SetColour(cairo_t* cr, const Colour& colour);

// Selects the plot font at `size` on `cr`, with unhinted metrics so that a text measures the
// same on every kind of surface.
void UseFont(cairo_t* cr, double size, cairo_font_weight_t weight);

// Advance width of `text` in the current font of `cr`.
double TextWidth(cairo_t* cr, const std::string& text);

// Height of a line of text in the current font of `cr` (ascent plus descent).
double TextHeight(cairo_t* cr);

enum class Align { kLeft, kCentre, kRight };

// Draws `text` in the current font and source of `cr`, its line vertically centred on
// `centre_y` and its left end, middle or right end (per `align`) at `x`.
void DrawText(cairo_t* cr, double x, double centre_y, const std::string& text, Align align);

// Draws a vertical 1-unit line at `x` from `top` to `bottom`, on the pixel grid so that it
// stays crisp.
void VerticalLine(cairo_t* cr, double x, double top, double bottom, const Colour& colour);
// Draws a horizontal 1-unit line at `y` from `left` to `right`, on the pixel grid.
void HorizontalLine(cairo_t* cr, double y, double left, double right, const Colour& colour);

// Ticks at k × step for k in [first, last], where step is 1, 2 or 5 times a power of ten.
struct Ticks {
  double step;
  long first, last;

  double value(long k) const { return k * step; }
  double low() const { return value(first); }
  double high() const { return value(last); }
};

// The round step (1, 2 or 5 times a power of ten) nearest to span / target_intervals.
// REQUIRES: span > 0 and finite, target_intervals > 0.
double NiceStep(double span, double target_intervals);

// Ticks at multiples of NiceStep(high - low, target_intervals): the fewest that reach from at
// or below `low` to at or above `high` (a value that is a multiple of the step up to rounding
// gets no extra tick). REQUIRES: low < high, both finite.
Ticks TicksSpanning(double low, double high, double target_intervals);

// Ticks at multiples of NiceStep(high - low, target_intervals) that lie in [low, high] (up to
// rounding); first > last if there are none. REQUIRES: low < high, both finite.
Ticks TicksWithin(double low, double high, double target_intervals);

enum class ImageFormat { kPng, kSvg };

// The format that the extension of `path` names (".png" or ".svg", any case). Throws
// OutputError "`what` `path`: unknown file extension ..." listing the valid ones otherwise.
ImageFormat ImageFormatOf(const std::string& path, const std::string& what);

// The bytes of a `width` × `height` picture (pixels; the SVG uses px units) in `format`, drawn
// by `draw` onto a context of it. Throws OutputError "cannot draw `what` `path`: ..." when
// Cairo fails (e.g. a PNG larger than 32767 pixels either way, or text that is not UTF-8).
std::string RenderImage(ImageFormat format, int width, int height,
                        const std::function<void(cairo_t*)>& draw, const std::string& what,
                        const std::string& path);

// `svg` with <title> and <desc> elements holding `title` and `description` (escaped) inserted
// as the first children of its root element, where SVG viewers and search look: Cairo draws
// text as glyph outlines, so this is the picture's only searchable text.
std::string WithSvgTitleAndDesc(const std::string& svg, const std::string& title,
                                const std::string& description);

}  // namespace slim::plot::drawing
