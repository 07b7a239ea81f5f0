// `crnn experiment FILE -o DIR`: results tables (rows × columns × seeds),
// resumable; writes DIR/results.md, results.json and a chart per table.
#include <fmt/core.h>

#include <filesystem>
#include <memory>
#include <regex>

#include "crnn/cli/command.h"
#include "crnn/train/experiment.h"

namespace {

struct ExperimentCliOptions {
  std::string file, output, shard;
  std::vector<std::string> overrides, tables;
  bool plan = false, results_only = false;
};

int run(const ExperimentCliOptions& c) {
  using namespace crnn;
  train::ExperimentOptions o;
  o.overrides = c.overrides;
  o.tables = c.tables;
  o.train = !c.results_only;
  o.command = "crnn experiment " + c.file + " -o " + c.output;
  for (auto& s : c.overrides) o.command += " --set " + s;
  if (!c.shard.empty()) {
    std::smatch m;
    if (!std::regex_match(c.shard, m, std::regex(R"((\d+)/(\d+))"))) {
      fmt::print(stderr, "crnn experiment: --shard {}: expected K/N, e.g. 0/2\n", c.shard);
      return cli::kExitUsage;
    }
    o.shard = std::stoll(m[1]);
    o.shards = std::stoll(m[2]);
  }
  auto e = train::Experiment::from_file(c.file);
  if (c.plan) {
    auto p = train::plan_experiment(e, o);
    int64_t done = 0;
    for (size_t i = 0; i < p.jobs.size(); ++i) {
      const auto& cell = p.cells[p.jobs[i].cell];
      const bool finished = std::filesystem::exists(std::filesystem::path(c.output) / cell.dir /
                                                    fmt::format("seed_{}", p.jobs[i].seed) / "summary.json");
      done += finished;
      fmt::print("{:4d} {:8s} seed {} {} ({})\n", i, finished ? "done" : "todo", p.jobs[i].seed, cell.label, cell.dir);
    }
    fmt::print("{} runs in {} distinct cells: {} finished, {} to do\n", p.jobs.size(), p.cells.size(), done,
               static_cast<int64_t>(p.jobs.size()) - done);
    return 0;
  }
  auto r = train::run_experiment(e, c.output, o);
  fmt::print("{}: trained {}, already finished {}, failed {}; results in {}/results.md\n", c.file, r.trained,
             r.skipped, r.failed.size(), c.output);
  for (auto& f : r.failed) fmt::print(stderr, "failed: {}\n", f);
  return r.failed.empty() ? 0 : cli::kExitPartial;
}

crnn::cli::Registrar reg{
    "experiment",
    "Train a results table (models × tasks × seeds; resumable) and write results.md with charts",
    [](CLI::App& app) {
      auto o = std::make_shared<ExperimentCliOptions>();
      app.add_option("file", o->file, "Experiment file (TOML; see docs/experiments.md)")->required();
      app.add_option("-o,--output", o->output, "Output directory (runs, results.md, charts)")->required();
      app.add_option("--set", o->overrides, "Override a config key in every cell: section.key=value");
      app.add_option("--table", o->tables, "Only this table id (repeatable)");
      app.add_option("--shard", o->shard, "Run only shard K of N (K/N): parallel processes on one directory");
      app.add_flag("--plan", o->plan, "List the runs and which are finished; train nothing");
      app.add_flag("--results-only", o->results_only, "Write results from the finished runs; train nothing");
      return [o] { return run(*o); };
    },
    55};

}  // namespace
