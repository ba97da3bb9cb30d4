// Scatter plots of labelled points written as PNG or SVG files through Cairo, for reports that
// set one measure against others for a few items (e.g. the accuracy of each exported model
// against its measured latency and its file size).
#pragma once

#include <string>
#include <vector>

namespace slim::plot {

// One point: a text label (e.g. a file name such as "model_int8.pt") and its coordinates, which
// may be non-finite (the point is then not drawn).
struct Point {
  std::string label;
  double x;
  double y;
};

// One panel: its points against its own horizontal axis, titled `x_label` (e.g. "file size
// [KiB]"), linear or, with `log_x`, logarithmic (for values spanning orders of magnitude; only
// points with x > 0 can be drawn on it).
struct Panel {
  std::string x_label;
  std::vector<Point> points;
  bool log_x = false;
};

// Layout, in pixels (the SVG uses px units too). Below the top margin comes the title, then the
// row of plots (each kScatterPlotWidth × kScatterPlotHeight inside its frame, kScatterPanelGap
// apart, unless the title needs a wider figure, which widens every plot alike), then per panel
// the axis ticks and their labels, the axis label, a line for a note on points not shown, and
// the bottom margin. Left of the first plot are the vertical axis label (turned a quarter) and
// the tick labels; right of the last plot, kScatterPanelGap / 2 and the margin.
constexpr int kScatterMargin = 16;
constexpr int kScatterTitleHeight = 32;
constexpr int kScatterPlotWidth = 360;
constexpr int kScatterPlotHeight = 320;
constexpr int kScatterPanelGap = 32;
constexpr int kScatterAxisHeight = 24;
constexpr int kScatterAxisLabelHeight = 20;
constexpr int kScatterNoteHeight = 18;
// Point labels longer than this many bytes are shortened by replacing their middle with "...".
constexpr int kScatterMaxLabelLength = 40;

// Rows of the plots' top and bottom frame lines.
constexpr int ScatterPlotTop() { return kScatterMargin + kScatterTitleHeight; }
constexpr int ScatterPlotBottom() { return ScatterPlotTop() + kScatterPlotHeight; }
// Height of every scatter figure.
constexpr int ScatterFigureHeight() {
  return ScatterPlotBottom() + kScatterAxisHeight + kScatterAxisLabelHeight + kScatterNoteHeight +
         kScatterMargin;
}

// Writes `panels` side by side, left to right in the given order, sharing one vertical axis
// titled `y_label` (may be empty), under `title`, to `path` in the format its extension names
// (".png" or ".svg", any case), replacing any existing file atomically
// (files::WriteAtomically).
//
// Each drawable point (finite x and y, and x > 0 on a log_x panel) is a filled circle, coloured
// by its label (the same label has the same colour in every panel), with its label (elided to
// kScatterMaxLabelLength bytes, in a dark shade of the marker's colour) beside it: right of the
// marker where there is room, else left of it, else a line above or below, with a thin leader line
// when it ends up further away; labels stay inside the plot's frame and avoid other labels and
// markers where they can. Both axes are fitted to the drawable points with a small margin (the
// vertical one over all panels) and get ticks, grid lines and tick labels at round values: 1, 2 or
// 5 times a power of ten on a linear axis; powers of ten (every 2nd, 3rd, 5th... over many
// decades), else 1, 2 and 5 times them, else fewer round linear values on a log axis. Tick labels
// that would overlap or leave the panel's share of the width are left out. A panel without drawable
// points shows "no points" (none given) or "no points with finite values" in its plot; points that
// are not drawn are named under the panel's axis label
// ("not shown: ..."). Text is drawn with Cairo's "sans-serif" font (fontconfig must find one).
// An SVG also carries the title, the axis labels and every point with its values ("label: x =
// X, y = Y", "(not shown)" after those not drawn) as text, in its <title> and <desc> elements,
// so that it can be searched.
//
// Throws OutputError naming `path` when the title is empty, `panels` is empty, the extension is
// neither .png nor .svg, Cairo cannot draw the figure (a PNG is limited to 32767 pixels each
// way, i.e. about 80 panels; text must be UTF-8) or the file cannot be written.
// Thread safety: safe to call concurrently for different paths.
void WriteScatterPanels(const std::string& path, const std::string& title,
                        const std::string& y_label, const std::vector<Panel>& panels);

}  // namespace slim::plot
