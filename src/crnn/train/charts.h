#pragma once
/// \file charts.h
/// Charts as standalone SVG text (no plotting dependency), so they are small,
/// diffable and render in any browser: lines over epochs, bars per run,
/// grouped bars with error bars (results tables) and confusion heat maps.
/// Pure functions of their inputs: no file is read or written here.
///
/// \code
///   crnn::train::LineChart chart;
///   chart.title = "Loss";
///   chart.series.push_back({"train loss", {1, 2, 3}, {1.2, 0.9, 0.7}});
///   std::string svg = crnn::train::line_chart_svg(chart);
/// \endcode

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace crnn::train {

/// Space around the plot area, in pixels. The plot area spans
/// x ∈ [left, width − right] and y ∈ [top, height − bottom]; data map linearly
/// onto it (y grows upwards).
struct Margins {
  double left = 64, right = 150, top = 44, bottom = 56;
};

/// One line of a LineChart. NaN values are skipped (the line joins the
/// neighbouring finite points), so an empty CSV cell never breaks a chart.
struct Series {
  std::string name;
  std::vector<double> x, y;
};

/// A closed interval on an axis.
struct AxisRange {
  double lo = 0, hi = 1;
};

/// A chart of lines over a shared x axis, e.g. loss per epoch.
///
/// \code
///   LineChart c;
///   c.title = "Validation recall";  c.x_label = "epoch";  c.y_label = "%";
///   c.series = {{"UA recall", {1, 2}, {35.0, 41.5}}, {"WA", {1, 2}, {38.0, 43.0}}};
///   c.marker_x = 2;  c.marker_label = "best epoch 2";   // dashed vertical line
///   std::string svg = line_chart_svg(c);
/// \endcode
struct LineChart {
  std::string title, x_label, y_label;
  std::vector<Series> series;
  /// Axis ranges; when unset, the finite data's range widened to multiples of
  /// the tick step (see nice_range()).
  std::optional<AxisRange> x_range, y_range;
  /// x ticks at whole numbers only (epochs).
  bool integer_x = false;
  /// A vertical dashed line, e.g. at the best epoch.
  std::optional<double> marker_x;
  std::string marker_label;
  double width = 640, height = 400;
  Margins margins;
};

/// A bar per category plus an optional band, e.g. test UA recall per seed with
/// its mean ± standard deviation.
struct BarChart {
  std::string title, x_label, y_label;
  std::vector<std::string> categories;
  std::vector<double> values;  ///< one per category; NaN draws no bar
  std::optional<double> band_mean, band_std;
  std::string band_label;  ///< legend text of the band, e.g. "mean ± std"
  double width = 640, height = 400;
  Margins margins;
};

/// Bars in groups with error bars, e.g. test UA recall (mean ± std over seeds)
/// of every model (series) on every task (group) — the form of a results table.
///
/// \code
///   GroupedBarChart g;
///   g.title = "Table I";  g.y_label = "test UA recall (%)";
///   g.groups = {"emotion2", "emotion8"};
///   g.series = {"baseline", "CLSTM"};
///   g.values = {{69.0, 36.9}, {70.6, 39.4}};   // [series][group]; NaN: no bar
///   g.errors = {{0.9, 1.8}, {0.6, 0.6}};       // half-height of the error bar
///   std::string svg = grouped_bar_chart_svg(g);
/// \endcode
struct GroupedBarChart {
  std::string title, x_label, y_label;
  std::vector<std::string> groups, series;
  std::vector<std::vector<double>> values, errors;  ///< [series][group]
  /// Per group, a dashed reference line across its bars (e.g. chance level);
  /// empty or NaN: none. Named `reference_label` in the legend.
  std::vector<double> reference;
  std::string reference_label = "chance";
  double width = 760, height = 420;
  Margins margins{64, 200, 44, 56};
};

/// A confusion matrix (rows = true class, columns = predicted class). Cells are
/// shaded by the row-normalised fraction (the recall on the diagonal) and
/// annotated with the count and that percentage.
///
/// \code
///   Heatmap h;
///   h.title = "test — UA 41.0%, WA 43.0%";
///   h.labels = {"angry", "calm"};
///   h.counts = {{8, 2}, {3, 7}};
///   std::string svg = heatmap_svg(h);
/// \endcode
struct Heatmap {
  std::string title;
  std::vector<std::string> labels;
  std::vector<std::vector<int64_t>> counts;
  std::string x_label = "predicted", y_label = "true";
};

/// The axis range and tick step for data in [lo, hi]: the step is 1, 2 or 5
/// times a power of ten, the smallest giving at most five intervals over the
/// data, and the range is widened to multiples of it. A degenerate range
/// (lo == hi) is widened first. With `integer_step` the step is at least 1.
///
/// \code
///   nice_range(0.5, 2.0);  // {0.5, 2.0}, step 0.5
///   nice_range(0.12, 0.9); // {0.0, 1.0}, step 0.2
/// \endcode
struct NiceRange {
  double lo, hi, step;
};
NiceRange nice_range(double lo, double hi, bool integer_step = false);

std::string line_chart_svg(const LineChart& chart);
std::string bar_chart_svg(const BarChart& chart);
std::string grouped_bar_chart_svg(const GroupedBarChart& chart);
std::string heatmap_svg(const Heatmap& map);

}  // namespace crnn::train
