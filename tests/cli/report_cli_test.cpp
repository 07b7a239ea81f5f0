#include "crnn/train/report.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "support/test_support.h"
#include "train/run_fixture.h"

namespace {
namespace fs = std::filesystem;
using crnn::test::CliRun;
using crnn::test::contains;
using crnn::test::expect_index_complete;
using crnn::test::run_crnn;
using crnn::test::TempDir;
using crnn::test::write_run;
using namespace crnn::train;
}  // namespace


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
