#include "crnn/train/report.h"

#include <fmt/core.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <numeric>
#include <regex>
#include <set>
#include <sstream>

#include "crnn/util/text.h"

namespace crnn::train {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Line colours: distinguishable, and legible when printed in grey.
const char* const kPalette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"};
const char* const kFont = "font-family=\"DejaVu Sans, Arial, Helvetica, sans-serif\"";

/// Escapes text for XML/HTML content and attribute values.
std::string esc(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

/// Coordinates with two decimals: exact enough for any screen, and short.
std::string px(double v) { return fmt::format("{:.2f}", v); }

/// Tick label with as many decimals as the step needs (0.25 → 2, 5 → 0).
std::string tick_text(double v, double step) {
  int decimals = std::max(0, static_cast<int>(std::ceil(-std::log10(step) - 1e-9)));
  if (std::abs(v) < step * 1e-6) v = 0;  // no "-0.0"
  return fmt::format("{:.{}f}", v, decimals);
}

std::string svg_open(double width, double height) {
  return fmt::format(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" "
      "viewBox=\"0 0 {0} {1}\" {2} font-size=\"12\">\n"
      "<rect x=\"0\" y=\"0\" width=\"{0}\" height=\"{1}\" fill=\"#ffffff\"/>\n",
      px(width), px(height), kFont);
}

std::string svg_title(const std::string& title, double width) {
  return fmt::format("<title>{0}</title>\n<text x=\"{1}\" y=\"24\" text-anchor=\"middle\" "
                     "font-size=\"15\" font-weight=\"bold\">{0}</text>\n",
                     esc(title), px(width / 2));
}

/// Linear map from an axis range onto a pixel interval.
struct Scale {
  double d0, d1, p0, p1;
  double operator()(double v) const { return p0 + (v - d0) / (d1 - d0) * (p1 - p0); }
};

std::vector<double> ticks_of(const NiceRange& r) {
  std::vector<double> t;
  const int n = static_cast<int>(std::round((r.hi - r.lo) / r.step));
  for (int i = 0; i <= n && i <= 100; ++i) t.push_back(r.lo + i * r.step);
  return t;
}

/// Step for a fixed range, so that explicit ranges get ticks too.
NiceRange fixed_range(const AxisRange& a, bool integer_step) {
  NiceRange n = nice_range(a.lo, a.hi, integer_step);
  n.lo = a.lo;
  n.hi = a.hi;
  return n;
}

/// Gridlines, tick labels and axis titles around the plot area.
std::string axes_svg(const Scale& xs, const Scale& ys, const std::vector<double>& xticks,
                     double xstep, const std::vector<double>& yticks, double ystep,
                     const std::string& x_label, const std::string& y_label) {
  std::string s = "<g class=\"axes\">\n";
  const double left = xs.p0, right = xs.p1, bottom = ys.p0, top = ys.p1;
  for (double t : yticks) {
    const double y = ys(t);
    s += fmt::format("<line x1=\"{0}\" y1=\"{2}\" x2=\"{1}\" y2=\"{2}\" stroke=\"#e3e3e3\"/>\n",
                     px(left), px(right), px(y));
    s += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n", px(left - 6),
                     px(y + 4), tick_text(t, ystep));
  }
  for (double t : xticks) {
    const double x = xs(t);
    s += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\" stroke=\"#f0f0f0\"/>\n",
                     px(x), px(top), px(bottom));
    s += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\" stroke=\"#444444\"/>\n",
                     px(x), px(bottom), px(bottom + 5));
    s += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n", px(x),
                     px(bottom + 18), tick_text(t, xstep));
  }
  s += fmt::format(
      "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#444444\"/>\n",
      px(left), px(top), px(right - left), px(bottom - top));
  s += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n",
                   px((left + right) / 2), px(bottom + 38), esc(x_label));
  const double cy = (top + bottom) / 2;
  s += fmt::format(
      "<text x=\"{0}\" y=\"{1}\" text-anchor=\"middle\" transform=\"rotate(-90 {0} {1})\">{2}"
      "</text>\n",
      px(left - 46), px(cy), esc(y_label));
  return s + "</g>\n";
}

std::string legend_svg(const std::vector<std::string>& names, double x, double y,
                       const std::vector<std::string>& styles) {
  std::string s = "<g class=\"legend\">\n";
  for (size_t i = 0; i < names.size(); ++i) {
    const double ly = y + 20.0 * static_cast<double>(i);
    s += fmt::format("<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" {}/>\n", px(x), px(ly),
                     px(x + 22), px(ly), styles[i]);
    s += fmt::format("<text x=\"{}\" y=\"{}\">{}</text>\n", px(x + 28), px(ly + 4), esc(names[i]));
  }
  return s + "</g>\n";
}

std::string no_data_svg(const Margins& m, double width, double height) {
  return fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#888888\">no data"
                     "</text>\n",
                     px((m.left + width - m.right) / 2), px((m.top + height - m.bottom) / 2));
}

}  // namespace

// ---------------------------------------------------------------------------
// Charts

NiceRange nice_range(double lo, double hi, bool integer_step) {
  if (!std::isfinite(lo) || !std::isfinite(hi)) return {0, 1, 0.2};
  if (lo > hi) std::swap(lo, hi);
  if (hi - lo < 1e-12) {  // one value: centre it in a range of sensible size
    const double pad = std::max(std::abs(lo) * 0.1, integer_step ? 1.0 : 1e-3);
    lo -= pad;
    hi += pad;
  }
  const double raw = (hi - lo) / 5;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double m = raw / mag;
  // The tolerance keeps 0.2/0.1 = 2.0000000000000004 at "2", not "5".
  double step = (m <= 1 + 1e-9 ? 1 : m <= 2 + 1e-9 ? 2 : m <= 5 + 1e-9 ? 5 : 10) * mag;
  if (integer_step) step = std::max(step, 1.0);
  return {std::floor(lo / step + 1e-9) * step, std::ceil(hi / step - 1e-9) * step, step};
}

