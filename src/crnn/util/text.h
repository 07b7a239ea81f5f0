#pragma once
/// \file text.h
/// Small string helpers shared by the readers and writers of text files
/// (manifests, corpus lists, metrics.csv, reports), so each one trims,
/// escapes and formats the same way.
///
/// \code
///   crnn::trim("  calm \t");            // "calm"
///   crnn::trim("3.5\r\n", " \t\r\n");  // "3.5"
///   crnn::xml_escape("a<b & 'c'");     // "a&lt;b &amp; &#39;c&#39;"
///   crnn::file_safe_name("seed 1/a");  // "seed_1_a"
///   crnn::percent(0.41253, 2);         // "41.25";  crnn::percent(NAN, 1, "%") == "—"
/// \endcode

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace crnn {

/// `s` without leading and trailing characters from `chars` (spaces and tabs
/// by default); "" when `s` holds nothing else.
std::string trim(std::string_view s, std::string_view chars = " \t");

/// `s` with ASCII letters in lower case (other bytes, UTF-8 included, as they are).
std::string to_lower(std::string_view s);

/// Escapes text for XML/HTML content and attribute values (& < > " ').
std::string xml_escape(std::string_view s);

/// Whether `s` is non-empty and only letters, digits, '-' and '_': usable as
/// a file name and an unescaped relative URL as it is.
bool is_file_safe(std::string_view s);

/// `s` with every character other than letters, digits, '-' and '_' replaced
/// by '_' ("_" for an empty `s`).
std::string file_safe_name(std::string_view s);

/// The byte offset of the first byte of `s` that does not begin a valid UTF-8
/// sequence (overlong forms, surrogates and code points above U+10FFFF are
/// invalid, as in RFC 3629), or std::string_view::npos when `s` is valid UTF-8.
size_t utf8_error_at(std::string_view s);

/// `s` as a whole number (std::stoll / std::stod syntax; stod also takes
/// "nan" and "inf"), or nullopt when it is none, out of range, or has
/// anything after the number ("26abc", "10ms").
std::optional<int64_t> parse_integer(const std::string& s);
std::optional<double> parse_number(const std::string& s);

/// A key under which names that differ only in case, surrounding spaces or the
/// accents of Latin letters are equal — whether an accent is precomposed (NFC,
/// "ç" U+00E7) or a combining mark (NFD, "c" + U+0327, as macOS file names
/// give): ASCII lower-cased, trimmed, Latin-1 / Latin Extended-A letters
/// reduced to their base letter, combining marks U+0300–U+036F dropped.
///   crnn::name_key(" Çelik") == crnn::name_key("c\u0327elik") == "celik"
std::string name_key(std::string_view s);

/// `s` for a message: at most `max_bytes` bytes (then "..."), and bytes that
/// are control characters or not valid UTF-8 as \xHH (so a Latin-1 byte
/// shows as \xe9 and a binary file does not garble the terminal).
std::string printable(std::string_view s, size_t max_bytes = 80);

/// A fraction as a percentage with `decimals` decimals and `suffix` after it
/// ("41.25", "41.3%"); "—" when not finite (a missing value).
std::string percent(double fraction, int decimals, std::string_view suffix = "");

/// The first `shown` items joined with ", ", then " and N more" for the rest:
/// a list in a message that stays one line ("a, b, c and 4 more").
std::string first_few(const std::vector<std::string>& items, size_t shown);

}  // namespace crnn
