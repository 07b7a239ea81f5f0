// Durations: format_duration for progress lines, parse_duration for
// `--time-limit`; both worked out by hand.
#include <gtest/gtest.h>

#include <string>

#include "crnn/util/progress.h"

TEST(FormatDuration, MinutesSecondsThenHours) {
  EXPECT_EQ(crnn::format_duration(0), "00:00");
  EXPECT_EQ(crnn::format_duration(59.6), "01:00");
  EXPECT_EQ(crnn::format_duration(3599), "59:59");
  EXPECT_EQ(crnn::format_duration(3600 + 2 * 60 + 3), "1:02:03");
  EXPECT_EQ(crnn::format_duration(-1), "--:--");
  EXPECT_EQ(crnn::format_duration(1e8), "--:--");
}

TEST(ParseDuration, HoursMinutesSecondsOrPlainSeconds) {
  EXPECT_EQ(crnn::parse_duration("3600"), 3600.0);
  EXPECT_EQ(crnn::parse_duration("0.5"), 0.5);
  EXPECT_EQ(crnn::parse_duration("90m"), 5400.0);
  EXPECT_EQ(crnn::parse_duration("2h30m"), 9000.0);
  EXPECT_EQ(crnn::parse_duration(" 1h 5m 30s "), 3600.0 + 300 + 30);
  EXPECT_EQ(crnn::parse_duration("7.5h"), 27000.0);
  EXPECT_EQ(crnn::parse_duration("45s"), 45.0);
  EXPECT_EQ(crnn::parse_duration("0s"), 0.0);
}

TEST(ParseDuration, RefusesAnythingElse) {
  for (const std::string bad : {"", " ", "soon", "h", "1d", "-5", "5m2h", "1.2.3", "1e3", "2 hours", "1h1h", "1h30", "1m30"})
    EXPECT_FALSE(crnn::parse_duration(bad).has_value()) << "'" << bad << "'";
  // Longer than 64 characters: refused, not an exception or a deep regex recursion.
  EXPECT_FALSE(crnn::parse_duration(std::string(400, '9')).has_value());
  EXPECT_FALSE(crnn::parse_duration(std::string(100000, '1') + "h").has_value());
  // 64 characters are still read.
  EXPECT_EQ(crnn::parse_duration(std::string(63, '0') + "7"), 7.0);
}

TEST(Progress, AnInvisibleOneCountsButPrintsNothing) {
  crnn::Progress::force_terminal(0);
  testing::internal::CaptureStderr();
  {
    crnn::Progress shown("work", 3, "items", 0.0);
    shown.advance(3);
    shown.finish("done");
  }
  const std::string visible = testing::internal::GetCapturedStderr();
  EXPECT_NE(visible.find("work: 3/3 items"), std::string::npos) << visible;
  testing::internal::CaptureStderr();
  {
    crnn::Progress quiet("work", 3, "items", 0.0, /*visible=*/false);
    quiet.advance(3);
    EXPECT_EQ(quiet.done(), 3);
    quiet.finish("done");
  }
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "");
  crnn::Progress::force_terminal(-1);
}