std::string line_chart_svg(const LineChart& c) {
  const Margins& m = c.margins;
  std::string s = svg_open(c.width, c.height) + svg_title(c.title, c.width);

  double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
  for (const auto& ser : c.series) {
    for (size_t i = 0; i < std::min(ser.x.size(), ser.y.size()); ++i) {
      if (!std::isfinite(ser.x[i]) || !std::isfinite(ser.y[i])) continue;
      xmin = std::min(xmin, ser.x[i]);
      xmax = std::max(xmax, ser.x[i]);
      ymin = std::min(ymin, ser.y[i]);
      ymax = std::max(ymax, ser.y[i]);
    }
  }
  const bool has_data = std::isfinite(xmin);
  if (!has_data) {
    xmin = 0, xmax = 1, ymin = 0, ymax = 1;
  }
  const NiceRange xr = c.x_range ? fixed_range(*c.x_range, c.integer_x)
                                 : nice_range(xmin, xmax, c.integer_x);
  const NiceRange yr = c.y_range ? fixed_range(*c.y_range, false) : nice_range(ymin, ymax);
  const Scale xs{xr.lo, xr.hi, m.left, c.width - m.right};
  const Scale ys{yr.lo, yr.hi, c.height - m.bottom, m.top};
  s += axes_svg(xs, ys, ticks_of(xr), xr.step, ticks_of(yr), yr.step, c.x_label, c.y_label);
  if (!has_data) s += no_data_svg(m, c.width, c.height);

  std::vector<std::string> names, styles;
  for (size_t k = 0; k < c.series.size(); ++k) {
    const auto& ser = c.series[k];
    const char* colour = kPalette[k % std::size(kPalette)];
    std::vector<std::pair<double, double>> pts;
    for (size_t i = 0; i < std::min(ser.x.size(), ser.y.size()); ++i)
      if (std::isfinite(ser.x[i]) && std::isfinite(ser.y[i])) pts.emplace_back(xs(ser.x[i]), ys(ser.y[i]));
    std::string points;
    for (const auto& [x, y] : pts) points += (points.empty() ? "" : " ") + px(x) + "," + px(y);
    s += fmt::format("<polyline class=\"series\" data-series=\"{}\" points=\"{}\" fill=\"none\" "
                     "stroke=\"{}\" stroke-width=\"2\" stroke-linejoin=\"round\"/>\n",
                     esc(ser.name), points, colour);
    // Dots show where the epochs are while they are few, and make a lone
    // point (a one-epoch run) visible at all.
    if (pts.size() <= 40)
      for (const auto& [x, y] : pts)
        s += fmt::format("<circle cx=\"{}\" cy=\"{}\" r=\"2.5\" fill=\"{}\"/>\n", px(x), px(y),
                         colour);
    names.push_back(ser.name);
    styles.push_back(fmt::format("stroke=\"{}\" stroke-width=\"2\"", colour));
  }

  if (c.marker_x && std::isfinite(*c.marker_x) && *c.marker_x >= xr.lo && *c.marker_x <= xr.hi) {
    const double x = xs(*c.marker_x);
    s += fmt::format("<line class=\"marker\" x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\" "
                     "stroke=\"#555555\" stroke-width=\"1.5\" stroke-dasharray=\"6 4\"/>\n",
                     px(x), px(m.top), px(c.height - m.bottom));
    if (!c.marker_label.empty()) {
      names.push_back(c.marker_label);
      styles.push_back("stroke=\"#555555\" stroke-width=\"1.5\" stroke-dasharray=\"6 4\"");
    }
  }
  s += legend_svg(names, c.width - m.right + 14, m.top + 8, styles);
  return s + "</svg>\n";
}

std::string bar_chart_svg(const BarChart& c) {
  const Margins& m = c.margins;
  std::string s = svg_open(c.width, c.height) + svg_title(c.title, c.width);
  double ymax = 0, ymin = 0;  // bars start at zero
  for (double v : c.values)
    if (std::isfinite(v)) ymax = std::max(ymax, v), ymin = std::min(ymin, v);
  const bool band = c.band_mean && std::isfinite(*c.band_mean);
  const double sd = c.band_std && std::isfinite(*c.band_std) ? *c.band_std : 0.0;
  if (band) ymax = std::max(ymax, *c.band_mean + sd);
  if (ymax <= ymin) ymax = ymin + 1;
  const NiceRange yr = nice_range(ymin, ymax);
  const size_t n = c.categories.size();
  const Scale ys{yr.lo, yr.hi, c.height - m.bottom, m.top};
  const double left = m.left, right = c.width - m.right;
  const double slot = n ? (right - left) / static_cast<double>(n) : right - left;

  // Category axis: ticks at slot centres, drawn here rather than by axes_svg.
  s += axes_svg(Scale{0, 1, left, right}, ys, {}, 1, ticks_of(yr), yr.step, c.x_label, c.y_label);
  std::vector<std::string> names, styles;
  if (band) {
    s += fmt::format("<rect class=\"band\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" "
                     "fill=\"#ff7f0e\" fill-opacity=\"0.18\"/>\n",
                     px(left), px(ys(*c.band_mean + sd)), px(right - left),
                     px(ys(*c.band_mean - sd) - ys(*c.band_mean + sd)));
    s += fmt::format("<line class=\"mean\" x1=\"{0}\" y1=\"{2}\" x2=\"{1}\" y2=\"{2}\" "
                     "stroke=\"#ff7f0e\" stroke-width=\"2\" stroke-dasharray=\"6 4\"/>\n",
                     px(left), px(right), px(ys(*c.band_mean)));
    names.push_back(c.band_label.empty() ? "mean ± std" : c.band_label);
    styles.push_back("stroke=\"#ff7f0e\" stroke-width=\"8\" stroke-opacity=\"0.5\"");
  }
  for (size_t i = 0; i < n; ++i) {
    const double cx = left + slot * (static_cast<double>(i) + 0.5);
    s += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n", px(cx),
                     px(c.height - m.bottom + 18), esc(c.categories[i]));
    const double v = i < c.values.size() ? c.values[i] : kNaN;
    if (!std::isfinite(v)) continue;
    const double w = std::min(slot * 0.6, 60.0);
    const double y0 = ys(std::max(0.0, yr.lo)), y1 = ys(v);
    s += fmt::format("<rect class=\"bar\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" "
                     "fill=\"#1f77b4\"/>\n",
                     px(cx - w / 2), px(std::min(y0, y1)), px(w), px(std::abs(y0 - y1)));
    s += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"11\">{}</text>\n",
                     px(cx), px(std::min(y0, y1) - 4), fmt::format("{:.1f}", v));
  }
  if (!names.empty()) s += legend_svg(names, right + 14, m.top + 8, styles);
  return s + "</svg>\n";
}

