#include "crnn/train/config.h"

#include <fmt/core.h>
#include <toml++/toml.h>

#include "crnn/data/manifest.h"
#include "crnn/train/toml_input.h"
#include "crnn/util/threads.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <set>
#include <sstream>

namespace crnn::train {
namespace {

using nn::FrontEndLayerOptions;

const std::set<std::string> kDataKeys{"manifest", "features", "task", "split_column", "folds",
                                      "fold", "valid_speakers_per_class", "split_seed", "normalization"};
const std::set<std::string> kModelKeys{"preset", "front_end", "recurrent_size", "bidirectional",
                                       "peepholes", "dense_size", "average_last"};
const std::set<std::string> kLayerKeys{"type", "features", "hidden_size", "extended", "source",
                                       "combine", "reduce", "activation", "window", "shift",
                                       "pool", "pool_shift", "peepholes"};
const std::set<std::string> kTrainKeys{"lr", "betas", "batch_size", "max_epochs", "patience", "min_epochs",
                                       "selection_metric", "seed", "threads", "clip_norm"};


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
  const std::string path = assignment.substr(0, eq), value = assignment.substr(eq + 1);
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

struct Reader {
  const std::string& source;

  template <typename T>
  void get(const toml::table& t, const std::string& section, const std::string& key, T& out) {
    const toml::node* n = t.get(key);
    if (!n) return;
    const std::string name = section + "." + key;
    if constexpr (std::is_same_v<T, bool>) {
      if (auto v = n->value_exact<bool>()) out = *v;  // strict: 1 is not true
      else fail_key(source, name, "expected true or false");
    } else if constexpr (std::is_same_v<T, std::string>) {
      if (auto v = n->value_exact<std::string>()) out = *v;
      else fail_key(source, name, "expected a string");
    } else if constexpr (std::is_floating_point_v<T>) {
      if (auto v = n->value<double>()) out = *v;
      else fail_key(source, name, "expected a number");
    } else {
      if (!n->is_integer()) fail_key(source, name, "expected an integer");
      const int64_t v = *n->value<int64_t>();
      if constexpr (std::is_unsigned_v<T>) {
        if (v < 0) fail_key(source, name, "expected a non-negative integer");
      }
      out = static_cast<T>(v);
    }
  }

  void check_keys(const toml::table& t, const std::string& section, const std::set<std::string>& known) {
    for (auto&& [k, v] : t) {
      if (!known.count(std::string(k.str()))) {
        std::string list;
        for (auto& s : known) list += (list.empty() ? "" : ", ") + s;
        fail_key(source, section.empty() ? std::string(k.str()) : section + "." + std::string(k.str()),
             "unknown key (known: " + list + ")");
      }
    }
  }

