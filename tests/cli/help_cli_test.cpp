// `crnn <subcommand> --help` states every option's default. The values below
// are the defaults docs/training.md and docs/performance.md give; the help
// text is taken from the variable each option is bound to, so it shows what
// the command does.
#include <gtest/gtest.h>

#include <regex>
#include <string>
#include <vector>

#include "support/test_support.h"

namespace {

using crnn::test::run_crnn;

TEST(HelpCli, OptionsStateTheirDefaults) {
  struct Case {
    std::string command, option, default_value;
  };
  const std::vector<Case> cases = {
      {"repeat", "--seeds", "5"},        {"repeat", "--first-seed", "1"}, {"eval", "--split", "test"},
      {"eval", "--batch-size", "32"},    {"predict", "--batch-size", "32"}, {"predict", "--split", "all"},
      {"bench", "--frames", "300"},      {"bench", "--batch", "32"},      {"bench", "--min-seconds", "2"},
      {"bench", "--min-reps", "3"},      {"features", "--num-bins", "26"}, {"experiment", "--jobs", "1"},
  };
  for (const auto& c : cases) {
    auto r = run_crnn(c.command + " --help");
    ASSERT_EQ(r.status, 0) << r.out;
    // "  --seeds INT:INT in 1..1000=5": the option, its type and checks, then =default.
    const std::regex line("\\n +(-[a-z],)?" + c.option + " [^\\n=]*=" + c.default_value + "( |\\n)");
    EXPECT_TRUE(std::regex_search(r.out, line)) << c.command << " " << c.option << "\n" << r.out;
  }
}

}  // namespace