std::string grouped_bar_chart_svg(const GroupedBarChart& c) {
  const Margins& m = c.margins;
  std::string s = svg_open(c.width, c.height) + svg_title(c.title, c.width);
  auto at = [](const std::vector<std::vector<double>>& v, size_t i, size_t g) {
    return i < v.size() && g < v[i].size() ? v[i][g] : kNaN;
  };
  double ymax = 0;  // bars start at zero
  for (size_t i = 0; i < c.series.size(); ++i)
    for (size_t g = 0; g < c.groups.size(); ++g) {
      const double v = at(c.values, i, g), e = at(c.errors, i, g);
      if (std::isfinite(v)) ymax = std::max(ymax, v + (std::isfinite(e) ? std::abs(e) : 0.0));
    }
  for (double r : c.reference)
    if (std::isfinite(r)) ymax = std::max(ymax, r);
  const NiceRange yr = nice_range(0, ymax > 0 ? ymax : 1);
  const Scale ys{yr.lo, yr.hi, c.height - m.bottom, m.top};
  const double left = m.left, right = c.width - m.right;
  const double slot = c.groups.empty() ? right - left : (right - left) / static_cast<double>(c.groups.size());
  const double bar = c.series.empty() ? 0 : slot * 0.8 / static_cast<double>(c.series.size());
  s += axes_svg(Scale{0, 1, left, right}, ys, {}, 1, ticks_of(yr), yr.step, c.x_label, c.y_label);
  std::vector<std::string> styles;
  for (size_t i = 0; i < c.series.size(); ++i)
    styles.push_back(fmt::format("stroke=\"{}\" stroke-width=\"10\"", kPalette[i % std::size(kPalette)]));
  for (size_t g = 0; g < c.groups.size(); ++g) {
    const double x0 = left + slot * static_cast<double>(g) + slot * 0.1;
    s += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n", px(x0 + slot * 0.4),
                     px(c.height - m.bottom + 18), esc(c.groups[g]));
    for (size_t i = 0; i < c.series.size(); ++i) {
      const double v = at(c.values, i, g);
      if (!std::isfinite(v)) continue;
      const double x = x0 + bar * static_cast<double>(i);
      const double y0 = ys(0), y1 = ys(v);
      s += fmt::format("<rect class=\"bar\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\">"
                       "<title>{}, {}: {:.2f}</title></rect>\n",
                       px(x), px(std::min(y0, y1)), px(bar * 0.9), px(std::abs(y0 - y1)),
                       kPalette[i % std::size(kPalette)], esc(c.series[i]), esc(c.groups[g]), v);
      const double e = at(c.errors, i, g);
      if (std::isfinite(e) && e > 0) {
        const double cx = x + bar * 0.45, w = std::min(bar * 0.25, 6.0);
        s += fmt::format("<path class=\"error\" d=\"M{0} {1}V{2}M{3} {1}H{4}M{3} {2}H{4}\" stroke=\"#222222\" "
                         "fill=\"none\"/>\n",
                         px(cx), px(ys(v + e)), px(ys(std::max(0.0, v - e))), px(cx - w), px(cx + w));
      }
    }
  }
  std::vector<std::string> names = c.series;
  bool any_reference = false;
  for (size_t g = 0; g < c.groups.size() && g < c.reference.size(); ++g) {
    if (!std::isfinite(c.reference[g])) continue;
    any_reference = true;
    const double x0 = left + slot * static_cast<double>(g) + slot * 0.05;
    s += fmt::format("<line class=\"reference\" x1=\"{0}\" y1=\"{2}\" x2=\"{1}\" y2=\"{2}\" stroke=\"#222222\" "
                     "stroke-width=\"1.5\" stroke-dasharray=\"5 4\"/>\n",
                     px(x0), px(x0 + slot * 0.9), px(ys(c.reference[g])));
  }
  if (any_reference) {
    names.push_back(c.reference_label);
    styles.push_back("stroke=\"#222222\" stroke-width=\"1.5\" stroke-dasharray=\"5 4\"");
  }
  if (!names.empty()) s += legend_svg(names, right + 14, m.top + 8, styles);
  return s + "</svg>\n";
}

