#include "crnn/train/charts.h"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <map>
#include <set>
#include <sstream>

#include "crnn/util/text.h"

namespace crnn::train {
namespace {
namespace fs = std::filesystem;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Line colours: distinguishable, and legible when printed in grey.
const char* const kPalette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"};
// Dash patterns of successive line series ("" = solid).
const char* const kDashes[] = {"", "7 4", "2 3", "9 3 2 3"};
const char* const kFont = "font-family=\"DejaVu Sans, Arial, Helvetica, sans-serif\"";

std::string esc(const std::string& s) { return crnn::xml_escape(s); }

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

/// Estimated rendered width of `text` at `font_size` px (DejaVu Sans, the
/// first font asked for): 0.62 em per character, 0.68 em bold — DejaVu's
/// average advance is about 0.6 em, so the estimate errs on the wide side
/// and text laid out by it is not cut.
double text_width(const std::string& text, double font_size, bool bold = false) {
  size_t chars = 0;
  for (unsigned char ch : text) chars += (ch & 0xC0) != 0x80;  // UTF-8 code points
  return static_cast<double>(chars) * font_size * (bold ? 0.68 : 0.62);
}

/// `text` broken at spaces into lines of at most `max_width` px (a single word
/// wider than that stays whole on its line).
std::vector<std::string> wrap_text(const std::string& text, double font_size, double max_width, bool bold = false) {
  std::vector<std::string> lines;
  std::string line;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(' ', start);
    if (end == std::string::npos) end = text.size();
    const std::string word = text.substr(start, end - start);
    const std::string candidate = line.empty() ? word : line + " " + word;
    if (!line.empty() && text_width(candidate, font_size, bold) > max_width) {
      lines.push_back(line);
      line = word;
    } else {
      line = candidate;
    }
    start = end + 1;
  }
  if (!line.empty() || lines.empty()) lines.push_back(line);
  return lines;
}

constexpr double kTitleSize = 15, kTitleLine = 19, kLegendText = 42;  // legend: 14 gap + 22 line + 6

/// Grows a chart so that no text is cut: the right margin until the widest
/// legend entry fits (and the width with it, keeping the plot area); the title
/// wrapped to the width, the top margin and the height grown by a line per
/// extra title line. Returns the title's lines.
std::vector<std::string> fit_text(double& width, double& height, Margins& m, const std::string& title,
                                  const std::vector<std::string>& legend) {
  double widest = 0;
  for (const auto& l : legend) widest = std::max(widest, text_width(l, 12));
  if (!legend.empty() && kLegendText + widest + 8 > m.right) {
    const double grow = kLegendText + widest + 8 - m.right;
    m.right += grow;
    width += grow;
  }
  auto lines = wrap_text(title, kTitleSize, width - 24, /*bold=*/true);
  const double extra = kTitleLine * static_cast<double>(lines.size() - 1);
  m.top += extra;
  height += extra;
  return lines;
}

std::string svg_title(const std::vector<std::string>& lines, const std::string& title, double width) {
  std::string s = fmt::format("<title>{}</title>\n", esc(title));
  for (size_t i = 0; i < lines.size(); ++i)
    s += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"15\" font-weight=\"bold\">{}</text>\n",
                     px(width / 2), px(24 + kTitleLine * static_cast<double>(i)), esc(lines[i]));
  return s;
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

std::string line_chart_svg(const LineChart& chart) {
  LineChart c = chart;
  std::vector<std::string> legend;
  for (const auto& ser : c.series) legend.push_back(ser.name);
  if (c.marker_x && !c.marker_label.empty()) legend.push_back(c.marker_label);
  const auto title = fit_text(c.width, c.height, c.margins, c.title, legend);
  const Margins& m = c.margins;
  std::string s = svg_open(c.width, c.height) + svg_title(title, c.title, c.width);

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
    // Series after the first are dashed (and drawn thinner) so that two that
    // coincide — UA recall = WA on a balanced set — both stay visible.
    const std::string dash = kDashes[k % std::size(kDashes)];
    const std::string stroke = fmt::format("stroke=\"{}\" stroke-width=\"{}\"{}", colour, k == 0 ? "2.5" : "2",
                                           dash.empty() ? "" : " stroke-dasharray=\"" + dash + "\"");
    s += fmt::format("<polyline class=\"series\" data-series=\"{}\" points=\"{}\" fill=\"none\" "
                     "{} stroke-linejoin=\"round\"/>\n",
                     esc(ser.name), points, stroke);
    // Dots show where the epochs are while they are few, and make a lone
    // point (a one-epoch run) visible at all.
    if (pts.size() <= 40)
      for (const auto& [x, y] : pts)
        s += fmt::format("<circle cx=\"{}\" cy=\"{}\" r=\"2.5\" fill=\"{}\"/>\n", px(x), px(y),
                         colour);
    names.push_back(ser.name);
    styles.push_back(stroke);
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

std::string bar_chart_svg(const BarChart& chart) {
  BarChart c = chart;
  const bool has_band = c.band_mean && std::isfinite(*c.band_mean);
  const auto title = fit_text(c.width, c.height, c.margins, c.title,
                              has_band ? std::vector<std::string>{c.band_label.empty() ? "mean ± std" : c.band_label}
                                       : std::vector<std::string>{});
  const Margins& m = c.margins;
  std::string s = svg_open(c.width, c.height) + svg_title(title, c.title, c.width);
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

std::string grouped_bar_chart_svg(const GroupedBarChart& chart) {
  GroupedBarChart c = chart;
  std::vector<std::string> legend = c.series;
  for (double r : c.reference)
    if (std::isfinite(r)) {
      legend.push_back(c.reference_label);
      break;
    }
  const auto title = fit_text(c.width, c.height, c.margins, c.title, legend);
  // Group names wrapped to their slot; the bottom margin grows by a line per extra line.
  std::vector<std::vector<std::string>> group_lines;
  size_t most_lines = 1;
  const double slot_width = c.groups.empty() ? 0 : (c.width - c.margins.left - c.margins.right) / static_cast<double>(c.groups.size());
  for (const auto& g : c.groups) {
    group_lines.push_back(wrap_text(g, 12, slot_width * 0.95));
    most_lines = std::max(most_lines, group_lines.back().size());
  }
  c.margins.bottom += 15.0 * static_cast<double>(most_lines - 1);
  c.height += 15.0 * static_cast<double>(most_lines - 1);
  const Margins& m = c.margins;
  std::string s = svg_open(c.width, c.height) + svg_title(title, c.title, c.width);
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
    for (size_t l = 0; l < group_lines[g].size(); ++l)
      s += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n", px(x0 + slot * 0.4),
                       px(c.height - m.bottom + 18 + 15.0 * static_cast<double>(l)), esc(group_lines[g][l]));
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
  const double left = 40 + label_w;
  const double grid = cell * static_cast<double>(n);
  const double width = std::max({left + grid + 90, 360.0, text_width(h.title, kTitleSize, true) + 24});
  const auto title = wrap_text(h.title, kTitleSize, width - 24, /*bold=*/true);
  const double top = 48 + kTitleLine * static_cast<double>(title.size() - 1);
  const double height = top + grid + label_w * 0.75 + 40;
  std::string s = svg_open(width, height) + svg_title(title, h.title, width);

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

}  // namespace crnn::train
