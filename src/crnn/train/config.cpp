#include "crnn/train/config.h"

#include <fmt/core.h>
#include <toml++/toml.h>

#include "crnn/data/manifest.h"
#include "crnn/train/config_keys.h"
#include "crnn/train/toml_input.h"
#include "crnn/util/text.h"
#include "crnn/util/threads.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>
#include <map>
#include <regex>
#include <set>
#include <sstream>

namespace crnn::train {
namespace {

using nn::FrontEndLayerOptions;

/// Sets t[key] to one `--set` value parsed as TOML; a bare word is a string.
void assign(toml::table& t, const std::string& key, const std::string& text) {
  try {
    auto parsed = toml::parse("v = " + text);
    if (auto* n = parsed.get("v")) {
      n->visit([&](auto&& v) { t.insert_or_assign(key, v); });
      return;
    }
  } catch (const toml::parse_error&) {
  }
  t.insert_or_assign(key, text);
}

void set_path(toml::table& root, const std::string& assignment) {
  const auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0)
    throw ConfigError("--set " + assignment + ": expected section.key=value");
  // "train.lr = 0.001" (spaces around '=', as TOML writes it) is "train.lr=0.001".
  const std::string path = crnn::trim(assignment.substr(0, eq)), value = crnn::trim(assignment.substr(eq + 1));
  std::vector<std::string> parts;
  std::stringstream ss(path);
  for (std::string p; std::getline(ss, p, '.');) parts.push_back(p);
  if (parts.size() < 2) throw ConfigError("--set " + assignment + ": expected section.key=value");
  // model.front_end.<i|*>.key
  if (parts.size() == 4 && parts[0] == "model" && parts[1] == "front_end") {
    auto* arr = root["model"]["front_end"].as_array();
    if (!arr) throw ConfigError("--set " + path + ": the config has no model.front_end layers");
    // A layer index is written as the layer's number ("01" or a huge number name no layer).
    bool names_a_layer = parts[2] == "*";
    for (size_t i = 0; i < arr->size(); ++i) names_a_layer = names_a_layer || parts[2] == std::to_string(i);
    if (!names_a_layer)
      throw ConfigError("--set " + path + ": no front-end layer '" + parts[2] + "' (have " +
                        std::to_string(arr->size()) + ": 0.." + std::to_string(arr->size() - 1) + " or *)");
    for (size_t i = 0; i < arr->size(); ++i) {
      if (parts[2] != "*" && parts[2] != std::to_string(i)) continue;
      auto* layer = arr->get(i)->as_table();
      if (!layer) throw ConfigError("--set " + path + ": model.front_end entries must be tables");
      assign(*layer, parts[3], value);
    }
    return;
  }
  if (parts.size() != 2) throw ConfigError("--set " + path + ": expected section.key=value");
  if (!root.contains(parts[0])) root.insert(parts[0], toml::table{});
  auto* section = root[parts[0]].as_table();
  if (!section) throw ConfigError("--set " + path + ": '" + parts[0] + "' is not a section");
  assign(*section, parts[1], value);
}

}  // namespace

namespace {

/// RunConfig::parse without naming the `--set` that caused an error.
RunConfig parse_unblamed(const std::string& text, const std::vector<std::string>& overrides,
                         const std::string& source);

/// An error on a key that a `--set` assigned blames the override, not the file:
/// "--set train.lr=abc: train.lr: expected a number".
std::string blame_override(const std::string& message, const std::vector<std::string>& overrides,
                           const std::string& source) {
  const std::string prefix = source + ": ";
  if (message.rfind(prefix, 0) != 0) return message;
  const std::string rest = message.substr(prefix.size());
  const std::string key = rest.substr(0, rest.find(':'));
  // The last assignment of a key is the one in effect: blame that one.
  for (auto it = overrides.rbegin(); it != overrides.rend(); ++it) {
    const std::string& o = *it;
    const std::string path = crnn::trim(o.substr(0, o.find('=')));
    // The key itself, or a table the override created (a misspelt section: "trian.lr=...").
    bool match = key == path || (path.size() > key.size() && path.compare(0, key.size() + 1, key + ".") == 0);
    const std::string any_layer = "model.front_end.*.";
    if (path.rfind(any_layer, 0) == 0 && key.rfind("model.front_end.", 0) == 0) {
      const std::string leaf = path.substr(any_layer.size());
      match = key.size() > leaf.size() && key.compare(key.size() - leaf.size() - 1, std::string::npos, "." + leaf) == 0;
    }
    if (match) return "--set " + o + " (on " + source + "): " + rest;
  }
  return message;
}

}  // namespace

