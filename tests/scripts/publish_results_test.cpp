// scripts/publish-results: copies a `crnn experiment` results.md's status line
// and tables into a hand-written page between its markers, leaves the rest of
// the page alone, copies the charts with rewritten links, and is idempotent.
#include <gtest/gtest.h>

#include <filesystem>

#include "crnn/data/manifest.h"
#include "support/test_support.h"

namespace fs = std::filesystem;
using crnn::test::run_command;

namespace {
std::string publish(const std::string& args) {
  return std::string("bash '") + CRNN_SOURCE_DIR + "/scripts/publish-results' " + args;
}
}  // namespace

TEST(PublishResults, ReplacesOnlyTheMarkedPartsAndIsIdempotent) {
  crnn::test::TempDir dir;
  dir.write("run/results.md",
            "# Title\n\nRegenerate: `crnn experiment x.toml -o run`\n\n"
            "Finished runs: **3 of 8**; their training wall time adds up to 0:01:00 (h:mm:ss).\n\n"
            "## Table I\n\n| | a |\n|---|---:|\n| m | 61.00 |\n\n![Table I](table1.svg)\n");
  dir.write("run/table1.svg", "<svg/>");
  const std::string page = dir.write(
      "docs/results.md",
      "# Results\n\nHand-written intro.\n\n<!-- status:begin -->\nold status\n<!-- status:end -->\n\n"
      "<!-- tables:begin -->\nold tables\n<!-- tables:end -->\n\n## Comparison\n\nHand-written.\n");
  const std::string args = "'" + dir.file("run") + "' '" + page + "' results";
  auto r = run_command(publish(args));
  ASSERT_EQ(r.status, 0) << r.out;
  const std::string once = crnn::read_text_file(page);
  EXPECT_NE(once.find("Hand-written intro."), std::string::npos) << once;
  EXPECT_NE(once.find("## Comparison\n\nHand-written."), std::string::npos) << once;
  EXPECT_EQ(once.find("old status"), std::string::npos) << once;
  EXPECT_EQ(once.find("old tables"), std::string::npos) << once;
  EXPECT_NE(once.find("<!-- status:begin -->\nFinished runs: **3 of 8**"), std::string::npos) << once;
  EXPECT_NE(once.find("| m | 61.00 |"), std::string::npos) << once;
  EXPECT_NE(once.find("![Table I](results/table1.svg)"), std::string::npos) << once;
  EXPECT_EQ(once.find("# Title"), std::string::npos) << once;  // only from the first "## " on
  EXPECT_TRUE(fs::exists(dir.file("docs/results/table1.svg")));

  r = run_command(publish(args));
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(crnn::read_text_file(page), once);
  // Relative paths are taken from the working directory, not the repository.
  r = run_command("cd '" + dir.path().string() + "' && " + publish("run docs/results.md results"));
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(crnn::read_text_file(page), once);

  // A page without the markers is refused, untouched.
  const std::string bare = dir.write("docs/bare.md", "# no markers\n");
  r = run_command(publish("'" + dir.file("run") + "' '" + bare + "'"));
  EXPECT_EQ(r.status, 2) << r.out;
  EXPECT_NE(r.out.find("no '<!-- status:begin -->' line"), std::string::npos) << r.out;
  EXPECT_EQ(crnn::read_text_file(bare), "# no markers\n");
  r = run_command(publish("'" + dir.file("nothing") + "' '" + page + "'"));
  EXPECT_EQ(r.status, 2) << r.out;
  EXPECT_NE(r.out.find("results.md: no such file"), std::string::npos) << r.out;
}
