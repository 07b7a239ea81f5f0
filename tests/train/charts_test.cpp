#include "crnn/train/charts.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "support/svg_check.h"
#include "support/test_support.h"

namespace {
using crnn::test::contains;
using crnn::test::count_of;
using crnn::test::polyline;
using crnn::test::xml_problem;
using namespace crnn::train;
}  // namespace

// ---------------------------------------------------------------------------

TEST(ReportXmlChecker, RejectsMalformedDocuments) {
  EXPECT_EQ(xml_problem("<?xml version=\"1.0\"?>\n<svg a=\"1\"><g><text>x &amp; y</text></g></svg>"), "");
  EXPECT_NE(xml_problem("<svg><g></svg>"), "");
  EXPECT_NE(xml_problem("<svg><text>a & b</text></svg>"), "");
  EXPECT_NE(xml_problem("<svg a=1></svg>"), "");
  EXPECT_NE(xml_problem("<svg a=\"1\" a=\"2\"></svg>"), "");
  EXPECT_NE(xml_problem("<svg></svg><svg></svg>"), "");
  EXPECT_NE(xml_problem("<svg>"), "");
}

TEST(ReportCharts, NiceRangeUsesOneTwoFiveSteps) {
  const NiceRange a = nice_range(0.5, 2.0);  // span 1.5 / 5 = 0.3 → step 0.5
  EXPECT_DOUBLE_EQ(a.lo, 0.5);
  EXPECT_DOUBLE_EQ(a.hi, 2.0);
  EXPECT_DOUBLE_EQ(a.step, 0.5);
  const NiceRange b = nice_range(0.12, 0.9);  // 0.156 → 0.2; widened to 0 .. 1
  EXPECT_DOUBLE_EQ(b.lo, 0.0);
  EXPECT_NEAR(b.hi, 1.0, 1e-12);
  EXPECT_NEAR(b.step, 0.2, 1e-12);
  const NiceRange c = nice_range(1, 3, /*integer_step=*/true);  // 0.4 → 0.5 → at least 1
  EXPECT_DOUBLE_EQ(c.lo, 1);
  EXPECT_DOUBLE_EQ(c.hi, 3);
  EXPECT_DOUBLE_EQ(c.step, 1);
  const NiceRange d = nice_range(7, 7, true);  // one epoch: still a usable axis
  EXPECT_LT(d.lo, 7);
  EXPECT_GT(d.hi, 7);
}

TEST(ReportCharts, LineChartMapsDataToPixels) {
  LineChart c;
  c.title = "Loss <per> epoch";
  c.width = 650;
  c.height = 400;
  c.margins = {/*left=*/50, /*right=*/100, /*top=*/40, /*bottom=*/60};
  // Auto ranges: x 1..5 (step 1), y 0.5..2.0 (step 0.5) — see NiceRange test.
  // Plot area x 50..550 (125 px per epoch), y 340..40 (200 px per unit).
  const double nan = std::nan("");
  c.series = {{"train", {1, 2, 3, 4, 5}, {2.0, 1.5, nan, 0.5, 1.0}}};
  c.marker_x = 4;
  c.marker_label = "best epoch 4";
  const std::string svg = line_chart_svg(c);
  EXPECT_EQ(xml_problem(svg), "") << svg;

  const auto pts = polyline(svg, "train");
  const std::vector<std::pair<double, double>> expected = {
      {50, 40}, {175, 140}, /* epoch 3 is NaN */ {425, 340}, {550, 240}};
  ASSERT_EQ(pts.size(), expected.size()) << svg;
  for (size_t i = 0; i < pts.size(); ++i) {
    EXPECT_NEAR(pts[i].first, expected[i].first, 0.01) << i;
    EXPECT_NEAR(pts[i].second, expected[i].second, 0.01) << i;
  }
  // The best-epoch marker: dashed, vertical at epoch 4, spanning the plot.
  EXPECT_TRUE(contains(svg, "<line class=\"marker\" x1=\"425.00\" y1=\"40.00\" x2=\"425.00\" y2=\"340.00\""));
  EXPECT_TRUE(contains(svg, "stroke-dasharray"));
  EXPECT_TRUE(contains(svg, ">best epoch 4</text>"));  // legend
  EXPECT_TRUE(contains(svg, "Loss &lt;per&gt; epoch"));
  // Tick labels: every epoch, and y at 0.5 steps.
  for (const char* t : {">1</text>", ">5</text>", ">0.5</text>", ">2.0</text>"})
    EXPECT_TRUE(contains(svg, t)) << t;
}

TEST(ReportCharts, LineChartWithExplicitRangesAndNoData) {
  LineChart c;
  c.width = 500;
  c.height = 300;
  c.margins = {100, 100, 50, 50};
  c.x_range = AxisRange{0, 10};
  c.y_range = AxisRange{0, 100};
  c.series = {{"ua", {0, 5, 10}, {0, 50, 100}}};
  const auto pts = polyline(line_chart_svg(c), "ua");
  ASSERT_EQ(pts.size(), 3u);
  EXPECT_NEAR(pts[0].first, 100, 0.01);   // (0, 0) at the bottom left
  EXPECT_NEAR(pts[0].second, 250, 0.01);
  EXPECT_NEAR(pts[1].first, 250, 0.01);   // (5, 50) in the middle
  EXPECT_NEAR(pts[1].second, 150, 0.01);
  EXPECT_NEAR(pts[2].first, 400, 0.01);   // (10, 100) at the top right
  EXPECT_NEAR(pts[2].second, 50, 0.01);

  LineChart empty;
  empty.series = {{"a", {1, 2}, {std::nan(""), std::nan("")}}};
  const std::string svg = line_chart_svg(empty);
  EXPECT_EQ(xml_problem(svg), "");
  EXPECT_TRUE(contains(svg, "no data"));
}

