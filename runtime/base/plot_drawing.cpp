#include "runtime/base/plot_drawing.h"

#include <cairo-svg.h>
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <string>

#include "runtime/base/errors.h"

namespace slim::plot::drawing {

Context ScratchContext() {
  // The context keeps its own reference to the surface.
  const Surface scratch(cairo_image_surface_create(CAIRO_FORMAT_RGB24, 1, 1));
  return Context(cairo_create(scratch.get()));
}

std::string ElideMiddle(const std::string& text, int max_length) {
  if (static_cast<int>(text.size()) <= max_length) return text;
  const auto is_continuation = [&](size_t i) { return (text[i] & 0xC0) == 0x80; };
  size_t head = (max_length - 3) / 2;
  while (head > 0 && is_continuation(head)) --head;
  size_t tail_start = text.size() - (max_length - 3 - (max_length - 3) / 2);
  while (tail_start < text.size() && is_continuation(tail_start)) ++tail_start;
  return text.substr(0, head) + "..." + text.substr(tail_start);
}

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

void SetColour(cairo_t* cr, const Colour& colour) {
  cairo_set_source_rgb(cr, colour.red, colour.green, colour.blue);
}

void UseFont(cairo_t* cr, double size, cairo_font_weight_t weight) {
  cairo_select_font_face(cr, kFontFamily, CAIRO_FONT_SLANT_NORMAL, weight);
  cairo_set_font_size(cr, size);
  cairo_font_options_t* options = cairo_font_options_create();
  cairo_font_options_set_hint_metrics(options, CAIRO_HINT_METRICS_OFF);
  cairo_set_font_options(cr, options);
  cairo_font_options_destroy(options);
}

double TextWidth(cairo_t* cr, const std::string& text) {
  cairo_text_extents_t extents;
  cairo_text_extents(cr, text.c_str(), &extents);
  return extents.x_advance;
}

double TextHeight(cairo_t* cr) {
  cairo_font_extents_t font;
  cairo_font_extents(cr, &font);
  return font.ascent + font.descent;
}

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

void VerticalLine(cairo_t* cr, double x, double top, double bottom, const Colour& colour) {
  SetColour(cr, colour);
  cairo_set_line_width(cr, 1.0);
  cairo_move_to(cr, std::floor(x) + 0.5, top);
  cairo_line_to(cr, std::floor(x) + 0.5, bottom);
  cairo_stroke(cr);
}

void HorizontalLine(cairo_t* cr, double y, double left, double right, const Colour& colour) {
  SetColour(cr, colour);
  cairo_set_line_width(cr, 1.0);
  cairo_move_to(cr, left, std::floor(y) + 0.5);
  cairo_line_to(cr, right, std::floor(y) + 0.5);
  cairo_stroke(cr);
}

double NiceStep(double span, double target_intervals) {
  const double rough = span / target_intervals;
  const double power = std::pow(10.0, std::floor(std::log10(rough)));
  const double fraction = rough / power;
  return power * (fraction < 1.5 ? 1.0 : fraction < 3.0 ? 2.0 : fraction < 7.0 ? 5.0 : 10.0);
}

// The tolerances keep a value that is a multiple of the step up to rounding from adding or
// losing a tick.
Ticks TicksSpanning(double low, double high, double target_intervals) {
  const double step = NiceStep(high - low, target_intervals);
  return {step, std::lround(std::floor(low / step + 1e-9)),
          std::lround(std::ceil(high / step - 1e-9))};
}

Ticks TicksWithin(double low, double high, double target_intervals) {
  const double step = NiceStep(high - low, target_intervals);
  return {step, std::lround(std::ceil(low / step - 1e-9)),
          std::lround(std::floor(high / step + 1e-9))};
}

ImageFormat ImageFormatOf(const std::string& path, const std::string& what) {
  std::string extension = std::filesystem::path(path).extension().string();
  std::transform(extension.begin(), extension.end(), extension.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  if (extension == ".png") return ImageFormat::kPng;
  if (extension == ".svg") return ImageFormat::kSvg;
  throw OutputError(fmt::format("{} {}: unknown file extension \"{}\"; valid ones are .png, .svg",
                                what, path, extension));
}

namespace {

// Cairo write callback appending to the std::string `closure`.
cairo_status_t AppendToString(void* closure, const unsigned char* data, unsigned int length) {
  static_cast<std::string*>(closure)->append(reinterpret_cast<const char*>(data), length);
  return CAIRO_STATUS_SUCCESS;
}

// Throws OutputError naming `what` and `path` if `status` is an error.
void CheckCairo(cairo_status_t status, const std::string& what, const std::string& path) {
  if (status != CAIRO_STATUS_SUCCESS) {
    throw OutputError(
        fmt::format("cannot draw {} {}: {}", what, path, cairo_status_to_string(status)));
  }
}

std::string RenderPng(int width, int height, const std::function<void(cairo_t*)>& draw,
                      const std::string& what, const std::string& path) {
  const Surface surface(cairo_image_surface_create(CAIRO_FORMAT_RGB24, width, height));
  CheckCairo(cairo_surface_status(surface.get()), what, path);
  const Context cr(cairo_create(surface.get()));
  draw(cr.get());
  CheckCairo(cairo_status(cr.get()), what, path);
  std::string png;
  CheckCairo(cairo_surface_write_to_png_stream(surface.get(), AppendToString, &png), what, path);
  return png;
}

std::string RenderSvg(int width, int height, const std::function<void(cairo_t*)>& draw,
                      const std::string& what, const std::string& path) {
  std::string svg;
  const Surface surface(cairo_svg_surface_create_for_stream(AppendToString, &svg, width, height));
  CheckCairo(cairo_surface_status(surface.get()), what, path);
  cairo_svg_surface_set_document_unit(surface.get(), CAIRO_SVG_UNIT_PX);
  {
    const Context cr(cairo_create(surface.get()));
    draw(cr.get());
    CheckCairo(cairo_status(cr.get()), what, path);
  }
  cairo_surface_finish(surface.get());
  CheckCairo(cairo_surface_status(surface.get()), what, path);
  return svg;
}

}  // namespace

std::string RenderImage(ImageFormat format, int width, int height,
                        const std::function<void(cairo_t*)>& draw, const std::string& what,
                        const std::string& path) {
  return format == ImageFormat::kPng ? RenderPng(width, height, draw, what, path)
                                     : RenderSvg(width, height, draw, what, path);
}

std::string WithSvgTitleAndDesc(const std::string& svg, const std::string& title,
                                const std::string& description) {
  const size_t root_end = svg.find('>', svg.find("<svg")) + 1;
  return svg.substr(0, root_end) + "\n<title>" + XmlEscaped(title) + "</title>\n<desc>" +
         XmlEscaped(description) + "</desc>" + svg.substr(root_end);
}

}  // namespace slim::plot::drawing
