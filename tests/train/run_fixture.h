#pragma once
// A finished run directory written by hand (metrics.csv, summary.json,
// eval_test.json), for the run-file and report tests.
#include <filesystem>
#include <regex>
#include <set>
#include <string>

#include "support/svg_check.h"
#include "support/test_support.h"

namespace crnn::test {

// A finished run: 3 epochs (epoch 3 has no validation loss), best epoch 2,
// a test evaluation over 3 classes.
inline const char* const kMetrics =
    "epoch,train_loss,val_loss,val_ua_recall,val_wa,epoch_seconds,frames_per_s\n"
    "1,1.20,1.10,0.30,0.35,10.5,12000\n"
    "2,0.90,0.95,0.45,0.50,10.1,12500\n"
    "3,0.70,,0.40,0.48,10.2,12400\n";
inline const char* const kSummary =
    R"({"best_epoch": 2, "epochs_run": 3, "val_ua_recall": 0.45, "test_ua_recall": 0.5,
        "test_wa": 0.55, "wall_seconds": 31.0, "task": "emotion3",
        "labels": ["angry", "calm", "sad"]})";
inline const char* const kEvalTest =
    R"({"split": "test", "task": "emotion3", "labels": ["angry", "calm", "sad"],
        "ua_recall": 0.5, "wa": 0.55, "per_class_recall": [0.8, 0.5, 0.2],
        "confusion": [[8, 2, 0], [3, 5, 2], [4, 4, 2]], "count": 30})";

inline void write_run(const TempDir& t, const std::string& rel = "") {
  const std::string p = rel.empty() ? "" : rel + "/";
  t.write(p + "metrics.csv", kMetrics);
  t.write(p + "summary.json", kSummary);
  t.write(p + "eval_test.json", kEvalTest);
}

/// Every `src="…"`/`href="…"` of index.html that is an SVG exists, and every
/// SVG under the report folder is shown with an <img>.
inline void expect_index_complete(const std::filesystem::path& out) {
  const std::string html = read(out / "index.html");
  ASSERT_FALSE(html.empty());
  std::set<std::string> referenced;
  const std::regex ref("(src|href)=\"([^\"]*\\.svg)\"");
  for (std::sregex_iterator it(html.begin(), html.end(), ref), end; it != end; ++it) {
    const std::string rel = (*it)[2];
    EXPECT_FALSE(std::filesystem::path(rel).is_absolute()) << rel;
    EXPECT_TRUE(std::filesystem::exists(out / rel)) << rel;
    if ((*it)[1] == "src") referenced.insert(rel);
  }
  int svgs = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(out)) {
    if (e.path().extension() != ".svg") continue;
    ++svgs;
    const std::string rel = std::filesystem::relative(e.path(), out).generic_string();
    EXPECT_EQ(referenced.count(rel), 1u) << "index.html does not show " << rel;
    EXPECT_EQ(xml_problem(read(e.path())), "") << rel;
  }
  EXPECT_GT(svgs, 0);
}

}  // namespace crnn::test