TEST(ReportCharts, HeatmapHasOneAnnotatedCellPerClassPair) {
  Heatmap h;
  h.title = "test — UA 50.0%";
  h.labels = {"angry", "calm & quiet", "sad"};
  h.counts = {{5, 1, 0}, {2, 6, 2}, {0, 0, 0}};  // the last class has no examples
  const std::string svg = heatmap_svg(h);
  ASSERT_EQ(xml_problem(svg), "") << svg;
  EXPECT_EQ(count_of(svg, "<g class=\"cell\""), 9);

  // Counts and row percentages computed by hand: 5/6 = 83%, 1/6 = 17%, 2/10 = 20%, ...
  const std::string pct[3][3] = {{"83%", "17%", "0%"}, {"20%", "60%", "20%"}, {"–", "–", "–"}};
  const std::regex cell(
      "<g class=\"cell\" data-row=\"(\\d+)\" data-col=\"(\\d+)\">\\s*<rect[^>]*fill=\"([^\"]+)\"[^>]*/>"
      "\\s*<text class=\"count\"[^>]*>(\\d+)</text>\\s*<text class=\"percent\"[^>]*>([^<]*)</text>");
  int seen = 0;
  for (std::sregex_iterator it(svg.begin(), svg.end(), cell), end; it != end; ++it, ++seen) {
    const int r = std::stoi((*it)[1]), c = std::stoi((*it)[2]);
    EXPECT_EQ(std::stoll((*it)[4]), h.counts[r][c]) << r << "," << c;
    EXPECT_EQ((*it)[5].str(), pct[r][c]) << r << "," << c;
    if (r == 2) {
      EXPECT_EQ((*it)[3].str(), "#eeeeee");  // no examples: neutral grey
    }
    if (r == 0 && c == 2) {
      EXPECT_EQ((*it)[3].str(), "#ffffff");  // 0%: white
    }
  }
  EXPECT_EQ(seen, 9);
  // Class names on both axes, escaped.
  EXPECT_EQ(count_of(svg, "calm &amp; quiet</text>"), 2);
  EXPECT_EQ(count_of(svg, "class=\"row-label\""), 3);
  EXPECT_EQ(count_of(svg, "class=\"col-label\""), 3);
  EXPECT_TRUE(contains(svg, "<title>test — UA 50.0%</title>"));
}

TEST(ReportCharts, BarChartDrawsOneBarPerRunAndTheBand) {
  BarChart b;
  b.categories = {"seed 1", "seed 2", "seed 3"};
  b.values = {40, std::nan(""), 44};
  b.band_mean = 42;
  b.band_std = 2;
  const std::string svg = bar_chart_svg(b);
  EXPECT_EQ(xml_problem(svg), "") << svg;
  EXPECT_EQ(count_of(svg, "class=\"bar\""), 2);  // the NaN run has no bar
  EXPECT_EQ(count_of(svg, "class=\"band\""), 1);
  EXPECT_TRUE(contains(svg, ">seed 2</text>"));
}

// Bars start at zero and their heights are proportional to the values; one
// error bar per finite, positive error; NaN values draw no bar.
TEST(ReportCharts, GroupedBarChartBarsAreProportionalWithErrorBars) {
  GroupedBarChart g;
  g.title = "t";
  g.groups = {"a", "b"};
  g.series = {"x", "y"};
  g.values = {{20, 40}, {10, std::nan("")}};
  g.errors = {{1, 0}, {2, 3}};
  const std::string svg = grouped_bar_chart_svg(g);
  EXPECT_EQ(count_of(svg, "class=\"bar\""), 3);
  EXPECT_EQ(count_of(svg, "class=\"error\""), 2);
  EXPECT_EQ(count_of(svg, "class=\"reference\""), 0);
  g.reference = {50, std::nan("")};  // group a only
  const std::string with_ref = grouped_bar_chart_svg(g);
  EXPECT_EQ(count_of(with_ref, "class=\"reference\""), 1);
  EXPECT_NE(with_ref.find(">chance<"), std::string::npos);
  std::regex h("class=\"bar\" x=\"[0-9.]+\" y=\"[0-9.]+\" width=\"[0-9.]+\" height=\"([0-9.]+)\"");
  std::vector<double> heights;
  for (std::sregex_iterator it(svg.begin(), svg.end(), h), end; it != end; ++it) heights.push_back(std::stod((*it)[1]));
  ASSERT_EQ(heights.size(), 3u);  // order: group a (x, y), group b (x)
  EXPECT_NEAR(heights[2] / heights[0], 2.0, 1e-3);
  EXPECT_NEAR(heights[0] / heights[1], 2.0, 1e-3);
}

// The command: --plan lists every run with its status; bad input exits 2
