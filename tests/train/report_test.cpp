// crnn::train report: SVG charts, heat maps, run readers, index.html, and the
// `crnn report` command end to end.
#include "crnn/train/report.h"

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "support/test_support.h"

namespace {
namespace fs = std::filesystem;
using crnn::test::contains;
using crnn::test::error_of;
using crnn::test::TempDir;
using namespace crnn::train;

// ---------------------------------------------------------------------------
// A small XML well-formedness checker: one root element, balanced and properly
// nested tags, quoted attributes without '<', no duplicate attributes, only
// the predefined or numeric entities, no stray '<' or '&' in text. Returns ""
// when the document is well-formed, else the first problem.
std::string xml_problem(const std::string& s) {
  std::vector<std::string> open;
  size_t i = 0, roots = 0;
  auto entity_ok = [&](size_t at) {
    static const std::regex kEntity("&(amp|lt|gt|quot|apos|#[0-9]+|#x[0-9a-fA-F]+);");
    std::smatch m;
    const std::string tail = s.substr(at, 12);
    return std::regex_search(tail, m, kEntity) && m.position(0) == 0;
  };
  while (i < s.size()) {
    if (s[i] == '&') {
      if (!entity_ok(i)) return "bad entity at " + std::to_string(i);
      ++i;
      continue;
    }
    if (s[i] != '<') {
      if (open.empty() && !std::isspace(static_cast<unsigned char>(s[i])))
        return "text outside the root at " + std::to_string(i);
      ++i;
      continue;
    }
    if (s.compare(i, 4, "<!--") == 0) {
      const size_t e = s.find("-->", i);
      if (e == std::string::npos) return "unterminated comment";
      i = e + 3;
      continue;
    }
    if (s.compare(i, 2, "<?") == 0) {
      const size_t e = s.find("?>", i);
      if (e == std::string::npos) return "unterminated processing instruction";
      i = e + 2;
      continue;
    }
    const size_t e = s.find('>', i);
    if (e == std::string::npos) return "unterminated tag at " + std::to_string(i);
    std::string tag = s.substr(i + 1, e - i - 1);
    i = e + 1;
    if (!tag.empty() && tag[0] == '/') {
      const std::string name = tag.substr(1);
      if (open.empty() || open.back() != name)
        return "</" + name + "> closes " + (open.empty() ? "nothing" : "<" + open.back() + ">");
      open.pop_back();
      continue;
    }
    const bool self_closing = !tag.empty() && tag.back() == '/';
    if (self_closing) tag.pop_back();
    static const std::regex kName("^([A-Za-z_][-A-Za-z0-9_:.]*)");
    std::smatch m;
    if (!std::regex_search(tag, m, kName)) return "bad tag <" + tag + ">";
    const std::string name = m[1];
    std::string rest = tag.substr(name.size());
    static const std::regex kAttr(R"(^\s+([A-Za-z_][-A-Za-z0-9_:.]*)="([^"<]*)\")");
    std::set<std::string> seen;
    while (std::regex_search(rest, m, kAttr)) {
      if (!seen.insert(m[1]).second) return "duplicate attribute " + m[1].str() + " in <" + name + ">";
      const std::string value = m[2];
      for (size_t a = value.find('&'); a != std::string::npos; a = value.find('&', a + 1))
        if (!std::regex_search(value.substr(a), std::regex("^&(amp|lt|gt|quot|apos|#[0-9]+);")))
          return "bad entity in attribute of <" + name + ">";
      rest = m.suffix();
    }
    if (rest.find_first_not_of(" \t\n") != std::string::npos)
      return "malformed attributes in <" + tag + ">";
    if (open.empty() && ++roots > 1) return "more than one root element";
    if (!self_closing) open.push_back(name);
  }
  if (!open.empty()) return "<" + open.back() + "> is never closed";
  if (roots != 1) return "no root element";
  return "";
}

std::string read(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int count_of(const std::string& text, const std::string& part) {
  int n = 0;
  for (size_t p = text.find(part); p != std::string::npos; p = text.find(part, p + 1)) ++n;
  return n;
}

/// The points of the polyline whose data-series is `name`, as (x, y) pairs.
std::vector<std::pair<double, double>> polyline(const std::string& svg, const std::string& name) {
  const std::regex re("<polyline class=\"series\" data-series=\"" + name + "\" points=\"([^\"]*)\"");
  std::smatch m;
  if (!std::regex_search(svg, m, re)) return {};
  std::vector<std::pair<double, double>> pts;
  std::stringstream ss(m[1].str());
  for (std::string pair; ss >> pair;) {
    const auto comma = pair.find(',');
    pts.emplace_back(std::stod(pair.substr(0, comma)), std::stod(pair.substr(comma + 1)));
  }
  return pts;
}

// A finished run: 3 epochs (epoch 3 has no validation loss), best epoch 2,
// a test evaluation over 3 classes.
const char* const kMetrics =
    "epoch,train_loss,val_loss,val_ua_recall,val_wa,epoch_seconds,frames_per_s\n"
    "1,1.20,1.10,0.30,0.35,10.5,12000\n"
    "2,0.90,0.95,0.45,0.50,10.1,12500\n"
    "3,0.70,,0.40,0.48,10.2,12400\n";
const char* const kSummary =
    R"({"best_epoch": 2, "epochs_run": 3, "val_ua_recall": 0.45, "test_ua_recall": 0.5,
        "test_wa": 0.55, "wall_seconds": 31.0, "task": "emotion3",
        "labels": ["angry", "calm", "sad"]})";
const char* const kEvalTest =
    R"({"split": "test", "task": "emotion3", "labels": ["angry", "calm", "sad"],
        "ua_recall": 0.5, "wa": 0.55, "per_class_recall": [0.8, 0.5, 0.2],
        "confusion": [[8, 2, 0], [3, 5, 2], [4, 4, 2]], "count": 30})";