  template <typename E>
  void get_enum(const toml::table& t, const std::string& section, const std::string& key, E& out,
                E (*parse)(const std::string&)) {
    std::string s;
    get(t, section, key, s);
    if (s.empty()) return;
    try {
      out = parse(s);
    } catch (const std::invalid_argument& e) {
      fail_key(source, section + "." + key, e.what());
    }
  }
};

FrontEndLayerOptions read_layer(Reader& r, const toml::table& t, const std::string& where) {
  r.check_keys(t, where, kLayerKeys);
  FrontEndLayerOptions l;
  std::string type;
  r.get(t, where, "type", type);
  if (type.empty()) fail_key(r.source, where + ".type", "missing (conv | rnn | lstm | blstm)");
  if (type == "conv") {
    l.convolutional(true);
  } else {
    try {
      l.kind(nn::parse_recurrent_kind(type));
    } catch (const std::invalid_argument&) {
      fail_key(r.source, where + ".type", "unknown type '" + type + "' (expected conv | rnn | lstm | blstm)");
    }
  }
  int64_t i;
  bool b;
#define CRNN_INT(name) i = l.name(); r.get(t, where, #name, i); l.name(i);
  CRNN_INT(features) CRNN_INT(hidden_size) CRNN_INT(window) CRNN_INT(shift) CRNN_INT(pool)
  CRNN_INT(pool_shift)
#undef CRNN_INT
  b = l.extended(); r.get(t, where, "extended", b); l.extended(b);
  b = l.peepholes(); r.get(t, where, "peepholes", b); l.peepholes(b);
  auto source = l.source(); r.get_enum(t, where, "source", source, nn::parse_feature_source); l.source(source);
  auto combine = l.combine(); r.get_enum(t, where, "combine", combine, nn::parse_feature_source); l.combine(combine);
  auto reduce = l.reduce(); r.get_enum(t, where, "reduce", reduce, nn::parse_window_reduce); l.reduce(reduce);
  auto act = l.activation(); r.get_enum(t, where, "activation", act, nn::parse_activation); l.activation(act);
  return l;
}

void apply_preset(ModelConfig& m, const std::string& preset) {
  auto o = nn::SequenceClassifierOptions::preset(preset, 2);
  m.front_end = o.front_end();
  m.recurrent_size = o.recurrent_size();
  m.bidirectional = o.bidirectional();
  m.peepholes = o.peepholes();
  m.dense_size = o.dense_size();
  m.average_last = o.average_last();
}

toml::array layers_to_toml(const std::vector<FrontEndLayerOptions>& front_end) {
  toml::array layers;
  for (const auto& l : front_end) {
    layers.push_back(toml::table{{"type", l.type_name()},
                                 {"features", l.features()},
                                 {"hidden_size", l.hidden_size()},
                                 {"extended", l.extended()},
                                 {"source", nn::to_string(l.source())},
                                 {"combine", nn::to_string(l.combine())},
                                 {"reduce", nn::to_string(l.reduce())},
                                 {"activation", nn::to_string(l.activation())},
                                 {"window", l.window()},
                                 {"shift", l.shift()},
                                 {"pool", l.pool()},
                                 {"pool_shift", l.pool_shift()},
                                 {"peepholes", l.peepholes()}});
  }
  return layers;
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
  for (const auto& o : overrides) {
    const std::string path = o.substr(0, o.find('='));
    bool match = key == path;
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
    throw ConfigError(blame_override(e.what(), overrides, source));
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

  Reader r{source};
  RunConfig c;
  r.check_keys(root, "", {"data", "model", "train"});
  auto section = [&](const char* name) -> const toml::table& {
    static const toml::table empty;
    const toml::node* n = root.get(name);
    if (!n) return empty;
    if (!n->is_table()) fail_key(source, name, "expected a [" + std::string(name) + "] section");
    return *n->as_table();
  };

  const auto& d = section("data");
  r.check_keys(d, "data", kDataKeys);
  r.get(d, "data", "manifest", c.data.manifest);
  r.get(d, "data", "features", c.data.features);
  r.get(d, "data", "task", c.data.task);
  r.get(d, "data", "split_column", c.data.split_column);
  r.get(d, "data", "folds", c.data.folds);
  r.get(d, "data", "fold", c.data.fold);
  r.get(d, "data", "valid_speakers_per_class", c.data.valid_speakers_per_class);
  r.get(d, "data", "split_seed", c.data.split_seed);
  r.get(d, "data", "normalization", c.data.normalization);

  const auto& m = section("model");
  r.check_keys(m, "model", kModelKeys);
  r.get(m, "model", "preset", c.model.preset);
  if (!c.model.preset.empty()) {
    try {
      apply_preset(c.model, c.model.preset);
    } catch (const c10::Error& e) {
      fail_key(source, "model.preset", e.what_without_backtrace());
    }
  }
  if (const toml::node* fe = m.get("front_end")) {
    const auto* arr = fe->as_array();
    if (!arr) fail_key(source, "model.front_end", "expected an array of tables ([[model.front_end]])");
    c.model.front_end.clear();
    for (size_t i = 0; i < arr->size(); ++i) {
      const auto* t = arr->get(i)->as_table();
      const std::string where = "model.front_end." + std::to_string(i);
      if (!t) fail_key(source, where, "expected a table");
      c.model.front_end.push_back(read_layer(r, *t, where));
    }
  }
  r.get(m, "model", "recurrent_size", c.model.recurrent_size);
  r.get(m, "model", "bidirectional", c.model.bidirectional);
  r.get(m, "model", "peepholes", c.model.peepholes);
  r.get(m, "model", "dense_size", c.model.dense_size);
  r.get(m, "model", "average_last", c.model.average_last);

  const auto& t = section("train");
  r.check_keys(t, "train", kTrainKeys);
  r.get(t, "train", "lr", c.train.lr);
  if (const toml::node* betas = t.get("betas")) {
    const auto* arr = betas->as_array();
    if (!arr || arr->size() != 2 || !arr->get(0)->value<double>() || !arr->get(1)->value<double>())
      fail_key(source, "train.betas", "expected two numbers, e.g. [0.9, 0.999]");
    c.train.beta1 = *arr->get(0)->value<double>();
    c.train.beta2 = *arr->get(1)->value<double>();
  }
  r.get(t, "train", "batch_size", c.train.batch_size);
  r.get(t, "train", "max_epochs", c.train.max_epochs);
  r.get(t, "train", "patience", c.train.patience);
  r.get(t, "train", "min_epochs", c.train.min_epochs);
  r.get(t, "train", "selection_metric", c.train.selection_metric);
  r.get(t, "train", "seed", c.train.seed);
  r.get(t, "train", "threads", c.train.threads);
  r.get(t, "train", "clip_norm", c.train.clip_norm);

  // Value checks.
  if (c.data.folds < 0 || c.data.folds == 1 || c.data.folds == 2)
    fail_key(source, "data.folds", "must be 0 (use split_column) or >= 3");
  if (c.data.folds > 0 && (c.data.fold < 0 || c.data.fold >= c.data.folds))
    fail_key(source, "data.fold", fmt::format("must be in 0..{}", c.data.folds - 1));
  if (c.data.normalization != "speaker" && c.data.normalization != "global")
    fail_key(source, "data.normalization", "must be 'speaker' (SPEC §3) or 'global', not '" + c.data.normalization + "'");
  if (c.data.valid_speakers_per_class < 1) fail_key(source, "data.valid_speakers_per_class", "must be >= 1");
  if (!(c.train.lr > 0 && std::isfinite(c.train.lr))) fail_key(source, "train.lr", "must be finite and > 0");
  if (!(c.train.beta1 >= 0 && c.train.beta1 < 1 && c.train.beta2 >= 0 && c.train.beta2 < 1))
    fail_key(source, "train.betas", "each beta must be in [0, 1)");
  if (c.train.beta1 < 0.5 && c.train.beta2 < 0.5)
    fail_key(source, "train.betas",
         "β1 and β2 below 0.5 look like the paper's decay rates (0.1, 0.001); Adam's betas are 1 − "
         "those: [0.9, 0.999]");
  if (c.train.batch_size < 1) fail_key(source, "train.batch_size", "must be >= 1");
  if (c.train.max_epochs < 1) fail_key(source, "train.max_epochs", "must be >= 1");
  if (c.train.patience < 1) fail_key(source, "train.patience", "must be >= 1");
  if (c.train.min_epochs < 0) fail_key(source, "train.min_epochs", "must be >= 0 (0 = early stopping from the first epoch)");
  if (c.train.threads < 0 || c.train.threads > kMaxThreads)
    fail_key(source, "train.threads", fmt::format("must be in 0..{} (0 = all cores)", kMaxThreads));
  if (!(c.train.clip_norm >= 0 && std::isfinite(c.train.clip_norm)))
    fail_key(source, "train.clip_norm", "must be finite and >= 0 (0 = off)");
  if (c.train.selection_metric != "ua_recall" && c.train.selection_metric != "wa" &&
      c.train.selection_metric != "loss")
    fail_key(source, "train.selection_metric", "unknown metric '" + c.train.selection_metric +
                                               "' (expected ua_recall | wa | loss)");
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
  return parse(data::read_text_file(path), overrides, path);
}

RunConfig RunConfig::for_preset(const std::string& preset) {
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
  if (emotion) c.data.folds = 6;  // RAVDESS has no official split: speaker-group CV
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

std::string RunConfig::to_toml() const {
  toml::table root;
  root.insert("data", toml::table{{"manifest", data.manifest},
                                  {"features", data.features},
                                  {"task", data.task},
                                  {"split_column", data.split_column},
                                  {"folds", data.folds},
                                  {"fold", data.fold},
                                  {"valid_speakers_per_class", data.valid_speakers_per_class},
                                  {"split_seed", static_cast<int64_t>(data.split_seed)},
                                  {"normalization", data.normalization}});
  toml::array layers = layers_to_toml(model.front_end);
  toml::table model_t{{"recurrent_size", model.recurrent_size},
                      {"bidirectional", model.bidirectional},
                      {"peepholes", model.peepholes},
                      {"dense_size", model.dense_size},
                      {"average_last", model.average_last}};
  // The preset is recorded for reference only; the explicit layers below win.
  if (!model.preset.empty()) model_t.insert("preset", model.preset);
  model_t.insert("front_end", layers);
  root.insert("model", model_t);
  root.insert("train", toml::table{{"lr", train.lr},
                                   {"betas", toml::array{train.beta1, train.beta2}},
                                   {"batch_size", train.batch_size},
                                   {"max_epochs", train.max_epochs},
                                   {"patience", train.patience},
                                   {"selection_metric", train.selection_metric},
                                   {"seed", static_cast<int64_t>(train.seed)},
                                   {"threads", train.threads},
                                   {"clip_norm", train.clip_norm}});
  // Written only when set: configs resolved before the key existed (and the
  // experiment cells named by their hash) stay byte-identical.
  if (train.min_epochs > 0) root["train"].as_table()->insert("min_epochs", train.min_epochs);
  std::stringstream ss;
  ss << "# crnn run configuration (fully resolved)\n" << root << "\n";
  return ss.str();
}

}  // namespace crnn::train