RunConfig RunConfig::parse(const std::string& text, const std::vector<std::string>& overrides,
                           const std::string& source) {
  try {
    return parse_unblamed(text, overrides, source);
  } catch (const ConfigError& e) {
    throw ConfigError(blame_override(e.what(), overrides, source), e.unknown_key());
  }
}

namespace {

RunConfig parse_unblamed(const std::string& text, const std::vector<std::string>& overrides,
                         const std::string& source) {
  toml::table root = parse_toml(text, source);
  // Overrides of whole keys first (model.preset included), then the preset's
  // layers are written out so that per-layer overrides have layers to change.
  std::vector<std::string> layer_overrides;
  for (const auto& o : overrides) {
    if (o.rfind("model.front_end.", 0) == 0) layer_overrides.push_back(o);
    else set_path(root, o);
  }
  if (!layer_overrides.empty()) {
    auto* model_t = root["model"].as_table();
    if (model_t && !model_t->contains("front_end")) {
      if (auto preset = (*model_t)["preset"].value<std::string>()) {
        ModelConfig m;
        try {
          apply_preset(m, *preset);
        } catch (const c10::Error& e) {
          fail_key(source, "model.preset", e.what_without_backtrace());
        }
        model_t->insert("front_end", layers_to_toml(m.front_end));
      }
    }
  }
  for (const auto& o : layer_overrides) set_path(root, o);

  const TomlReader r{source};
  r.check_keys(root, "", {"data", "model", "train"});
  RunConfig c;
  std::map<std::string, std::set<std::string>> known;
  for (const auto& k : config_keys()) known[k.section].insert(k.name);
  for (const auto& [name, keys] : known) r.check_keys(r.table(root, "", name), name, keys);
  for (const auto& k : config_keys()) k.read(r, r.table(root, "", k.section), c);
  for (const auto& k : config_keys())
    if (const std::string problem = k.check(c); !problem.empty()) r.fail(k.section, k.name, problem);
  // Model validity: build the options (layer checks included) once.
  try {
    auto o = c.model_options(2, 26);
    o.validate();
    int64_t size = 26;
    for (size_t i = 0; i < o.front_end().size(); ++i) {
      const auto& l = o.front_end()[i];
      if (l.convolutional()) l.conv_options(size).validate();
      else l.recurrent_options(size).validate();
      size = l.features();
    }
  } catch (const c10::Error& e) {
    fail_key(source, "model", e.what_without_backtrace());
  }
  return c;
}

}  // namespace

RunConfig RunConfig::from_file(const std::string& path, const std::vector<std::string>& overrides) {
  if (!std::filesystem::exists(path)) throw ConfigError(path + ": no such config file");
  return parse(crnn::read_text_file(path), overrides, path);
}

RunConfig RunConfig::for_preset(const std::string& preset, const std::vector<std::string>& overrides) {
  if (!overrides.empty()) return parse(for_preset(preset).to_toml(), overrides, preset);
  RunConfig c;
  try {
    c.model.preset = preset;
    apply_preset(c.model, preset);
  } catch (const c10::Error& e) {
    throw ConfigError(e.what_without_backtrace());
  }
  const bool emotion = preset.rfind("emotion", 0) == 0;
  c.data.manifest = emotion ? "ravdess.csv" : "speechocean762.csv";
  c.data.features = emotion ? "ravdess.h5" : "speechocean762.h5";
  c.data.task = emotion ? "emotion8" : "gender3";
  return c;
}