std::string heatmap_svg(const Heatmap& h) {
  const size_t n = h.labels.size();
  size_t longest = 4;
  for (const auto& l : h.labels) longest = std::max(longest, l.size());
  // Room for the class names: ~7 px per character at 12 px, rotated 45° below.
  const double label_w = 7.0 * static_cast<double>(longest) + 12;
  const double cell = n <= 6 ? 64 : n <= 12 ? 54 : 40;
  const double left = 40 + label_w, top = 48;
  const double grid = cell * static_cast<double>(n);
  const double width = std::max(left + grid + 90, 360.0);
  const double height = top + grid + label_w * 0.75 + 40;
  std::string s = svg_open(width, height) + svg_title(h.title, width);

  for (size_t r = 0; r < n; ++r) {
    int64_t row_total = 0;
    for (size_t c = 0; c < n && r < h.counts.size() && c < h.counts[r].size(); ++c)
      row_total += h.counts[r][c];
    const double ry = top + cell * static_cast<double>(r);
    for (size_t c = 0; c < n; ++c) {
      const int64_t count = r < h.counts.size() && c < h.counts[r].size() ? h.counts[r][c] : 0;
      const double frac = row_total > 0 ? static_cast<double>(count) / row_total : kNaN;
      const double cx = left + cell * static_cast<double>(c);
      // White → dark blue; rows with no examples stay grey.
      std::string fill = "#eeeeee";
      if (std::isfinite(frac)) {
        auto mix = [&](int a, int b) { return static_cast<int>(std::lround(a + (b - a) * frac)); };
        fill = fmt::format("#{:02x}{:02x}{:02x}", mix(255, 8), mix(255, 48), mix(255, 107));
      }
      const char* ink = std::isfinite(frac) && frac > 0.5 ? "#ffffff" : "#222222";
      s += fmt::format("<g class=\"cell\" data-row=\"{}\" data-col=\"{}\">\n", r, c);
      s += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\" "
                       "stroke=\"#ffffff\"/>\n",
                       px(cx), px(ry), px(cell), px(cell), fill);
      s += fmt::format("<text class=\"count\" x=\"{}\" y=\"{}\" text-anchor=\"middle\" "
                       "fill=\"{}\" font-weight=\"{}\">{}</text>\n",
                       px(cx + cell / 2), px(ry + cell / 2 - 2), ink, r == c ? "bold" : "normal",
                       count);
      s += fmt::format("<text class=\"percent\" x=\"{}\" y=\"{}\" text-anchor=\"middle\" "
                       "fill=\"{}\" font-size=\"10\">{}</text>\n",
                       px(cx + cell / 2), px(ry + cell / 2 + 12), ink,
                       std::isfinite(frac) ? fmt::format("{:.0f}%", 100 * frac) : "–");
      s += "</g>\n";
    }
  }
  // Class names: rows on the left, columns below (rotated so long names fit).
  for (size_t i = 0; i < n; ++i) {
    const double mid = cell * (static_cast<double>(i) + 0.5);
    s += fmt::format("<text class=\"row-label\" x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n",
                     px(left - 6), px(top + mid + 4), esc(h.labels[i]));
    const double lx = left + mid, ly = top + grid + 10;
    s += fmt::format("<text class=\"col-label\" x=\"{0}\" y=\"{1}\" text-anchor=\"end\" "
                     "transform=\"rotate(-45 {0} {1})\">{2}</text>\n",
                     px(lx), px(ly), esc(h.labels[i]));
  }
  s += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n",
                   px(left + grid / 2), px(height - 10), esc(h.x_label));
  s += fmt::format(
      "<text x=\"14\" y=\"{0}\" text-anchor=\"middle\" transform=\"rotate(-90 14 {0})\">{1}</text>\n",
      px(top + grid / 2), esc(h.y_label));
  // Colour key.
  const double kx = left + grid + 24;
  s += "<defs><linearGradient id=\"key\" x1=\"0\" y1=\"1\" x2=\"0\" y2=\"0\">"
       "<stop offset=\"0\" stop-color=\"#ffffff\"/><stop offset=\"1\" stop-color=\"#08306b\"/>"
       "</linearGradient></defs>\n";
  s += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"14\" height=\"{}\" fill=\"url(#key)\" "
                   "stroke=\"#888888\"/>\n",
                   px(kx), px(top), px(grid));
  s += fmt::format("<text x=\"{}\" y=\"{}\" font-size=\"10\">100%</text>\n", px(kx + 18),
                   px(top + 8));
  s += fmt::format("<text x=\"{}\" y=\"{}\" font-size=\"10\">0%</text>\n", px(kx + 18),
                   px(top + grid));
  s += fmt::format("<text x=\"{0}\" y=\"{1}\" font-size=\"10\" text-anchor=\"middle\" "
                   "transform=\"rotate(90 {0} {1})\">of true class</text>\n",
                   px(kx + 52), px(top + grid / 2));
  return s + "</svg>\n";
}

// ---------------------------------------------------------------------------
// Run files

