#include "crnn/util/text.h"

#include <fmt/core.h>

#include <cctype>
#include <cstdint>
#include <cmath>

namespace crnn {

std::string to_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string trim(std::string_view s, std::string_view chars) {
  const size_t b = s.find_first_not_of(chars);
  if (b == std::string_view::npos) return "";
  return std::string(s.substr(b, s.find_last_not_of(chars) - b + 1));
}

std::string xml_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

namespace {
bool file_safe_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_'; }
}  // namespace

bool is_file_safe(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!file_safe_char(c)) return false;
  return true;
}

std::string file_safe_name(std::string_view s) {
  std::string out;
  for (char c : s) out += file_safe_char(c) ? c : '_';
  return out.empty() ? "_" : out;
}

std::string first_few(const std::vector<std::string>& items, size_t shown) {
  std::string out;
  for (size_t i = 0; i < items.size() && i < shown; ++i) out += (i ? ", " : "") + items[i];
  if (items.size() > shown) out += fmt::format(" and {} more", items.size() - shown);
  return out;
}

std::string percent(double fraction, int decimals, std::string_view suffix) {
  if (!std::isfinite(fraction)) return "—";
  return fmt::format("{:.{}f}{}", 100 * fraction, decimals, suffix);
}

std::optional<int64_t> parse_integer(const std::string& s) {
  size_t used = 0;
  try {
    const int64_t x = std::stoll(s, &used);
    if (used == s.size()) return x;
  } catch (const std::exception&) {  // invalid_argument, out_of_range
  }
  return std::nullopt;
}

std::optional<double> parse_number(const std::string& s) {
  size_t used = 0;
  try {
    const double x = std::stod(s, &used);
    if (used == s.size()) return x;
  } catch (const std::exception&) {
  }
  return std::nullopt;
}

std::string name_key(std::string_view s) {
  // Base letter of U+00C0..U+017F where the character decomposes into an ASCII
  // letter and combining marks (Unicode NFD); '.' where it does not (Æ, Ø, ß, Ł, ...).
  static constexpr std::string_view kBase =
      "AAAAAA.CEEEEIIII.NOOOOO..UUUUY..aaaaaa.ceeeeiiii.nooooo..uuuuy.y"
      "AaAaAaCcCcCcCcDd..EeEeEeEeEeGgGgGgGgHh..IiIiIiIiI...JjKk.LlLlLl."
      "...NnNnNn...OoOoOo..RrRrRrSsSsSsSsTtTt..UuUuUuUuUuUuWwYyYZzZzZz.";
  std::string out;
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    // Two-byte sequences cover U+0080..U+07FF: the Latin letters and the combining marks.
    if (c >= 0xc2 && c <= 0xdf && i + 1 < s.size() && (static_cast<unsigned char>(s[i + 1]) & 0xc0) == 0x80) {
      const uint32_t cp = ((c & 0x1fu) << 6) | (static_cast<unsigned char>(s[i + 1]) & 0x3fu);
      if (cp >= 0x300 && cp <= 0x36f) {
        i += 2;
        continue;
      }
      if (cp >= 0xc0 && cp < 0xc0 + kBase.size() && kBase[cp - 0xc0] != '.') {
        out += kBase[cp - 0xc0];
        i += 2;
        continue;
      }
    }
    out += s[i++];
  }
  return trim(to_lower(out));
}

size_t utf8_error_at(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n;
    uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if (c >= 0xc2 && c <= 0xdf) {
      n = 1, cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
      n = 2, cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3, cp = c & 0x07;
    } else {
      return i;  // a continuation byte, 0xc0/0xc1 (always overlong) or 0xf5..0xff
    }
    if (i + n >= s.size()) return i;  // truncated: the sequence needs bytes i+1 .. i+n
    for (size_t k = 1; k <= n; ++k) {
      const auto d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xc0) != 0x80) return i;
      cp = (cp << 6) | (d & 0x3f);
    }
    if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
      return i;
    i += n + 1;
  }
  return std::string_view::npos;
}

std::string printable(std::string_view s, size_t max_bytes) {
  std::string out;
  size_t i = 0;
  while (i < s.size() && i < max_bytes) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f) {
      out += fmt::format("\\x{:02x}", c);
      ++i;
    } else if (c < 0x80) {
      out += s[i++];
    } else if (const size_t n = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
               i + n <= s.size() && utf8_error_at(s.substr(i, n)) == std::string_view::npos) {
      out.append(s.substr(i, n));  // one valid multi-byte character
      i += n;
    } else {
      out += fmt::format("\\x{:02x}", c);
      ++i;
    }
  }
  return i < s.size() ? out + "..." : out;
}

}  // namespace crnn
