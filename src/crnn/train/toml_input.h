#pragma once
/// \file toml_input.h
/// Reading TOML input files (run configs, experiment files) with errors that
/// name the file and the key — one reading path and one wording for every
/// TOML file crnn reads:
///
///   cfg.toml:3:7: malformed TOML: …
///   cfg.toml: train.lrr: unknown key (known: batch_size, betas, …)
///   cfg.toml: train.lr: expected a number
///
/// \code
///   toml::table root = crnn::train::parse_toml(text, "cfg.toml");
///   crnn::train::TomlReader r{"cfg.toml"};
///   r.check_keys(root, "", {"data", "model", "train"});
///   double lr = 0.002;
///   r.get(*root["train"].as_table(), "train", "lr", lr);   // absent: unchanged
/// \endcode
#include <fmt/core.h>

#include <set>
#include <string>
#include <toml++/toml.h>
#include <type_traits>
#include <vector>

#include "crnn/train/config.h"

namespace crnn::train {

/// Throws ConfigError "<source>: <key>: <msg>".
/// `unknown_key`: the key is not declared (ConfigError::unknown_key()).
[[noreturn]] inline void fail_key(const std::string& source, const std::string& key, const std::string& msg,
                                  bool unknown_key = false) {
  throw ConfigError(fmt::format("{}: {}: {}", source, key, msg), unknown_key);
}

/// Parses TOML text; malformed input throws ConfigError "<source>:<line>:<column>: malformed TOML: …".
inline toml::table parse_toml(const std::string& text, const std::string& source) {
  try {
    return toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    const auto& where = e.source().begin;
    throw ConfigError(fmt::format("{}:{}:{}: malformed TOML: {}", source, where.line, where.column,
                                  e.description()));
  }
}

/// Typed, strict access to the keys of one TOML file. `where` is the dotted
/// path of the table ("" for the root, "train", "table.0.row.2"); errors name
/// `source` and where.key.
struct TomlReader {
  std::string source;

  static std::string join(const std::string& where, const std::string& key) {
    return where.empty() ? key : where + "." + key;
  }

  [[noreturn]] void fail(const std::string& where, const std::string& key, const std::string& msg,
                         bool unknown_key = false) const {
    fail_key(source, join(where, key), msg, unknown_key);
  }

  /// Every key of `t` must be in `known`.
  void check_keys(const toml::table& t, const std::string& where, const std::set<std::string>& known) const {
    for (auto&& [k, v] : t) {
      (void)v;
      if (known.count(std::string(k.str()))) continue;
      std::string list;
      for (const auto& s : known) list += (list.empty() ? "" : ", ") + s;
      fail(where, std::string(k.str()), "unknown key (known: " + list + ")", /*unknown_key=*/true);
    }
  }

  /// Sets `out` from t[key] when present: bool (strictly true/false), string,
  /// floating point (any number), or integer (unsigned: non-negative).
  template <typename T>
  void get(const toml::table& t, const std::string& where, const std::string& key, T& out) const {
    const toml::node* n = t.get(key);
    if (!n) return;
    if constexpr (std::is_same_v<T, bool>) {
      if (auto v = n->value_exact<bool>()) out = *v;  // strict: 1 is not true
      else fail(where, key, "expected true or false");
    } else if constexpr (std::is_same_v<T, std::string>) {
      if (auto v = n->value_exact<std::string>()) out = *v;
      else fail(where, key, "expected a string");
    } else if constexpr (std::is_floating_point_v<T>) {
      if (auto v = n->value<double>()) out = *v;
      else fail(where, key, "expected a number");
    } else {
      if (!n->is_integer()) fail(where, key, "expected an integer");
      const int64_t v = *n->value<int64_t>();
      if constexpr (std::is_unsigned_v<T>) {
        if (v < 0) fail(where, key, "expected a non-negative integer");
      }
      out = static_cast<T>(v);
    }
  }

  /// A string key; "" when absent, unless `required`.
  std::string string(const toml::table& t, const std::string& where, const std::string& key,
                     bool required = false) const {
    if (required && !t.contains(key)) fail(where, key, "required");
    std::string s;
    get(t, where, key, s);
    return s;
  }

  /// An array of strings; empty when absent.
  std::vector<std::string> strings(const toml::table& t, const std::string& where, const std::string& key) const {
    std::vector<std::string> out;
    const toml::node* n = t.get(key);
    if (!n) return out;
    const toml::array* a = n->as_array();
    if (!a) fail(where, key, "expected an array of strings");
    for (auto&& e : *a) {
      if (!e.is_string()) fail(where, key, "expected an array of strings");
      out.emplace_back(*e.value<std::string>());
    }
    return out;
  }

  /// An array of tables ([[where.key]]); nullptr when absent.
  const toml::array* tables(const toml::table& t, const std::string& where, const std::string& key) const {
    const toml::node* n = t.get(key);
    if (!n) return nullptr;
    const toml::array* a = n->as_array();
    if (!a || !a->is_array_of_tables())
      fail(where, key, "expected an array of tables ([[" + join(where, key) + "]])");
    return a;
  }

  /// A sub-table ([where.key]); an empty table when absent.
  const toml::table& table(const toml::table& t, const std::string& where, const std::string& key) const {
    static const toml::table empty;
    const toml::node* n = t.get(key);
    if (!n) return empty;
    if (!n->is_table()) fail(where, key, "expected a [" + join(where, key) + "] section");
    return *n->as_table();
  }
};

}  // namespace crnn::train
