#include "crnn/util/checksum.h"

#include <gtest/gtest.h>

#include <string>

// The standard check value of CRC-32/ISO-HDLC (zlib's crc32) and the empty input.
TEST(Checksum, Crc32CheckValues) {
  EXPECT_EQ(crnn::crc32("123456789"), 0xCBF43926u);
  EXPECT_EQ(crnn::crc32(""), 0u);
  EXPECT_EQ(crnn::crc32("The quick brown fox jumps over the lazy dog"), 0x414FA339u);
}

TEST(Checksum, ContinuesOverPiecesAndSeesEveryFlippedBit) {
  const std::string s = "crnn feature row bytes";
  EXPECT_EQ(crnn::crc32(s.substr(7), crnn::crc32(s.substr(0, 7))), crnn::crc32(s));
  for (size_t i = 0; i < s.size(); ++i)
    for (int bit = 0; bit < 8; ++bit) {
      std::string t = s;
      t[i] = static_cast<char>(t[i] ^ (1 << bit));
      EXPECT_NE(crnn::crc32(t), crnn::crc32(s)) << i << ":" << bit;
    }
}