void write_run(const TempDir& t, const std::string& rel = "") {
  const std::string p = rel.empty() ? "" : rel + "/";
  t.write(p + "metrics.csv", kMetrics);
  t.write(p + "summary.json", kSummary);
  t.write(p + "eval_test.json", kEvalTest);
}

/// Every `src="…"`/`href="…"` of index.html that is an SVG exists, and every
/// SVG under the report folder is shown with an <img>.
void expect_index_complete(const fs::path& out) {
  const std::string html = read(out / "index.html");
  ASSERT_FALSE(html.empty());
  std::set<std::string> referenced;
  const std::regex ref("(src|href)=\"([^\"]*\\.svg)\"");
  for (std::sregex_iterator it(html.begin(), html.end(), ref), end; it != end; ++it) {
    const std::string rel = (*it)[2];
    EXPECT_FALSE(fs::path(rel).is_absolute()) << rel;
    EXPECT_TRUE(fs::exists(out / rel)) << rel;
    if ((*it)[1] == "src") referenced.insert(rel);
  }
  int svgs = 0;
  for (const auto& e : fs::recursive_directory_iterator(out)) {
    if (e.path().extension() != ".svg") continue;
    ++svgs;
    const std::string rel = fs::relative(e.path(), out).generic_string();
    EXPECT_EQ(referenced.count(rel), 1u) << "index.html does not show " << rel;
    EXPECT_EQ(xml_problem(read(e.path())), "") << rel;
  }
  EXPECT_GT(svgs, 0);
}

using crnn::test::CliRun;
using crnn::test::run_crnn;

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

TEST(ReportFiles, ReadsMetricsSummaryAndEval) {
  TempDir t;
  write_run(t);
  const auto rows = read_metrics_csv((t.path() / "metrics.csv").string());
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[1].epoch, 2);
  EXPECT_DOUBLE_EQ(rows[1].val_ua_recall, 0.45);
  EXPECT_DOUBLE_EQ(rows[2].frames_per_s, 12400);
  EXPECT_TRUE(std::isnan(rows[2].val_loss));  // empty cell

  const RunSummary s = read_summary_json((t.path() / "summary.json").string());
  EXPECT_EQ(s.best_epoch, 2);
  EXPECT_EQ(s.labels.size(), 3u);
  EXPECT_DOUBLE_EQ(s.test_wa, 0.55);

  const EvalResult e = read_eval_json((t.path() / "eval_test.json").string());
  EXPECT_EQ(e.split, "test");
  EXPECT_EQ(e.count, 30);
  EXPECT_EQ(e.confusion[1][2], 2);

  // test_* absent or null before the test evaluation: NaN, not an error.
  t.write("s2.json", R"({"best_epoch": 1, "epochs_run": 1, "test_ua_recall": null})");
  const RunSummary early = read_summary_json((t.path() / "s2.json").string());
  EXPECT_TRUE(std::isnan(early.test_ua_recall));
  EXPECT_TRUE(std::isnan(early.test_wa));
}

