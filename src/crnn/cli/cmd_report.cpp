// `crnn report`: learning curves and confusion matrices of a run (or of the
// runs of `crnn repeat`) as SVG files plus an index.html that opens offline.
//
//   crnn report runs/clstm                 # writes runs/clstm/report/index.html
//   crnn report runs/seeds -o /tmp/seeds   # one section per seed + overview
//
// Exit status: 0 on success, kExitUsage (2) for a missing directory or a
// malformed input file (the message names the file and line).
#include <fmt/core.h>

#include <filesystem>
#include <memory>

#include "crnn/cli/command.h"
#include "crnn/train/report.h"

namespace {

struct ReportOptions {
  std::string dir;
  std::string out;
};

int run_report(const ReportOptions& o) {
  const std::string out = o.out.empty() ? (std::filesystem::path(o.dir) / "report").string() : o.out;
  try {
    std::vector<std::string> skipped;
    const auto written = crnn::train::write_report(o.dir, out, &skipped);
    for (const auto& s : skipped) fmt::print(stderr, "crnn report: skipped {}\n", s);
    fmt::print("wrote {} ({} SVG files{})\n", written.back(), written.size() - 1,
               skipped.empty() ? "" : fmt::format("; {} run(s) skipped", skipped.size()));
    return 0;
  } catch (const crnn::train::ReportError& e) {
    fmt::print(stderr, "crnn report: error: {}\n", e.what());
    return crnn::cli::kExitUsage;
  } catch (const crnn::train::RunFileError& e) {
    fmt::print(stderr, "crnn report: error: {}\n", e.what());
    return crnn::cli::kExitUsage;
  } catch (const std::filesystem::filesystem_error& e) {
    // e.g. an output folder that cannot be created
    fmt::print(stderr, "crnn report: error: {}\n", e.what());
    return crnn::cli::kExitUsage;
  }
}

const crnn::cli::Registrar reg{
    "report",
    "Learning curves and confusion matrices of a run (or of `crnn repeat` runs) as SVG + "
    "index.html",
    [](CLI::App& app) {
      auto o = std::make_shared<ReportOptions>();
      // No CLI::ExistingDirectory check: a missing directory must exit with 2
      // and a message of ours, like every other bad input.
      app.add_option("DIR", o->dir, "Run directory (metrics.csv) or `crnn repeat` directory")
          ->required();
      app.add_option("-o,--out", o->out, "Output folder (default: DIR/report)");
      return [o] { return run_report(*o); };
    },
    60};

}  // namespace
