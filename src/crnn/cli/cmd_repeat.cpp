// `crnn repeat CONFIG --seeds N -o DIR`: N seeded runs, mean ± std.
#include <fmt/core.h>

#include <cmath>

#include <limits>
#include <memory>

#include "crnn/cli/command.h"
#include "crnn/util/interrupt.h"
#include "crnn/train/repeat.h"
#include "crnn/util/text.h"
#include "crnn/util/threads.h"

namespace {

struct RepeatCliOptions {
  std::string config, output;
  std::vector<std::string> overrides;
  int64_t seeds = 5;
  uint64_t first_seed = 1;
};

crnn::cli::Registrar reg{
    "repeat",
    "Train N seeded runs of a config and report mean ± std of test UA recall and WA",
    [](CLI::App& app) {
      auto o = std::make_shared<RepeatCliOptions>();
      app.add_option("config", o->config, "Run configuration (TOML)")->required();
      app.add_option("--seeds", o->seeds, "Number of seeded runs")->check(crnn::cli::IntRange(1, 1000));
      app.add_option("--first-seed", o->first_seed, "Seed of the first run (then +1 each)")
          ->check(crnn::cli::IntRange(0, std::numeric_limits<int64_t>::max()));  // "-1" would wrap
      app.add_option("--set", o->overrides, "Override a config key: section.key=value");
      app.add_option("-o,--output", o->output, "Directory for the runs")->required();
      return [o] {
        auto cfg = crnn::train::RunConfig::from_file(o->config, o->overrides);
        crnn::set_num_threads_from_config(cfg.train.threads);
        crnn::InterruptScope interrupt(/*second_interrupt_ends=*/true);  // Ctrl-C: stop after the batch
        crnn::train::TrainOptions to;
        to.stop = interrupt.flag();
        auto s = crnn::train::repeat_runs(cfg, o->output, o->seeds, o->first_seed, std::cerr, to);
        auto ms = [](const crnn::train::MeanStd& m) {
          return std::isfinite(m.std) ? crnn::percent(m.mean, 2) + " ± " + crnn::percent(m.std, 2, "%")
                                      : crnn::percent(m.mean, 2, "%");
        };
        fmt::print("{}: {} runs, test UA recall {}, test WA {} (see {}/repeat.md)\n", o->output, s.runs.size(),
                   ms(s.test_ua_recall), ms(s.test_wa), o->output);
        return 0;
      };
    },
    50};

}  // namespace