TEST(ReportFiles, SkipsARowBeingAppended) {
  TempDir t;
  // `crnn train` is mid-way through writing epoch 2: no newline yet.
  t.write("metrics.csv",
          "epoch,train_loss,val_loss,val_ua_recall,val_wa,epoch_seconds,frames_per_s\n"
          "1,1.2,1.1,0.3,0.35,10,100\n2,0.9,0.");
  EXPECT_EQ(read_metrics_csv((t.path() / "metrics.csv").string()).size(), 1u);
}

TEST(ReportFiles, ErrorsNameTheFileAndLine) {
  TempDir t;
  const std::string header =
      "epoch,train_loss,val_loss,val_ua_recall,val_wa,epoch_seconds,frames_per_s\n";
  const std::string csv = t.write("m1.csv", "epoch,loss\n1,2\n");
  std::string err = error_of([&] { read_metrics_csv(csv); });
  EXPECT_TRUE(contains(err, csv + ":1:"));
  EXPECT_TRUE(contains(err, "train_loss"));

  const std::string bad_cell = t.write("m2.csv", header + "1,1,1,0.1,0.1,1,1\n2,1,abc,0.1,0.1,1,1\n");
  err = error_of([&] { read_metrics_csv(bad_cell); });
  EXPECT_TRUE(contains(err, bad_cell + ":3:"));
  EXPECT_TRUE(contains(err, "val_loss \"abc\" is not a number"));

  // Values training cannot write: out-of-order epochs, recalls outside [0, 1], NaN or negative losses.
  for (const auto& [rows, message] : std::vector<std::pair<std::string, std::string>>{
           {"1,1,1,0.5,0.5,1,1\n1,1,1,0.5,0.5,1,1\n", ":3: epoch 1 does not follow epoch 1"},
           {"0,1,1,0.5,0.5,1,1\n", ":2: epoch 0 does not follow epoch 0 (epochs start at 1)"},
           {"1e300,1,1,0.5,0.5,1,1\n", ":2: epoch \"1e300\" is not a whole number of magnitude at most 10^9"},
           {"2.5,1,1,0.5,0.5,1,1\n", ":2: epoch \"2.5\" is not a whole number of magnitude at most 10^9"},
           {"1,1,1,-5.6,0.5,1,1\n", ":2: val_ua_recall -5.6 is not a fraction in [0, 1]"},
           {"1,1,1,0.5,nan,1,1\n", ":2: val_wa nan is not a fraction in [0, 1]"},
           {"1,nan,1,0.5,0.5,1,1\n", ":2: train_loss nan is negative or not a number"},
           {"1,1,-1,0.5,0.5,1,1\n", ":2: val_loss -1 is negative or not a number"}}) {
    const std::string odd = t.write("m4.csv", header + rows);
    EXPECT_TRUE(contains(error_of([&] { read_metrics_csv(odd); }), odd + message)) << error_of([&] { read_metrics_csv(odd); });
  }

  const std::string short_row = t.write("m3.csv", header + "1,1,1\n");
  EXPECT_TRUE(contains(error_of([&] { read_metrics_csv(short_row); }), short_row + ":2: expected 7 cells"));

  const std::string bad_json = t.write("summary.json", "{\"best_epoch\": 2,");
  err = error_of([&] { read_summary_json(bad_json); });
  EXPECT_TRUE(contains(err, bad_json + ": malformed JSON"));

  const std::string bad_type = t.write("s.json", R"({"best_epoch": "two"})");
  EXPECT_TRUE(contains(error_of([&] { read_summary_json(bad_type); }), "\"best_epoch\" must be an integer"));

  const std::string bad_eval = t.write("eval_x.json", R"({"labels": ["a", "b"], "confusion": [[1, 2]]})");
  err = error_of([&] { read_eval_json(bad_eval); });
  EXPECT_TRUE(contains(err, bad_eval));
  EXPECT_TRUE(contains(err, "\"confusion\" must be a 2×2 array"));
}

