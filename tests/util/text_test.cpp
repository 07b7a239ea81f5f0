#include "crnn/util/text.h"

#include <gtest/gtest.h>

namespace {

// Hand-checked against RFC 3629's table of well-formed byte sequences.
TEST(Utf8, FirstInvalidByteIsFound) {
  const auto ok = std::string_view::npos;
  EXPECT_EQ(crnn::utf8_error_at(""), ok);
  EXPECT_EQ(crnn::utf8_error_at("plain ascii"), ok);
  EXPECT_EQ(crnn::utf8_error_at("l\xc3\xa9ger"), ok);               // é, 2 bytes
  EXPECT_EQ(crnn::utf8_error_at("\xe2\x82\xac \xf0\x9f\x98\x80"), ok);  // €, 😀
  EXPECT_EQ(crnn::utf8_error_at("\xf4\x8f\xbf\xbf"), ok);             // U+10FFFF, the last code point
  EXPECT_EQ(crnn::utf8_error_at("l\xe9ger"), 1u);                    // Latin-1 é
  EXPECT_EQ(crnn::utf8_error_at("ab\x80"), 2u);                      // a lone continuation byte
  EXPECT_EQ(crnn::utf8_error_at("a\xc3"), 1u);                       // truncated at the end
  EXPECT_EQ(crnn::utf8_error_at("\xe2\x82"), 0u);                    // truncated 3-byte sequence
  EXPECT_EQ(crnn::utf8_error_at("\xc0\xaf"), 0u);                    // overlong '/'
  EXPECT_EQ(crnn::utf8_error_at("\xe0\x80\xaf"), 0u);                // overlong, 3 bytes
  EXPECT_EQ(crnn::utf8_error_at("\xed\xa0\x80"), 0u);                // a surrogate (U+D800)
  EXPECT_EQ(crnn::utf8_error_at("\xf4\x90\x80\x80"), 0u);            // above U+10FFFF
  EXPECT_EQ(crnn::utf8_error_at("ok\xf5\x80\x80\x80"), 2u);          // 0xf5 never occurs
}

TEST(Utf8, PrintableEscapesWhatATerminalWouldGarble) {
  EXPECT_EQ(crnn::printable("l\xc3\xa9ger"), "l\xc3\xa9ger");  // valid UTF-8 stays
  EXPECT_EQ(crnn::printable("l\xe9ger"), "l\\xe9ger");
  EXPECT_EQ(crnn::printable(std::string("a\x01\tb\x7f", 5)), "a\\x01\\x09b\\x7f");
  EXPECT_EQ(crnn::printable("abcdef", 4), "abcd...");
}

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
