#include "crnn/ops/module_spec.h"

#include <nlohmann/json.hpp>

#include <map>
#include <set>

#include "crnn/nn/conv_recurrent.h"
#include "crnn/nn/peephole_lstm.h"
#include "crnn/nn/sequence_classifier.h"
#include "crnn/nn/window_conv.h"
#include "crnn/train/config.h"

namespace crnn::ops {

namespace {

using nlohmann::json;

/// The options object with typed, checked access; every key must be consumed.
class OptionReader {
 public:
  OptionReader(const std::string& kind, const std::string& text) : who_(python_name(kind)) {
    try {
      j_ = json::parse(text);
    } catch (const json::exception& e) {
      TORCH_CHECK(false, who_, ": options are not valid JSON: ", e.what());
    }
    TORCH_CHECK(j_.is_object(), who_, ": options must be a JSON object, got ", j_.dump());
  }

  bool has(const std::string& key) const { return j_.contains(key); }

  int64_t integer(const std::string& key, int64_t fallback, bool required = false) {
    used_.insert(key);
    if (!j_.contains(key)) {
      TORCH_CHECK(!required, who_, ": option '", key, "' is required");
      return fallback;
    }
    const auto& v = j_.at(key);
    TORCH_CHECK(v.is_number_integer() && !v.is_boolean(), who_, ": option '", key,
                "' must be an integer, got ", v.dump());
    return v.get<int64_t>();
  }

  bool boolean(const std::string& key, bool fallback) {
    used_.insert(key);
    if (!j_.contains(key)) return fallback;
    const auto& v = j_.at(key);
    TORCH_CHECK(v.is_boolean(), who_, ": option '", key, "' must be True or False, got ", v.dump());
    return v.get<bool>();
  }

  std::string text(const std::string& key, const std::string& fallback, bool required = false) {
    used_.insert(key);
    if (!j_.contains(key)) {
      TORCH_CHECK(!required, who_, ": option '", key, "' is required");
      return fallback;
    }
    const auto& v = j_.at(key);
    TORCH_CHECK(v.is_string(), who_, ": option '", key, "' must be a string, got ", v.dump());
    return v.get<std::string>();
  }

  /// A name parsed by one of nn/options.h's parsers (their message lists the names).
  template <class Enum, class Parse>
  Enum name(const std::string& key, Enum fallback, Parse parse) {
    if (!j_.contains(key)) {
      used_.insert(key);
      return fallback;
    }
    const std::string s = text(key, "");
    try {
      return parse(s);
    } catch (const std::exception& e) {
      TORCH_CHECK(false, who_, ": option '", key, "': ", e.what());
    }
  }

  /// Throws on a key nothing asked for.
  void finish() const {
    for (const auto& [key, value] : j_.items()) {
      if (used_.count(key)) continue;
      std::string known;
      for (const auto& k : used_) known += (known.empty() ? "" : ", ") + k;
      TORCH_CHECK(false, who_, ": unknown option '", key, "' (options: ", known, ")");
    }
  }

  const std::string& who() const { return who_; }