TEST(ReportWrite, RunDirectoryGivesChartsHeatmapAndIndex) {
  TempDir t;
  write_run(t, "run");
  const fs::path out = t.path() / "out";
  const auto written = write_report((t.path() / "run").string(), out.string());
  ASSERT_EQ(written.size(), 4u);  // loss, recall, confusion_test, index
  EXPECT_EQ(written.back(), (out / "index.html").string());
  for (const char* f : {"loss.svg", "recall.svg", "confusion_test.svg"})
    EXPECT_TRUE(fs::exists(out / f)) << f;
  expect_index_complete(out);

  // Validation recall in percent at epochs 1..3; the NaN validation loss of
  // epoch 3 leaves two points; best epoch 2 is marked on both charts.
  const std::string recall = read(out / "recall.svg");
  EXPECT_EQ(polyline(recall, "UA recall").size(), 3u);
  EXPECT_EQ(polyline(read(out / "loss.svg"), "validation loss").size(), 2u);
  EXPECT_EQ(polyline(read(out / "loss.svg"), "train loss").size(), 3u);
  EXPECT_TRUE(contains(recall, ">best epoch 2</text>"));
  EXPECT_EQ(count_of(recall, "class=\"marker\""), 1);

  const std::string heat = read(out / "confusion_test.svg");
  EXPECT_EQ(count_of(heat, "<g class=\"cell\""), 9);
  EXPECT_TRUE(contains(heat, "test — UA recall 50.0%, WA 55.0%"));

  const std::string html = read(out / "index.html");
  EXPECT_TRUE(contains(html, "<title>Training report: run (emotion3)</title>"));
  EXPECT_TRUE(contains(html, "<img src=\"confusion_test.svg\""));
  EXPECT_TRUE(contains(html, "<td>50.0%</td>"));  // test UA recall
  EXPECT_TRUE(contains(html, "<td>55.0%</td>"));  // test WA
  EXPECT_FALSE(contains(html, t.path().string() + "/out"));  // no absolute links
}

TEST(ReportWrite, NoEpochsYet) {
  TempDir t;
  t.write("run/metrics.csv",
          "epoch,train_loss,val_loss,val_ua_recall,val_wa,epoch_seconds,frames_per_s\n");
  const fs::path out = t.path() / "run" / "report";
  write_report((t.path() / "run").string(), out.string());
  const std::string html = read(out / "index.html");
  EXPECT_TRUE(contains(html, "no epochs yet"));
  EXPECT_TRUE(contains(html, "no summary.json yet"));
  EXPECT_FALSE(fs::exists(out / "loss.svg"));
}

TEST(ReportWrite, RepeatDirectoryGivesOverviewAndASectionPerRun) {
  TempDir t;
  for (const char* seed : {"seed_1", "seed_2", "seed_10"}) write_run(t, seed);
  t.write("seeds_are_not_here/notes.txt", "not a run");
  t.write("repeat.json", R"({"runs": [
      {"seed": 1, "dir": "seed_1", "test_ua_recall": 0.40, "test_wa": 0.5},
      {"seed": 2, "dir": "seed_2", "test_ua_recall": 0.44, "test_wa": 0.52},
      {"seed": 10, "dir": "seed_10", "test_ua_recall": 0.42, "test_wa": 0.51}],
      "test_ua_recall_mean": 0.42, "test_ua_recall_std": 0.02,
      "test_wa_mean": 0.51, "test_wa_std": 0.01})");
  const fs::path out = t.path() / "report";
  std::vector<std::string> skipped;
  write_report(t.str(), out.string(), &skipped);
  EXPECT_TRUE(skipped.empty()) << skipped.front();
  expect_index_complete(out);
  for (const char* f : {"overview.svg", "seed_1/loss.svg", "seed_2/recall.svg", "seed_10/confusion_test.svg"})
    EXPECT_TRUE(fs::exists(out / f)) << f;

  const std::string html = read(out / "index.html");
  EXPECT_EQ(count_of(html, "<section id=\"seed_"), 3);
  // Natural order: seed_2 before seed_10.
  EXPECT_LT(html.find("<section id=\"seed_2\""), html.find("<section id=\"seed_10\""));
  EXPECT_TRUE(contains(html, "<img src=\"seed_10/loss.svg\""));
  EXPECT_TRUE(contains(html, "42.0% ± 2.0"));
  EXPECT_TRUE(contains(html, "44.0%"));
  const std::string overview = read(out / "overview.svg");
  EXPECT_EQ(count_of(overview, "class=\"bar\""), 3);
  EXPECT_TRUE(contains(overview, ">seed 10</text>"));
  EXPECT_EQ(count_of(overview, "class=\"band\""), 1);
}

