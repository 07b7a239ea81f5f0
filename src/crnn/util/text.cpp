#include "crnn/util/text.h"

#include <fmt/core.h>

#include <cctype>
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

std::string percent(double fraction, int decimals, std::string_view suffix) {
  if (!std::isfinite(fraction)) return "—";
  return fmt::format("{:.{}f}{}", 100 * fraction, decimals, suffix);
}

}  // namespace crnn