 private:
  std::string who_;
  json j_;
  std::set<std::string> used_;
};

/// Validation errors of the C++ options, re-worded with the Python class name.
template <class F>
auto checked(const std::string& who, F&& f) {
  try {
    return f();
  } catch (const c10::Error& e) {
    TORCH_CHECK(false, who, ": ", e.what_without_backtrace());
  } catch (const std::exception& e) {
    TORCH_CHECK(false, who, ": ", e.what());
  }
}

nn::Implementation implementation(OptionReader& r) {
  return r.name("impl", nn::default_implementation(), nn::parse_implementation);
}

BuiltModule conv_recurrent(OptionReader& r) {
  nn::ConvRecurrentOptions o(r.integer("input_size", 0, true), r.integer("features", 0, true));
  o.hidden_size(r.integer("hidden_size", 0))
      .kind(r.name("kind", o.kind(), nn::parse_recurrent_kind))
      .extended(r.boolean("extended", o.extended()))
      .source(r.name("source", o.source(), nn::parse_feature_source))
      .combine(r.name("combine", o.combine(), nn::parse_feature_source))
      .reduce(r.name("reduce", o.reduce(), nn::parse_window_reduce))
      .window(r.integer("window", o.window()))
      .shift(r.integer("shift", o.shift()))
      .pool(r.integer("pool", o.pool()))
      .pool_shift(r.integer("pool_shift", o.pool_shift()))
      .peepholes(r.boolean("peepholes", o.peepholes()))
      .impl(implementation(r));
  r.finish();
  auto m = checked(r.who(), [&] { return std::make_shared<nn::ConvRecurrentImpl>(o); });
  return {m, [m](const nn::PaddedSequence& x) { return m->forward(x); }, o.input_size()};
}

BuiltModule window_conv(OptionReader& r) {
  nn::WindowConvOptions o(r.integer("input_size", 0, true), r.integer("features", 0, true));
  o.activation(r.name("activation", o.activation(), nn::parse_activation))
      .window(r.integer("window", o.window()))
      .shift(r.integer("shift", o.shift()))
      .pool(r.integer("pool", o.pool()))
      .pool_shift(r.integer("pool_shift", o.pool_shift()));
  r.finish();
  auto m = checked(r.who(), [&] { return std::make_shared<nn::WindowConvImpl>(o); });
  return {m, [m](const nn::PaddedSequence& x) { return m->forward(x); }, o.input_size()};
}

BuiltModule peephole_lstm(OptionReader& r) {
  nn::PeepholeLSTMOptions o(r.integer("input_size", 0, true), r.integer("hidden_size", 0, true));
  o.bidirectional(r.boolean("bidirectional", o.bidirectional()))
      .peepholes(r.boolean("peepholes", o.peepholes()))
      .impl(implementation(r));
  r.finish();
  auto m = checked(r.who(), [&] { return std::make_shared<nn::PeepholeLSTMImpl>(o); });
  return {m, [m](const nn::PaddedSequence& x) { return m->forward(x); }, o.input_size()};
}

BuiltModule sequence_classifier(OptionReader& r) {
  const int64_t classes = r.integer("classes", 0, true);
  const int64_t input_size = r.integer("input_size", 26);
  const bool has_preset = r.has("preset"), has_config = r.has("config");
  TORCH_CHECK(has_preset != has_config, r.who(), ": give exactly one of 'preset' (",
              [] {
                std::string s;
                for (const auto& n : nn::SequenceClassifierOptions::preset_names()) s += (s.empty() ? "" : ", ") + n;
                return s;
              }(),
              ") and 'config' (a run config's TOML text)");
  const std::string preset = r.text("preset", ""), config = r.text("config", "");
  r.finish();
  auto options = checked(r.who(), [&] {
    return has_preset ? nn::SequenceClassifierOptions::preset(preset, classes, input_size)
                      : train::RunConfig::parse(config, {}, "config").model_options(classes, input_size);
  });
  auto m = checked(r.who(), [&] { return std::make_shared<nn::SequenceClassifierImpl>(options); });
  return {m, [m](const nn::PaddedSequence& x) { return nn::PaddedSequence{m->forward(x), x.lengths}; },
          input_size};
}

}  // namespace

const std::vector<std::string>& module_kinds() {
  static const std::vector<std::string> kinds{"conv_recurrent", "window_conv", "peephole_lstm",
                                              "sequence_classifier"};
  return kinds;
}

std::string python_name(const std::string& kind) {
  static const std::map<std::string, std::string> names{{"conv_recurrent", "crnn.nn.ConvRecurrent"},
                                                        {"window_conv", "crnn.nn.WindowConv"},
                                                        {"peephole_lstm", "crnn.nn.PeepholeLSTM"},
                                                        {"sequence_classifier", "crnn.nn.SequenceClassifier"}};
  auto it = names.find(kind);
  return it == names.end() ? "crnn module '" + kind + "'" : it->second;
}

BuiltModule build_module(const std::string& kind, const std::string& options_json) {
  OptionReader r(kind, options_json);
  if (kind == "conv_recurrent") return conv_recurrent(r);
  if (kind == "window_conv") return window_conv(r);
  if (kind == "peephole_lstm") return peephole_lstm(r);
  if (kind == "sequence_classifier") return sequence_classifier(r);
  std::string known;
  for (const auto& k : module_kinds()) known += (known.empty() ? "" : ", ") + k;
  TORCH_CHECK(false, "unknown crnn module kind '", kind, "' (kinds: ", known, ")");
}

}  // namespace crnn::ops