namespace {

// metrics.csv cells and lines: line ends included (files written on Windows).
std::string trim(const std::string& s) { return crnn::trim(s, " \t\r\n"); }

std::vector<std::string> split_commas(const std::string& line) {
  std::vector<std::string> cells;
  std::stringstream ss(line);
  std::string cell;
  while (std::getline(ss, cell, ',')) cells.push_back(trim(cell));
  if (!line.empty() && line.back() == ',') cells.emplace_back();
  return cells;
}

/// A CSV cell as a number: empty (or "nan") is NaN, anything else must parse whole.
bool parse_cell(const std::string& cell, double& out) {
  if (cell.empty()) {
    out = kNaN;
    return true;
  }
  char* end = nullptr;
  errno = 0;
  out = std::strtod(cell.c_str(), &end);
  return end == cell.c_str() + cell.size() && errno != ERANGE;
}

const char* const kMetricColumns[] = {"epoch",  "train_loss",    "val_loss",    "val_ua_recall",
                                      "val_wa", "epoch_seconds", "frames_per_s"};

json load_json(const std::string& path) {
  if (fs::is_directory(path)) throw ReportError(path + ": is a directory, not a file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ReportError(path + ": cannot open");
  json j;
  try {
    j = json::parse(in);
  } catch (const json::parse_error& e) {
    throw ReportError(fmt::format("{}: malformed JSON: {}", path, e.what()));
  }
  if (!j.is_object()) throw ReportError(path + ": expected a JSON object");
  return j;
}

/// Typed access to one key of a JSON object, with errors naming file and key.
class JsonFields {
 public:
  JsonFields(const json& j, std::string path) : j_(j), path_(std::move(path)) {}

  /// A number; absent or null is NaN unless `required`.
  double number(const char* key, bool required = false) const {
    const json* v = find(key, required);
    if (!v || v->is_null()) return kNaN;
    if (!v->is_number()) fail(key, "a number");
    return v->get<double>();
  }
  int64_t integer(const char* key, bool required = false) const {
    const json* v = find(key, required);
    if (!v || v->is_null()) return 0;
    if (!v->is_number() || v->get<double>() != std::floor(v->get<double>())) fail(key, "an integer");
    return v->get<int64_t>();
  }
  std::string string(const char* key, bool required = false) const {
    const json* v = find(key, required);
    if (!v || v->is_null()) return "";
    if (!v->is_string()) fail(key, "a string");
    return v->get<std::string>();
  }
  std::vector<std::string> strings(const char* key, bool required = false) const {
    const json* v = find(key, required);
    std::vector<std::string> out;
    if (!v || v->is_null()) return out;
    if (!v->is_array()) fail(key, "an array of strings");
    for (const auto& e : *v) {
      if (!e.is_string()) fail(key, "an array of strings");
      out.push_back(e.get<std::string>());
    }
    return out;
  }
  std::vector<double> numbers(const char* key) const {
    const json* v = find(key, false);
    std::vector<double> out;
    if (!v || v->is_null()) return out;
    if (!v->is_array()) fail(key, "an array of numbers");
    for (const auto& e : *v) {
      if (e.is_null()) {
        out.push_back(kNaN);  // a class absent from the split has no recall
      } else if (e.is_number()) {
        out.push_back(e.get<double>());
      } else {
        fail(key, "an array of numbers");
      }
    }
    return out;
  }
  std::vector<std::vector<int64_t>> count_matrix(const char* key, size_t n) const {
    const json* v = find(key, true);
    const std::string what = fmt::format("a {0}×{0} array of counts (one row per label)", n);
    if (!v->is_array() || v->size() != n) fail(key, what);
    std::vector<std::vector<int64_t>> out;
    for (const auto& row : *v) {
      if (!row.is_array() || row.size() != n) fail(key, what);
      auto& r = out.emplace_back();
      for (const auto& e : row) {
        if (!e.is_number_integer() || e.get<int64_t>() < 0) fail(key, what);
        r.push_back(e.get<int64_t>());
      }
    }
    return out;
  }
  const json& raw(const char* key) const { return *find(key, true); }

  [[noreturn]] void fail(const std::string& key, const std::string& expected) const {
    throw ReportError(fmt::format("{}: \"{}\" must be {}", path_, key, expected));
  }

 private:
  const json* find(const char* key, bool required) const {
    auto it = j_.find(key);
    if (it == j_.end()) {
      if (required) throw ReportError(fmt::format("{}: missing \"{}\"", path_, key));
      return nullptr;
    }
    return &*it;
  }
  const json& j_;
  std::string path_;
};

}  // namespace

std::vector<EpochMetrics> read_metrics_csv(const std::string& path) {
  if (fs::is_directory(path)) throw ReportError(path + ": is a directory, not a file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ReportError(path + ": cannot open");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> lines;
  {
    std::stringstream ss(text);
    for (std::string l; std::getline(ss, l);) lines.push_back(l);
  }
  const bool last_complete = text.empty() || text.back() == '\n';
  if (lines.empty()) throw ReportError(path + ":1: empty file (expected a header line)");
  std::string head = lines[0];
  if (head.rfind("\xEF\xBB\xBF", 0) == 0) head.erase(0, 3);
  const auto header = split_commas(trim(head));
  size_t col[std::size(kMetricColumns)];
  std::string expected;
  for (const char* name : kMetricColumns) expected += (expected.empty() ? "" : ",") + std::string(name);
  for (size_t k = 0; k < std::size(kMetricColumns); ++k) {
    auto it = std::find(header.begin(), header.end(), kMetricColumns[k]);
    if (it == header.end())
      throw ReportError(fmt::format("{}:1: header has no \"{}\" column (expected {})", path,
                                    kMetricColumns[k], expected));
    col[k] = static_cast<size_t>(it - header.begin());
  }

  std::vector<EpochMetrics> rows;
  for (size_t i = 1; i < lines.size(); ++i) {
    const std::string line = trim(lines[i]);
    if (line.empty()) continue;
    const size_t lineno = i + 1;
    const bool being_written = i + 1 == lines.size() && !last_complete;
    const auto cells = split_commas(line);
    double v[std::size(kMetricColumns)];
    std::string problem;
    if (cells.size() != header.size()) {
      problem = fmt::format("expected {} cells, found {}", header.size(), cells.size());
    } else {
      for (size_t k = 0; k < std::size(kMetricColumns) && problem.empty(); ++k)
        if (!parse_cell(cells[col[k]], v[k]))
          problem = fmt::format("{} \"{}\" is not a number", kMetricColumns[k], cells[col[k]]);
      // (1e9 bounds the epoch so that the cast below is defined: 1e300 is no epoch.)
      if (problem.empty() && (!std::isfinite(v[0]) || v[0] != std::floor(v[0]) || std::abs(v[0]) > 1e9))
        problem = fmt::format("epoch \"{}\" is not a whole number of magnitude at most 10^9", cells[col[0]]);
      // Values `crnn train` cannot write: a damaged or hand-edited file, which
      // would otherwise be drawn as a chart from -560 % to -440 %. (An empty cell
      // is a value not measured.)
      else if (problem.empty() && (v[0] < 1 || (!rows.empty() && v[0] <= static_cast<double>(rows.back().epoch))))
        problem = fmt::format("epoch {} does not follow epoch {}", cells[col[0]],
                              rows.empty() ? std::string("0 (epochs start at 1)") : std::to_string(rows.back().epoch));
      for (size_t k : {size_t{3}, size_t{4}})  // val_ua_recall, val_wa: fractions
        if (problem.empty() && !cells[col[k]].empty() && !(v[k] >= 0.0 && v[k] <= 1.0))
          problem = fmt::format("{} {} is not a fraction in [0, 1]", kMetricColumns[k], cells[col[k]]);
      for (size_t k : {size_t{1}, size_t{2}, size_t{5}, size_t{6}})  // losses, seconds, frames/s
        if (problem.empty() && !cells[col[k]].empty() && !(v[k] >= 0.0))
          problem = fmt::format("{} {} is negative or not a number", kMetricColumns[k], cells[col[k]]);
    }
    if (!problem.empty()) {
      if (being_written) break;  // `crnn train` is appending this row right now
      throw ReportError(fmt::format("{}:{}: {}", path, lineno, problem));
    }
    rows.push_back({static_cast<int64_t>(v[0]), v[1], v[2], v[3], v[4], v[5], v[6]});
  }
  return rows;
}

RunSummary read_summary_json(const std::string& path) {
  const json j = load_json(path);
  const JsonFields f(j, path);
  RunSummary s;
  s.best_epoch = f.integer("best_epoch");
  s.epochs_run = f.integer("epochs_run");
  s.val_ua_recall = f.number("val_ua_recall");
  s.test_ua_recall = f.number("test_ua_recall");
  s.test_wa = f.number("test_wa");
  s.wall_seconds = f.number("wall_seconds");
  s.task = f.string("task");
  s.labels = f.strings("labels");
  return s;
}

EvalResult read_eval_json(const std::string& path) {
  const json j = load_json(path);
  const JsonFields f(j, path);
  EvalResult e;
  e.split = f.string("split");
  e.task = f.string("task");
  e.labels = f.strings("labels", /*required=*/true);
  e.ua_recall = f.number("ua_recall");
  e.wa = f.number("wa");
  e.per_class_recall = f.numbers("per_class_recall");
  e.confusion = f.count_matrix("confusion", e.labels.size());
  e.count = f.integer("count");
  if (!j.contains("count")) {
    for (const auto& r : e.confusion) e.count += std::accumulate(r.begin(), r.end(), int64_t{0});
  }
  return e;
}

RepeatSummary read_repeat_json(const std::string& path) {
  const json j = load_json(path);
  const JsonFields f(j, path);
  RepeatSummary r;
  const json& runs = f.raw("runs");
  if (!runs.is_array()) f.fail("runs", "an array of objects");
  for (size_t i = 0; i < runs.size(); ++i) {
    if (!runs[i].is_object()) f.fail("runs", "an array of objects");
    const JsonFields rf(runs[i], fmt::format("{}: runs[{}]", path, i));
    RepeatRun run;
    run.seed = static_cast<uint64_t>(rf.integer("seed"));
    run.dir = rf.string("dir");
    run.test_ua_recall = rf.number("test_ua_recall");
    run.test_wa = rf.number("test_wa");
    r.runs.push_back(run);
  }
  r.test_ua_recall_mean = f.number("test_ua_recall_mean");
  r.test_ua_recall_std = f.number("test_ua_recall_std");
  r.test_wa_mean = f.number("test_wa_mean");
  r.test_wa_std = f.number("test_wa_std");
  return r;
}

// ---------------------------------------------------------------------------
// Report

namespace {

/// Everything the report shows about one run, read before anything is written
/// so that a bad input file leaves no half-written report behind.
struct RunData {
  fs::path dir;
  std::vector<EpochMetrics> metrics;
  std::optional<RunSummary> summary;  // absent while `crnn train` is running
  std::vector<EvalResult> evals;
};

/// "seed_2" < "seed_10": digit runs compare as numbers.
bool natural_less(const std::string& a, const std::string& b) {
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    if (std::isdigit(static_cast<unsigned char>(a[i])) && std::isdigit(static_cast<unsigned char>(b[j]))) {
      size_t ie = i, je = j;
      while (ie < a.size() && std::isdigit(static_cast<unsigned char>(a[ie]))) ++ie;
      while (je < b.size() && std::isdigit(static_cast<unsigned char>(b[je]))) ++je;
      const std::string na = a.substr(i, ie - i), nb = b.substr(j, je - j);
      const auto za = na.find_first_not_of('0'), zb = nb.find_first_not_of('0');
      const std::string ta = za == std::string::npos ? "" : na.substr(za);
      const std::string tb = zb == std::string::npos ? "" : nb.substr(zb);
      if (ta.size() != tb.size()) return ta.size() < tb.size();
      if (ta != tb) return ta < tb;
      i = ie, j = je;
    } else {
      if (a[i] != b[j]) return a[i] < b[j];
      ++i, ++j;
    }
  }
  return a.size() - i < b.size() - j;
}

RunData load_run(const fs::path& dir) {
  RunData run;
  run.dir = dir;
  run.metrics = read_metrics_csv((dir / "metrics.csv").string());
  if (fs::exists(dir / "summary.json")) run.summary = read_summary_json((dir / "summary.json").string());
  std::vector<fs::path> evals;
  static const std::regex kEval("eval_(.+)\\.json");
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file() && std::regex_match(e.path().filename().string(), kEval))
      evals.push_back(e.path());
  std::sort(evals.begin(), evals.end(), [](const fs::path& a, const fs::path& b) {
    return natural_less(a.filename().string(), b.filename().string());
  });
  for (const auto& p : evals) {
    EvalResult e = read_eval_json(p.string());
    if (e.split.empty()) {  // fall back to the split named by the file
      const std::string name = p.stem().string();
      e.split = name.substr(5);
    }
    run.evals.push_back(std::move(e));
  }
  return run;
}

/// The directory's own name, also for "." and "runs/x/".
std::string base_name(const fs::path& dir) {
  fs::path p = fs::absolute(dir).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  return p.filename().string();
}

/// A name safe in a file name and an unescaped relative URL.
std::string safe_name(const std::string& s) {
  std::string out;
  for (char c : s) out += std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' ? c : '_';
  return out.empty() ? "_" : out;
}

std::string pct(double v) { return std::isfinite(v) ? fmt::format("{:.1f}%", 100 * v) : "—"; }

std::string mean_std_pct(double mean, double sd) {
  if (!std::isfinite(mean)) return "—";
  return std::isfinite(sd) ? fmt::format("{:.1f}% ± {:.1f}", 100 * mean, 100 * sd) : pct(mean);
}

void write_text(const fs::path& path, const std::string& text, std::vector<std::string>& written) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  out.close();
  if (!out) throw ReportError(path.string() + ": cannot write");
  written.push_back(path.string());
}

