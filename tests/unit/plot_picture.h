// Reading back the pictures that the plot writers (runtime/base/bar_chart.h, scatter_plot.h)
// write: PNG pixels through Cairo, SVG text through expat.
#pragma once

#include <cairo.h>
#include <expat.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

namespace slim::testing {

// A PNG read back through Cairo, with pixel access.
class Picture {
 public:
  explicit Picture(const std::string& path)
      : surface_(cairo_image_surface_create_from_png(path.c_str()), cairo_surface_destroy) {
    EXPECT_EQ(cairo_surface_status(surface_.get()), CAIRO_STATUS_SUCCESS) << path;
    cairo_surface_flush(surface_.get());
  }
  int width() const { return cairo_image_surface_get_width(surface_.get()); }
  int height() const { return cairo_image_surface_get_height(surface_.get()); }
  // Red, green and blue of pixel (x, y), each 0..255. The pictures are opaque, so Cairo's
  // premultiplied ARGB32/RGB24 words hold plain colours.
  void Rgb(int x, int y, int rgb[3]) const {
    const unsigned char* row =
        cairo_image_surface_get_data(surface_.get()) +
        static_cast<size_t>(y) * cairo_image_surface_get_stride(surface_.get());
    const uint32_t pixel = reinterpret_cast<const uint32_t*>(row)[x];
    rgb[0] = (pixel >> 16) & 0xFF;
    rgb[1] = (pixel >> 8) & 0xFF;
    rgb[2] = pixel & 0xFF;
  }

 private:
  std::unique_ptr<cairo_surface_t, decltype(&cairo_surface_destroy)> surface_;
};

// Pixel classes, loose enough not to depend on the exact shades.
using PixelClass = std::function<bool(const int rgb[3])>;
inline const PixelClass kDark = [](const int p[3]) { return p[0] < 90 && p[1] < 90 && p[2] < 90; };

// Whether pixel (x, y) of `picture` is of `pixel_class`.
inline bool Is(const Picture& picture, int x, int y, const PixelClass& pixel_class) {
  int rgb[3];
  picture.Rgb(x, y, rgb);
  return pixel_class(rgb);
}

// The x of every pixel of `pixel_class` on scanline `y`, left to right.
inline std::vector<int> Columns(const Picture& picture, int y, const PixelClass& pixel_class) {
  std::vector<int> columns;
  for (int x = 0; x < picture.width(); ++x) {
    if (Is(picture, x, y, pixel_class)) columns.push_back(x);
  }
  return columns;
}

// Every character of text (outside tags) in the XML file `path`; fails the test if the file is
// not well-formed XML.
inline std::string XmlText(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  const std::string xml((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  std::string text;
  const std::unique_ptr<XML_ParserStruct, decltype(&XML_ParserFree)> parser(
      XML_ParserCreate("UTF-8"), XML_ParserFree);
  XML_SetUserData(parser.get(), &text);
  XML_SetCharacterDataHandler(parser.get(), [](void* user_data, const XML_Char* data, int length) {
    static_cast<std::string*>(user_data)->append(data, length);
  });
  const XML_Status status =
      XML_Parse(parser.get(), xml.data(), static_cast<int>(xml.size()), /*isFinal=*/1);
  EXPECT_EQ(status, XML_STATUS_OK) << path << " line " << XML_GetCurrentLineNumber(parser.get())
                                   << ": " << XML_ErrorString(XML_GetErrorCode(parser.get()));
  return text;
}

// The first `count` bytes of the file `path`.
inline std::string FileHead(const std::string& path, size_t count) {
  std::ifstream file(path, std::ios::binary);
  std::string bytes(count, '\0');
  file.read(&bytes[0], static_cast<std::streamsize>(count));
  bytes.resize(static_cast<size_t>(file.gcount()));
  return bytes;
}

}  // namespace slim::testing
