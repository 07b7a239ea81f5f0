#pragma once
/// \file command.h
/// Registry of `crnn` subcommands.
///
/// Each subcommand lives in its own `src/crnn/cli/cmd_<name>.cpp` and registers
/// itself with a static `Registrar`, so adding one never touches main.cpp:
///
/// \code
///   static crnn::cli::Registrar reg{"demo", "Run the embedded demo", [](CLI::App& app) {
///     auto opts = std::make_shared<DemoOptions>();
///     app.add_option("--epochs", opts->epochs, "Epochs");
///     return [opts] { return run_demo(*opts); };   // returns the exit status
///   }};
/// \endcode

#include <CLI/CLI.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace crnn::cli {

/// What a subcommand runs once its options are parsed; returns the exit status.
using Action = std::function<int()>;
/// Adds options to the subcommand's CLI11 app and returns its action.
using Setup = std::function<Action(CLI::App&)>;

struct CommandSpec {
  std::string name;
  std::string description;
  Setup setup;
  int order = 100;  ///< position in --help (lower first)
};

std::vector<CommandSpec>& registry();

struct Registrar {
  Registrar(std::string name, std::string description, Setup setup, int order = 100) {
    registry().push_back({std::move(name), std::move(description), std::move(setup), order});
  }
};

/// CLI11 check for an integer option in [lo, hi], whose error reads in the
/// option's own terms ("--seeds: must be an integer in 1..1000, got 0"), unlike
/// CLI::PositiveNumber's range of doubles up to 1.8e308.
/// \code
///   app.add_option("--seeds", seeds)->check(crnn::cli::IntRange(1, 1000));
/// \endcode
CLI::Validator IntRange(int64_t lo, int64_t hi);

/// CLI11 check for a duration in seconds: a finite number > 0
/// ("--segment: must be a number of seconds > 0, got inf").
CLI::Validator PositiveSeconds();

/// `--precision fp32|bf16`, declared once for every subcommand that runs a
/// model (bench, eval, predict).
CLI::Option* add_precision_option(CLI::App& app, std::string& precision);

/// Exit status for bad command-line input or bad input files.
constexpr int kExitUsage = 2;
/// Exit status for a job that failed part-way (some inputs failed).
constexpr int kExitPartial = 3;
/// Exit status after Ctrl-C stopped training (resumable), as a shell reports SIGINT.
constexpr int kExitInterrupted = 130;

}  // namespace crnn::cli
