#pragma once
// Checks on the SVG and HTML text crnn writes (charts, reports): XML
// well-formedness, counting parts, reading a polyline's points back.
#include <cctype>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace crnn::test {

// ---------------------------------------------------------------------------
// A small XML well-formedness checker: one root element, balanced and properly
// nested tags, quoted attributes without '<', no duplicate attributes, only
// the predefined or numeric entities, no stray '<' or '&' in text. Returns ""
// when the document is well-formed, else the first problem.
inline std::string xml_problem(const std::string& s) {
  std::vector<std::string> open;
  size_t i = 0, roots = 0;
  auto entity_ok = [&](size_t at) {
    static const std::regex kEntity("&(amp|lt|gt|quot|apos|#[0-9]+|#x[0-9a-fA-F]+);");
    std::smatch m;
    const std::string tail = s.substr(at, 12);
    return std::regex_search(tail, m, kEntity) && m.position(0) == 0;
  };
  while (i < s.size()) {
    if (s[i] == '&') {
      if (!entity_ok(i)) return "bad entity at " + std::to_string(i);
      ++i;
      continue;
    }
    if (s[i] != '<') {
      if (open.empty() && !std::isspace(static_cast<unsigned char>(s[i])))
        return "text outside the root at " + std::to_string(i);
      ++i;
      continue;
    }
    if (s.compare(i, 4, "<!--") == 0) {
      const size_t e = s.find("-->", i);
      if (e == std::string::npos) return "unterminated comment";
      i = e + 3;
      continue;
    }
    if (s.compare(i, 2, "<?") == 0) {
      const size_t e = s.find("?>", i);
      if (e == std::string::npos) return "unterminated processing instruction";
      i = e + 2;
      continue;
    }
    const size_t e = s.find('>', i);
    if (e == std::string::npos) return "unterminated tag at " + std::to_string(i);
    std::string tag = s.substr(i + 1, e - i - 1);
    i = e + 1;
    if (!tag.empty() && tag[0] == '/') {
      const std::string name = tag.substr(1);
      if (open.empty() || open.back() != name)
        return "</" + name + "> closes " + (open.empty() ? "nothing" : "<" + open.back() + ">");
      open.pop_back();
      continue;
    }
    const bool self_closing = !tag.empty() && tag.back() == '/';
    if (self_closing) tag.pop_back();
    static const std::regex kName("^([A-Za-z_][-A-Za-z0-9_:.]*)");
    std::smatch m;
    if (!std::regex_search(tag, m, kName)) return "bad tag <" + tag + ">";
    const std::string name = m[1];
    std::string rest = tag.substr(name.size());
    static const std::regex kAttr(R"(^\s+([A-Za-z_][-A-Za-z0-9_:.]*)="([^"<]*)\")");
    std::set<std::string> seen;
    while (std::regex_search(rest, m, kAttr)) {
      if (!seen.insert(m[1]).second) return "duplicate attribute " + m[1].str() + " in <" + name + ">";
      const std::string value = m[2];
      for (size_t a = value.find('&'); a != std::string::npos; a = value.find('&', a + 1))
        if (!std::regex_search(value.substr(a), std::regex("^&(amp|lt|gt|quot|apos|#[0-9]+);")))
          return "bad entity in attribute of <" + name + ">";
      rest = m.suffix();
    }
    if (rest.find_first_not_of(" \t\n") != std::string::npos)
      return "malformed attributes in <" + tag + ">";
    if (open.empty() && ++roots > 1) return "more than one root element";
    if (!self_closing) open.push_back(name);
  }
  if (!open.empty()) return "<" + open.back() + "> is never closed";
  if (roots != 1) return "no root element";
  return "";
}

inline std::string read(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline int count_of(const std::string& text, const std::string& part) {
  int n = 0;
  for (size_t p = text.find(part); p != std::string::npos; p = text.find(part, p + 1)) ++n;
  return n;
}

/// The points of the polyline whose data-series is `name`, as (x, y) pairs.
inline std::vector<std::pair<double, double>> polyline(const std::string& svg, const std::string& name) {
  const std::regex re("<polyline class=\"series\" data-series=\"" + name + "\" points=\"([^\"]*)\"");
  std::smatch m;
  if (!std::regex_search(svg, m, re)) return {};
  std::vector<std::pair<double, double>> pts;
  std::stringstream ss(m[1].str());
  for (std::string pair; ss >> pair;) {
    const auto comma = pair.find(',');
    pts.emplace_back(std::stod(pair.substr(0, comma)), std::stod(pair.substr(comma + 1)));
  }
  return pts;
}

}  // namespace crnn::test
