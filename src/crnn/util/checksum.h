#pragma once
/// \file checksum.h
/// CRC-32 (IEEE 802.3, as zlib and PNG compute it): the integrity check of
/// feature rows (data/feature_store.h) and model files (train/checkpoint.h).
/// It detects every burst of flipped bits up to 32 long and all but 2^-32 of
/// other damage — meant for disk and copy errors, not for tampering.
///
/// \code
///   uint32_t c = crnn::crc32("123456789", 9);     // 0xCBF43926
///   c = crnn::crc32(more, n, c);                   // continue over a second buffer
/// \endcode

#include <cstddef>
#include <cstdint>
#include <string>

namespace crnn {

/// CRC-32 of `size` bytes, continuing from `crc` (0 to start).
uint32_t crc32(const void* data, size_t size, uint32_t crc = 0);
inline uint32_t crc32(const std::string& s, uint32_t crc = 0) { return crc32(s.data(), s.size(), crc); }

}  // namespace crnn
