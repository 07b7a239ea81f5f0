#include "crnn/util/text.h"

#include <gtest/gtest.h>

namespace {

TEST(Trim, RemovesSpacesAndTabsAtBothEnds) {
  EXPECT_EQ(crnn::trim("  calm \t"), "calm");
  EXPECT_EQ(crnn::trim("\tneutral"), "neutral");
  EXPECT_EQ(crnn::trim("sad"), "sad");
}

TEST(Trim, KeepsInnerWhitespace) { EXPECT_EQ(crnn::trim(" very happy  "), "very happy"); }

TEST(Trim, AllWhitespaceOrEmptyGivesEmpty) {
  EXPECT_EQ(crnn::trim(""), "");
  EXPECT_EQ(crnn::trim(" \t \t"), "");
}

TEST(Trim, DefaultLeavesLineEndsButCustomSetStripsThem) {
  EXPECT_EQ(crnn::trim(" 3.5\r\n"), "3.5\r\n");
  EXPECT_EQ(crnn::trim(" 3.5\r\n", " \t\r\n"), "3.5");
  EXPECT_EQ(crnn::trim("\r\n", " \t\r\n"), "");
}

TEST(Trim, SingleCharacter) {
  EXPECT_EQ(crnn::trim("x"), "x");
  EXPECT_EQ(crnn::trim(" "), "");
}

}  // namespace

TEST(Text, ToLowerFoldsAsciiLettersOnly) {
  EXPECT_EQ(crnn::to_lower("Path ID .WAV"), "path id .wav");
  EXPECT_EQ(crnn::to_lower(""), "");
  // UTF-8 bytes are left alone (no locale-dependent folding of "É").
  EXPECT_EQ(crnn::to_lower("\xC3\x89t\xC3\xA9 S6"), "\xC3\x89t\xC3\xA9 s6");
}
