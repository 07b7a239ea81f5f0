#pragma once
/// \file toml_input.h
/// Reading TOML input files (run configs, experiment files) with errors that
/// name the file and the key: one wording for every file the train module reads.
#include <fmt/core.h>

#include <string>
#include <toml++/toml.h>

#include "crnn/train/config.h"

namespace crnn::train {

/// Throws ConfigError "<source>: <key>: <msg>".
[[noreturn]] inline void fail_key(const std::string& source, const std::string& key, const std::string& msg) {
  throw ConfigError(fmt::format("{}: {}: {}", source, key, msg));
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

}  // namespace crnn::train
