#include "crnn/util/text.h"

#include <gtest/gtest.h>

#include <cmath>

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

// Names typed two ways get one key: case, spaces, and accents precomposed (NFC)
// or as combining marks (NFD, macOS file names); other letters stay apart.
TEST(Text, NameKeyFoldsCaseSpacesAndAccentsInEitherUnicodeForm) {
  const std::string nfc = "\xC3\x87" "elik";       // "Çelik", U+00C7
  const std::string nfd = "C\xCC\xA7" "elik";      // "C" + U+0327 combining cedilla
  EXPECT_NE(nfc, nfd);
  EXPECT_EQ(crnn::name_key(nfc), "celik");
  EXPECT_EQ(crnn::name_key(nfd + " "), "celik");
  EXPECT_EQ(crnn::name_key("Jos\xC3\xA9"), crnn::name_key("Jose\xCC\x81"));  // é both ways
  EXPECT_EQ(crnn::name_key("\xC5\x81\xC3\xB3" "d\xC5\xBA"), "\xC5\x81odz");  // "Łódź": Ł has no base letter (kept); ó→o, ź→z
  EXPECT_NE(crnn::name_key("M\xC3\xBCller"), crnn::name_key("M\xC3\xB6ller"));  // Müller ≠ Möller
  EXPECT_EQ(crnn::name_key("SPK 5 "), "spk 5");
  EXPECT_EQ(crnn::name_key("\xE4\xB8\xAD"), "\xE4\xB8\xAD");  // other scripts unchanged
  EXPECT_EQ(crnn::name_key("a\xC3"), "a\xC3");  // a truncated sequence is kept as it is
}

TEST(Text, ParseTakesWholeNumbersOnly) {
  EXPECT_EQ(crnn::parse_integer("26"), 26);
  EXPECT_EQ(crnn::parse_integer("-3"), -3);
  EXPECT_EQ(crnn::parse_integer("26abc"), std::nullopt);
  EXPECT_EQ(crnn::parse_integer(""), std::nullopt);
  EXPECT_EQ(crnn::parse_integer("99999999999999999999"), std::nullopt);  // beyond int64
  EXPECT_EQ(crnn::parse_number("0.5"), 0.5);
  EXPECT_EQ(crnn::parse_number("1e3"), 1000.0);
  EXPECT_EQ(crnn::parse_number("10ms"), std::nullopt);
  EXPECT_EQ(crnn::parse_number("x"), std::nullopt);
  EXPECT_TRUE(std::isnan(*crnn::parse_number("nan")));  // a number; callers judge its range
}

TEST(Text, ToLowerFoldsAsciiLettersOnly) {
  EXPECT_EQ(crnn::to_lower("Path ID .WAV"), "path id .wav");
  EXPECT_EQ(crnn::to_lower(""), "");
  // UTF-8 bytes are left alone (no locale-dependent folding of "É").
  EXPECT_EQ(crnn::to_lower("\xC3\x89t\xC3\xA9 S6"), "\xC3\x89t\xC3\xA9 s6");
}
