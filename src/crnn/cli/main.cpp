// The `crnn` command: one executable, one subcommand per job.
#include <fmt/core.h>
#include <torch/torch.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>

#include "crnn/cli/command.h"
#include "crnn/data/error.h"
#include "crnn/data/feature_store.h"
#include "crnn/train/config.h"
#include "crnn/train/trainer.h"
#include "crnn/util/allocator.h"
#include "crnn/util/error_text.h"
#include "crnn/util/text.h"
#include "crnn/util/threads.h"

namespace crnn::cli {
std::vector<CommandSpec>& registry() {
  static std::vector<CommandSpec> commands;
  return commands;
}

CLI::Option* add_precision_option(CLI::App& app, std::string& precision) {
  return app
      .add_option("--precision", precision,
                  "Matrix products in fp32 (default), or bf16 with fp32 accumulation on AVX512-BF16 CPUs "
                  "(docs/performance.md)")
      ->check(CLI::IsMember({"fp32", "bf16"}));
}

CLI::Validator IntRange(int64_t lo, int64_t hi) {
  return CLI::Validator(
      [lo, hi](std::string& text) -> std::string {
        int64_t v = 0;
        const char* end = text.data() + text.size();
        const auto [ptr, ec] = std::from_chars(text.data(), end, v);
        if (ec == std::errc() && ptr == end && v >= lo && v <= hi) return {};
        return fmt::format("must be an integer in {}..{}, got {}", lo, hi, text);
      },
      fmt::format("INT in {}..{}", lo, hi));
}

CLI::Validator PositiveSeconds() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        const auto v = crnn::parse_number(text);
        if (v && std::isfinite(*v) && *v > 0) return {};
        return fmt::format("must be a number of seconds > 0, got {}", text);
      },
      "SECONDS");
}
}  // namespace crnn::cli

int main(int argc, char** argv) {
  crnn::ensure_quiet_idle_threads(argv);
  crnn::keep_freed_tensor_memory();
  using namespace crnn::cli;
  CLI::App app{
      "crnn — Convolutional Recurrent sequence classifiers (CRNN, CLSTM, Extended CLSTM, "
      "CBLSTM) for speech paralinguistics.\nKeren & Schuller, \"Convolutional RNN: an "
      "Enhanced Model for Extracting Features from Sequential Data\", IJCNN 2016.",
      "crnn"};
  app.set_version_flag("--version", std::string("crnn ") + CRNN_VERSION + " (LibTorch " +
                                        TORCH_VERSION + ")");
  app.require_subcommand(1);
  app.fallthrough();
  int threads = 0;
  app.add_option("--threads", threads,
                 "CPU threads for LibTorch and OpenBLAS (default 0: all cores)")
      ->check(CLI::Range(0, crnn::kMaxThreads));

  auto& specs = registry();
  std::stable_sort(specs.begin(), specs.end(),
                   [](const CommandSpec& a, const CommandSpec& b) { return a.order < b.order; });
  std::map<CLI::App*, Action> actions;
  for (auto& spec : specs) {
    CLI::App* sub = app.add_subcommand(spec.name, spec.description);
    sub->fallthrough();
    // Every option's help shows its default ("--seeds INT:INT in 1..1000=5"),
    // taken from the value it is bound to, so help and behaviour cannot differ.
    sub->option_defaults()->always_capture_default();
    actions[sub] = spec.setup(*sub);
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version exit 0; every other command-line error is a usage
    // error (exit 2) like a bad config, not one of CLI11's own codes (105, 106, ...).
    const int rc = app.exit(e);
    return rc == 0 ? 0 : kExitUsage;
  }

  // An empty value ("" from an unset shell variable, say) is never a path,
  // a number or a name here; refuse it before it reaches the filesystem.
  for (const CLI::App* scope : {&app, app.get_subcommands().empty() ? &app : app.get_subcommands().front()}) {
    for (const CLI::Option* opt : scope->get_options()) {
      if (opt->get_expected_min() < 1) continue;  // flags
      for (const auto& value : opt->results()) {
        if (value.empty()) {
          fmt::print(stderr, "{}: an empty value is not allowed\nRun with --help for more information.\n",
                     opt->get_name());
          return kExitUsage;
        }
      }
    }
  }

  if (threads > crnn::hardware_threads())
    fmt::print(stderr,
               "crnn: warning: --threads {} is more than the {} core(s) available; oversubscribed LibTorch and "
               "OpenBLAS threads run slower, not faster\n",
               threads, crnn::hardware_threads());
  crnn::set_num_threads_explicitly(threads);
  for (auto& [sub, action] : actions) {
    if (sub->parsed()) {
      // Bad input (config, data, feature files) is a usage error (exit 2) in
      // every subcommand; anything else is an internal error (exit 1).
      const std::string name = sub->get_name();
      try {
        return action();
      } catch (const crnn::train::TrainInterrupted& e) {
        // Ctrl-C (util/interrupt.h): the run stopped after a batch and resumes from its last epoch.
        fmt::print(stderr, "crnn {}: interrupted: {}\n", name, e.what());
        return kExitInterrupted;
      } catch (const crnn::train::ConfigError& e) {
        fmt::print(stderr, "crnn {}: config error: {}\n", name, e.what());
        return crnn::cli::kExitUsage;
      } catch (const crnn::data::DataError& e) {
        fmt::print(stderr, "crnn {}: data error: {}\n", name, e.what());
        return crnn::cli::kExitUsage;
      } catch (const crnn::data::FeatureStoreError& e) {
        fmt::print(stderr, "crnn {}: features error: {}\n", name, e.what());
        return crnn::cli::kExitUsage;
      } catch (const std::filesystem::filesystem_error& e) {
        // An output path that cannot be made (read-only, no permission): bad input, named.
        fmt::print(stderr, "crnn {}: data error: {}: {}{}\n", name, e.path1().string(), e.code().message(),
                   e.path2().empty() ? "" : " (" + e.path2().string() + ")");
        return crnn::cli::kExitUsage;
      } catch (const std::exception& e) {
        // A LibTorch error that escaped (an allocation that failed, ...) prints
        // its message, not a stack of C++ frames.
        fmt::print(stderr, "crnn {}: error: {}\n", name, crnn::error_text(e));
        return 1;
      }
    }
  }
  return kExitUsage;
}
