// A hand-drawn 5×7 bitmap font for labelling pictures drawn on an RgbCanvas. It covers a-z,
// A-Z, 0-9, space and . , _ - + % : / ( ) = < > [ ] # *; any other byte is drawn as a small box.
#pragma once

#include <string>

#include "data/rgb_canvas.h"

namespace slim::data {

// Font pixels per glyph, and the horizontal step from one glyph to the next (one blank column).
constexpr int kGlyphWidth = 5;
constexpr int kGlyphHeight = 7;
constexpr int kGlyphAdvance = kGlyphWidth + 1;
// Font pixels from the top of a line of text to the bottom of its descenders: the glyphs of
// g j p q y are drawn one font pixel lower than the others.
constexpr int kTextLineHeight = kGlyphHeight + 1;

// Draws `text` one byte per glyph with the top-left corner of its line at (x, y), each font pixel
// as a scale × scale square of `colour`; only the glyphs' set pixels are touched, and those outside
// the canvas are skipped. REQUIRES: scale >= 1.
void DrawText(RgbCanvas& canvas, int x, int y, const std::string& text, const Rgb& colour,
              int scale);

// Width in pixels that DrawText advances over `text` at `scale`: kGlyphAdvance × scale per
// byte, the blank column after the last glyph included. The height is kTextLineHeight × scale.
int TextWidth(const std::string& text, int scale);

}  // namespace slim::data