/// `<a><img></a>` for an SVG at a path relative to index.html.
std::string figure(const std::string& rel, const std::string& alt) {
  return fmt::format("<figure><a href=\"{0}\"><img src=\"{0}\" alt=\"{1}\"></a>"
                     "<figcaption><a href=\"{0}\">{0}</a></figcaption></figure>\n",
                     esc(rel), esc(alt));
}

std::string table_row(const std::string& key, const std::string& value) {
  return fmt::format("<tr><th>{}</th><td>{}</td></tr>\n", esc(key), esc(value));
}

/// Writes one run's SVGs into `out` (a folder that is `prefix` relative to
/// index.html) and returns its HTML section.
std::string render_run(const RunData& run, const std::string& heading, const std::string& anchor,
                       const fs::path& out, const std::string& prefix,
                       std::vector<std::string>& written) {
  fs::create_directories(out);
  std::string h = fmt::format("<section id=\"{}\">\n<h2>{}</h2>\n", esc(anchor), esc(heading));
  h += fmt::format("<p class=\"path\">{}</p>\n", esc(run.dir.string()));

  // Best epoch: the summary's choice; while training, the best so far.
  std::optional<int64_t> best;
  std::string best_label = "best epoch";
  if (run.summary && run.summary->best_epoch > 0) {
    best = run.summary->best_epoch;
  } else {
    double top = -INFINITY;
    for (const auto& m : run.metrics)
      if (std::isfinite(m.val_ua_recall) && m.val_ua_recall > top) top = m.val_ua_recall, best = m.epoch;
    best_label = "best so far";
  }

  h += "<table class=\"summary\">\n";
  if (run.summary) {
    const RunSummary& s = *run.summary;
    if (!s.task.empty()) h += table_row("task", s.task);
    h += table_row("epochs run", std::to_string(s.epochs_run));
    h += table_row("best epoch", s.best_epoch > 0 ? std::to_string(s.best_epoch) : "—");
    h += table_row("validation UA recall", pct(s.val_ua_recall));
    h += table_row("test UA recall", pct(s.test_ua_recall));
    h += table_row("test WA", pct(s.test_wa));
    if (std::isfinite(s.wall_seconds))
      h += table_row("wall time", fmt::format("{:.1f} min", s.wall_seconds / 60));
    if (!s.labels.empty()) {
      std::string labels;
      for (const auto& l : s.labels) labels += (labels.empty() ? "" : ", ") + l;
      h += table_row(fmt::format("classes ({})", s.labels.size()), labels);
    }
  } else {
    h += table_row("summary", "no summary.json yet (training still running?)");
    h += table_row("epochs so far", std::to_string(run.metrics.size()));
    if (best) h += table_row("best epoch so far", std::to_string(*best));
  }
  for (const auto& e : run.evals)
    h += table_row(fmt::format("{} ({} examples)", e.split, e.count),
                   fmt::format("UA recall {}, WA {}", pct(e.ua_recall), pct(e.wa)));
  h += "</table>\n";

  if (run.metrics.empty()) {
    h += "<p class=\"empty\">no epochs yet</p>\n";
  } else {
    std::vector<double> epoch, tl, vl, ua, wa;
    for (const auto& m : run.metrics) {
      epoch.push_back(static_cast<double>(m.epoch));
      tl.push_back(m.train_loss);
      vl.push_back(m.val_loss);
      ua.push_back(100 * m.val_ua_recall);
      wa.push_back(100 * m.val_wa);
    }
    LineChart loss;
    loss.title = "Loss per epoch";
    loss.x_label = "epoch";
    loss.y_label = "cross-entropy";
    loss.integer_x = true;
    loss.series = {{"train loss", epoch, tl}, {"validation loss", epoch, vl}};
    if (best) loss.marker_x = static_cast<double>(*best), loss.marker_label = fmt::format("{} {}", best_label, *best);
    write_text(out / "loss.svg", line_chart_svg(loss), written);

    LineChart rec;
    rec.title = "Validation recall per epoch";
    rec.x_label = "epoch";
    rec.y_label = "%";
    rec.integer_x = true;
    rec.series = {{"UA recall", epoch, ua}, {"WA (accuracy)", epoch, wa}};
    if (best) rec.marker_x = static_cast<double>(*best), rec.marker_label = fmt::format("{} {}", best_label, *best);
    write_text(out / "recall.svg", line_chart_svg(rec), written);

    h += "<div class=\"figures\">\n" + figure(prefix + "loss.svg", heading + ": loss") +
         figure(prefix + "recall.svg", heading + ": validation recall") + "</div>\n";
  }

  if (!run.evals.empty()) {
    h += "<div class=\"figures\">\n";
    for (const auto& e : run.evals) {
      Heatmap map;
      map.title = fmt::format("{} — UA recall {}, WA {}", e.split, pct(e.ua_recall), pct(e.wa));
      map.labels = e.labels;
      map.counts = e.confusion;
      const std::string name = "confusion_" + safe_name(e.split) + ".svg";
      write_text(out / name, heatmap_svg(map), written);
      h += figure(prefix + name, heading + ": confusion on " + e.split);
    }
    h += "</div>\n";
  }
  return h + "</section>\n";
}