nn::SequenceClassifierOptions RunConfig::model_options(int64_t num_classes, int64_t input_size) const {
  nn::SequenceClassifierOptions o(input_size, num_classes);
  o.front_end(model.front_end)
      .recurrent_size(model.recurrent_size)
      .bidirectional(model.bidirectional)
      .peepholes(model.peepholes)
      .dense_size(model.dense_size)
      .average_last(model.average_last);
  return o;
}

std::vector<std::string> RunConfig::changed_lines(const RunConfig& other) const {
  auto lines = [](const std::string& toml) {
    std::vector<std::string> out;
    std::stringstream in(toml);
    std::string section;
    for (std::string line; std::getline(in, line);) {
      if (!line.empty() && line[0] == '[') section = line;
      else if (!line.empty() && line[0] != '#') out.push_back(section + " " + line);
    }
    return out;
  };
  const auto before = lines(to_toml()), after = lines(other.to_toml());
  std::vector<std::string> changed;
  for (const auto& l : after)
    if (std::find(before.begin(), before.end(), l) == before.end()) changed.push_back(l);
  // Same lines in another order (front-end layers swapped): still a change.
  if (changed.empty() && to_toml() != other.to_toml()) changed.push_back("(layer order)");
  return changed;
}

namespace {

/// The config as TOML: every key for which `include` is true.
std::string toml_text(const RunConfig& c, const std::function<bool(const ConfigKey&)>& include) {
  toml::table root;
  for (const char* section : {"data", "model", "train"}) root.insert(section, toml::table{});
  for (const auto& k : config_keys())
    if (include(k)) k.write(c, *root[k.section].as_table());
  std::stringstream ss;
  ss << "# crnn run configuration (fully resolved)\n" << root << "\n";
  return ss.str();
}

/// Floats outside quotes in their shortest round-trip form (toml++ writes
/// 0.9 as 0.90000000000000002): "0.9", "0.002", "0.0".
std::string shortest_floats(const std::string& text) {
  static const std::regex kFloat(R"((^|[\s\[,=])(-?[0-9]+\.[0-9]+(?:[eE][-+]?[0-9]+)?)(?=$|[\s\],]))");
  std::string out;
  std::stringstream in(text);
  for (std::string line; std::getline(in, line);) {
    const size_t quote = line.find_first_of("'\"");
    std::string head = line.substr(0, quote), tail = quote == std::string::npos ? "" : line.substr(quote);
    std::string fixed;
    auto begin = std::sregex_iterator(head.begin(), head.end(), kFloat);
    size_t last = 0;
    for (auto it = begin; it != std::sregex_iterator(); ++it) {
      const auto& m = *it;
      const size_t at = static_cast<size_t>(m.position(2));
      std::string shortest = fmt::format("{}", std::strtod(m.str(2).c_str(), nullptr));
      if (shortest.find_first_of(".eEn") == std::string::npos) shortest += ".0";  // stays a TOML float
      fixed += head.substr(last, at - last) + shortest;
      last = at + static_cast<size_t>(m.length(2));
    }
    out += fixed + head.substr(last) + tail + "\n";
  }
  return out;
}

}  // namespace

std::string RunConfig::to_toml() const {
  return shortest_floats(
      toml_text(*this, [this](const ConfigKey& k) { return k.dump_default || !k.at_default(*this); }));
}

void RunConfig::validate(const std::string& source) const {
  // One validation place: the fields as TOML, through the same key checks as a file.
  (void)parse(to_toml(), {}, source);
}

std::vector<std::string> RunConfig::notes() const {
  std::vector<std::string> out;
  if (train.min_epochs > train.max_epochs)
    out.push_back(fmt::format("train.min_epochs = {} is more than train.max_epochs = {}: every run trains {} "
                              "epochs, and early stopping (train.patience) never starts",
                              train.min_epochs, train.max_epochs, train.max_epochs));
  return out;
}

std::string RunConfig::identity_toml() const {
  return toml_text(*this, [this](const ConfigKey& k) { return !k.at_legacy || !k.at_legacy(*this); });
}

}  // namespace crnn::train