// A run of a repeat directory without metrics.csv (listed in repeat.json, named
// seed_N or holding a config.toml) is reported as skipped, never silently left out.
TEST(ReportWrite, RepeatDirectorySaysWhichRunsItSkipped) {
  TempDir t;
  write_run(t, "seed_1");
  t.write("seed_3/last.pt", "");                 // emptied run: a seed_N name
  t.write("other/config.toml", "[train]\n");     // a run directory by its config
  t.write("notes/readme.txt", "not a run");      // not a run: not mentioned
  t.write("repeat.json", R"({"runs": [
      {"seed": 1, "dir": "seed_1", "test_ua_recall": 0.40, "test_wa": 0.5},
      {"seed": 2, "dir": "seed_2", "test_ua_recall": 0.44, "test_wa": 0.52}],
      "test_ua_recall_mean": 0.42, "test_ua_recall_std": 0.02,
      "test_wa_mean": 0.51, "test_wa_std": 0.01})");
  std::vector<std::string> skipped;
  write_report(t.str(), (t.path() / "report").string(), &skipped);
  EXPECT_EQ(skipped, (std::vector<std::string>{"other: no metrics.csv (not a started run), left out",
                                               "seed_2: no metrics.csv (not a started run), left out",
                                               "seed_3: no metrics.csv (not a started run), left out"}));
  // metrics.csv that is a directory: an error naming it.
  fs::remove(t.path() / "seed_1" / "metrics.csv");
  fs::create_directories(t.path() / "seed_1" / "metrics.csv");
  const std::string run = (t.path() / "seed_1").string();
  EXPECT_TRUE(contains(error_of([&] { write_report(run, run + "/r"); }), run + "/metrics.csv: is a directory, not a file"));
}

TEST(ReportWrite, RejectsMissingOrForeignDirectoriesAndBadFiles) {
  TempDir t;
  const std::string missing = (t.path() / "nope").string();
  EXPECT_TRUE(contains(error_of([&] { write_report(missing, missing + "/r"); }), missing + ": no such directory"));

  t.write("empty/readme.txt", "hi");
  const std::string empty = (t.path() / "empty").string();
  EXPECT_TRUE(contains(error_of([&] { write_report(empty, empty + "/r"); }), "neither metrics.csv nor run"));

  write_run(t, "broken");
  t.write("broken/eval_valid.json", "{\"split\": \"valid\", ");
  const std::string broken = (t.path() / "broken").string();
  EXPECT_TRUE(contains(error_of([&] { write_report(broken, broken + "/r"); }),
                       broken + "/eval_valid.json: malformed JSON"));
  EXPECT_FALSE(fs::exists(t.path() / "broken" / "r" / "index.html"));  // nothing half-written
}

TEST(ReportCli, WritesTheReportAndExitsTwoOnBadInput) {
  TempDir t;
  write_run(t, "run");
  const std::string run = (t.path() / "run").string();
  CliRun ok = run_crnn("report '" + run + "'");
  EXPECT_EQ(ok.status, 0) << ok.out;
  EXPECT_TRUE(fs::exists(t.path() / "run" / "report" / "index.html")) << ok.out;
  EXPECT_TRUE(contains(ok.out, "index.html"));

  CliRun to = run_crnn("report '" + run + "' -o '" + t.str() + "/elsewhere'");
  EXPECT_EQ(to.status, 0) << to.out;
  expect_index_complete(t.path() / "elsewhere");

  CliRun missing = run_crnn("report '" + t.str() + "/missing'");
  EXPECT_EQ(missing.status, 2) << missing.out;
  EXPECT_TRUE(contains(missing.out, "missing: no such directory"));

  t.write("bad/metrics.csv", "epoch,train_loss,val_loss,val_ua_recall,val_wa,epoch_seconds,frames_per_s\n1,x,1,1,1,1,1\n");
  CliRun bad = run_crnn("report '" + t.str() + "/bad'");
  EXPECT_EQ(bad.status, 2) << bad.out;
  EXPECT_TRUE(contains(bad.out, "metrics.csv:2: train_loss \"x\" is not a number"));
}