const char* const kStyle = R"(
body { font-family: "DejaVu Sans", Arial, Helvetica, sans-serif; margin: 2em auto; max-width: 1400px; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 2em; }
.path { color: #666; font-family: monospace; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ddd; padding: .3em .8em; text-align: left; }
th { background: #f5f5f5; font-weight: normal; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.figures { display: flex; flex-wrap: wrap; gap: 1em; align-items: flex-start; }
figure { margin: 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: .8em; color: #666; }
.empty { font-style: italic; color: #a00; }
nav a { margin-right: 1em; }
)";

std::string page(const std::string& title, const std::string& body) {
  return fmt::format("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                     "<title>{0}</title>\n<style>{1}</style>\n</head>\n<body>\n<h1>{0}</h1>\n{2}"
                     "</body>\n</html>\n",
                     esc(title), kStyle, body);
}

double mean_of(const std::vector<double>& v) {
  double sum = 0;
  size_t n = 0;
  for (double x : v)
    if (std::isfinite(x)) sum += x, ++n;
  return n ? sum / static_cast<double>(n) : kNaN;
}

/// Sample standard deviation (n − 1), as `crnn repeat` reports it.
double std_of(const std::vector<double>& v) {
  const double m = mean_of(v);
  double ss = 0;
  size_t n = 0;
  for (double x : v)
    if (std::isfinite(x)) ss += (x - m) * (x - m), ++n;
  return n > 1 ? std::sqrt(ss / static_cast<double>(n - 1)) : kNaN;
}

}  // namespace

std::vector<std::string> write_report(const std::string& dir_arg, const std::string& out_arg,
                                      std::vector<std::string>* skipped) {
  const fs::path dir(dir_arg);
  std::error_code ec;
  if (!fs::exists(dir, ec)) throw ReportError(dir_arg + ": no such directory");
  if (!fs::is_directory(dir, ec)) throw ReportError(dir_arg + ": not a directory");
  const fs::path out(out_arg);
  std::vector<std::string> written;

  if (fs::exists(dir / "metrics.csv")) {
    const RunData run = load_run(dir);
    fs::create_directories(out);
    const std::string name = base_name(dir);
    std::string title = "Training report: " + (name.empty() ? dir_arg : name);
    if (run.summary && !run.summary->task.empty()) title += " (" + run.summary->task + ")";
    const std::string body = render_run(run, "Run", "run", out, "", written);
    write_text(out / "index.html", page(title, body), written);
    return written;
  }

  // A `crnn repeat` directory: its runs are the subdirectories with metrics.csv.
  // A run directory without one (a config.toml, a seed_N name, or listed in
  // repeat.json) is skipped and said so, not silently left out.
  std::optional<RepeatSummary> repeat;
  if (fs::exists(dir / "repeat.json")) repeat = read_repeat_json((dir / "repeat.json").string());
  std::vector<std::string> names;
  std::set<std::string> missing;
  if (repeat)
    for (const auto& r : repeat->runs) missing.insert(fs::path(r.dir).lexically_normal().filename().string());
  static const std::regex kSeedDir("seed_[0-9]+");
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (!e.is_directory()) continue;
    const std::string name = e.path().filename().string();
    if (fs::exists(e.path() / "metrics.csv")) {
      names.push_back(name);
      missing.erase(name);
    } else if (fs::exists(e.path() / "config.toml") || std::regex_match(name, kSeedDir)) {
      missing.insert(name);
    }
  }
  if (names.empty())
    throw ReportError(dir_arg +
                      ": neither metrics.csv nor run subdirectories with metrics.csv (expected "
                      "the output of `crnn train` or `crnn repeat`)");
  std::sort(names.begin(), names.end(), natural_less);
  if (skipped)
    for (const auto& m : missing) skipped->push_back(m + ": no metrics.csv (not a started run), left out");
  std::vector<RunData> runs;
  for (const auto& n : names) runs.push_back(load_run(dir / n));

  // One row per run; the seed and test numbers come from repeat.json where it
  // lists the run, from the run's own summary otherwise (still running).
  std::vector<std::string> labels;
  std::vector<double> test_ua, test_wa;
  std::string rows;
  for (size_t i = 0; i < runs.size(); ++i) {
    const RepeatRun* rr = nullptr;
    if (repeat)
      for (const auto& r : repeat->runs)
        if (fs::path(r.dir).lexically_normal().filename() == names[i]) rr = &r;
    const auto& s = runs[i].summary;
    const double ua = rr ? rr->test_ua_recall : s ? s->test_ua_recall : kNaN;
    const double wa = rr ? rr->test_wa : s ? s->test_wa : kNaN;
    labels.push_back(rr ? fmt::format("seed {}", rr->seed) : names[i]);
    test_ua.push_back(ua);
    test_wa.push_back(wa);
    rows += fmt::format(
        "<tr><td>{}</td><td><a href=\"#{}\">{}</a></td><td class=\"num\">{}</td>"
        "<td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>"
        "<td class=\"num\">{}</td></tr>\n",
        rr ? std::to_string(rr->seed) : "—", esc(safe_name(names[i])), esc(names[i]),
        s ? std::to_string(s->epochs_run) : std::to_string(runs[i].metrics.size()) + " so far",
        s && s->best_epoch > 0 ? std::to_string(s->best_epoch) : "—",
        pct(s ? s->val_ua_recall : kNaN), pct(ua), pct(wa));
  }
  double ua_mean = mean_of(test_ua), ua_std = std_of(test_ua);
  double wa_mean = mean_of(test_wa), wa_std = std_of(test_wa);
  if (repeat) {  // `crnn repeat`'s own numbers are authoritative once written
    ua_mean = repeat->test_ua_recall_mean, ua_std = repeat->test_ua_recall_std;
    wa_mean = repeat->test_wa_mean, wa_std = repeat->test_wa_std;
  }

  fs::create_directories(out);
  std::string body = "<nav>";
  for (const auto& n : names) body += fmt::format("<a href=\"#{}\">{}</a>", esc(safe_name(n)), esc(n));
  body += "</nav>\n<section id=\"overview\">\n<h2>Overview</h2>\n";
  body += fmt::format("<p class=\"path\">{}</p>\n", esc(dir.string()));
  body += "<table class=\"runs\">\n<tr><th>seed</th><th>run</th><th>epochs</th><th>best epoch</th>"
          "<th>val UA recall</th><th>test UA recall</th><th>test WA</th></tr>\n" +
          rows;
  body += fmt::format("<tr><th colspan=\"5\">mean ± std{}</th><td class=\"num\">{}</td>"
                      "<td class=\"num\">{}</td></tr>\n</table>\n",
                      repeat ? " (repeat.json)" : " (from the runs so far)",
                      esc(mean_std_pct(ua_mean, ua_std)), esc(mean_std_pct(wa_mean, wa_std)));
  BarChart bars;
  bars.title = "Test UA recall per run";
  bars.x_label = "run";
  bars.y_label = "test UA recall (%)";
  bars.categories = labels;
  for (double v : test_ua) bars.values.push_back(100 * v);
  if (std::isfinite(ua_mean)) {
    bars.band_mean = 100 * ua_mean;
    if (std::isfinite(ua_std)) bars.band_std = 100 * ua_std;
    bars.band_label = std::isfinite(ua_std) ? "mean ± std" : "mean";
    bars.title += " — mean " + mean_std_pct(ua_mean, ua_std);
  }
  write_text(out / "overview.svg", bar_chart_svg(bars), written);
  body += "<div class=\"figures\">\n" + figure("overview.svg", "test UA recall per run") +
          "</div>\n</section>\n";

  for (size_t i = 0; i < runs.size(); ++i) {
    const std::string sub = safe_name(names[i]);
    body += render_run(runs[i], names[i], sub, out / sub, sub + "/", written);
  }
  const std::string name = base_name(dir);
  write_text(out / "index.html",
             page(fmt::format("Repeated runs: {} ({} runs)", name.empty() ? dir_arg : name, runs.size()), body),
             written);
  return written;
}

}  // namespace crnn::train
