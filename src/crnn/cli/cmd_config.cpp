// `crnn config dump PRESET`, `crnn config check CONFIG.toml [--set ...]` and `crnn config keys`.
#include <fmt/core.h>

#include <memory>

#include "crnn/cli/command.h"
#include "crnn/train/config.h"
#include "crnn/train/config_keys.h"

namespace {

struct ConfigCliOptions {
  std::string preset, file;
  std::vector<std::string> overrides;
};

crnn::cli::Registrar reg{
    "config",
    "Print a complete config for a preset (dump) or resolve and check a config file (check)",
    [](CLI::App& app) {
      auto o = std::make_shared<ConfigCliOptions>();
      app.require_subcommand(1);
      std::string presets;
      for (auto& n : crnn::nn::SequenceClassifierOptions::preset_names()) presets += " " + n;
      auto* dump = app.add_subcommand("dump", "Print the complete config of a model preset:" + presets);
      dump->add_option("preset", o->preset, "Preset name")->required();
      dump->add_option("--set", o->overrides, "Override a key: section.key=value");
      auto* check = app.add_subcommand("check", "Resolve a config (with overrides) and print it");
      check->add_option("config", o->file, "Config file")->required();
      check->add_option("--set", o->overrides, "Override a key: section.key=value");
      auto* keys = app.add_subcommand("keys", "Print every config key with its type, default and meaning (markdown)");
      return [o, dump, keys] {
        if (keys->parsed()) {
          fmt::print("{}", crnn::train::config_keys_markdown());
          return 0;
        }
        try {
          crnn::train::RunConfig cfg;
          if (dump->parsed()) {
            cfg = crnn::train::RunConfig::for_preset(o->preset, o->overrides);
          } else {
            cfg = crnn::train::RunConfig::from_file(o->file, o->overrides);
          }
          fmt::print("{}", cfg.to_toml());
          return 0;
        } catch (const crnn::train::ConfigError& e) {
          fmt::print(stderr, "crnn config: {}\n", e.what());
          return crnn::cli::kExitUsage;
        }
      };
    },
    35};

}  // namespace
