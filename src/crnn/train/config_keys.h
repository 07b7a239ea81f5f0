#pragma once
/// \file config_keys.h
/// The run config's schema, declared once: every key's section, name, type,
/// default (the member initializer in config.h), check and one-line doc. The
/// table drives parsing, validation, `crnn config dump` / `check`, the cell
/// identity of experiments and the key table of docs/training.md
/// (`crnn config keys`; a test keeps the docs equal to it).
///
/// Adding a key: a field with its default in config.h, one entry in
/// config_keys.cpp marked `added_later` with the value runs had before it
/// existed (so that finished experiment cells keep their directories), and
/// the docs table
/// regenerated with `crnn config keys`.
///
/// \code
///   for (const auto& k : crnn::train::config_keys()) std::cout << k.section << "." << k.name << "\n";
///   std::cout << crnn::train::config_keys_markdown();
/// \endcode

#include <functional>
#include <string>
#include <toml++/toml.h>
#include <vector>

#include "crnn/nn/sequence_classifier.h"
#include "crnn/train/config.h"
#include "crnn/train/toml_input.h"

namespace crnn::train {

/// One key of [data], [model] or [train].
struct ConfigKey {
  std::string section, name;
  std::string type;          ///< for the docs: integer, number, string, …
  std::string default_text;  ///< for the docs, from a default-constructed RunConfig
  std::string doc;           ///< one line
  /// For a key added after the first experiment cells were named: whether the
  /// config has the value every run had before the key existed (its legacy
  /// value). Such a key is left out of a cell's identity while at that value,
  /// so adding it never re-keys a finished run. Empty for the original keys,
  /// which are always part of the identity.
  std::function<bool(const RunConfig&)> at_legacy;
  /// Written by `to_toml()` even at its default (false only for model.preset,
  /// which is recorded when a preset was used).
  bool dump_default = true;
  /// Reads the key from its section's table into the config (absent: unchanged).
  std::function<void(const TomlReader&, const toml::table& section, RunConfig&)> read;
  std::function<void(const RunConfig&, toml::table& section)> write;
  std::function<bool(const RunConfig&)> at_default;
  /// "" when the value is valid, else what is wrong ("must be >= 1").
  std::function<std::string(const RunConfig&)> check;
};

/// The keys of [data], [model] and [train], in reading order (model.preset
/// before the model keys it sets).
const std::vector<ConfigKey>& config_keys();

/// One key of a front-end layer table ([[model.front_end]]).
struct LayerKey {
  std::string name, type, default_text, doc;
  std::function<void(const TomlReader&, const toml::table& layer, const std::string& where,
                     nn::FrontEndLayerOptions&)>
      read;
  std::function<void(const nn::FrontEndLayerOptions&, toml::table& layer)> write;
};
const std::vector<LayerKey>& layer_keys();

/// The key table of docs/training.md (markdown, one row per key).
std::string config_keys_markdown();

/// Sets the model keys a preset determines (nn::SequenceClassifierOptions::preset).
void apply_preset(ModelConfig& m, const std::string& preset);
/// A [[model.front_end]] table as layer options (unknown keys are errors naming `where`).
nn::FrontEndLayerOptions read_layer(const TomlReader& r, const toml::table& t, const std::string& where);
/// Layers as TOML tables, every layer key written.
toml::array layers_to_toml(const std::vector<nn::FrontEndLayerOptions>& front_end);

}  // namespace crnn::train
