// `crnn prepare RECIPE DIR -o manifest.csv`: native corpus layout → CSV manifest.
#include <fmt/core.h>
#include <fmt/format.h>

#include <map>
#include <limits>
#include <memory>

#include "crnn/cli/command.h"
#include "crnn/data/recipes.h"

namespace {

struct PrepareOptions {
  std::string recipe;
  std::string dir;
  std::string output;
  bool relative = false;
  bool strict = false;
  size_t show_skipped = 20;
};

int run_prepare(const PrepareOptions& o) {
  using namespace crnn::data;
  try {
    PrepareReport report;
    Manifest m = prepare(o.recipe, o.dir, &report);
    // The reasons come first: when nothing was usable they are the explanation.
    fmt::print("{}: {} files found, {} skipped\n", o.recipe, report.found, report.skipped.size());
    for (size_t i = 0; i < report.skipped.size() && i < o.show_skipped; ++i)
      fmt::print("  skipped {}\n", report.skipped[i]);
    if (report.skipped.size() > o.show_skipped)
      fmt::print("  … and {} more skipped\n", report.skipped.size() - o.show_skipped);
    if (m.empty())
      throw DataError(report.skipped.empty()
                          ? fmt::format("{}: no utterances found in {}", o.recipe, o.dir)
                          : fmt::format("{}: no utterances found in {}: {} entries skipped (reasons above)",
                                        o.recipe, o.dir, report.skipped.size()));
    ManifestWriteOptions wo;
    wo.relative_paths = o.relative;
    m.write(o.output, wo);

    fmt::print("wrote {}: {} utterances, {} speakers\n", o.output, m.size(), m.speakers().size());
    for (const auto& task : m.tasks()) {
      std::map<std::string, size_t> counts;
      for (const auto& u : m.utterances()) ++counts[u.label(task)];
      std::vector<std::string> parts;
      for (const auto& spec : recipe_tasks(o.recipe))
        if (spec.name == task)
          for (const auto& c : spec.classes) parts.push_back(fmt::format("{} {}", c, counts[c]));
      fmt::print("  {}: {}\n", task, fmt::join(parts, ", "));
    }
    if (m.has_split()) {
      std::map<std::string, size_t> counts;
      for (const auto& u : m.utterances()) ++counts[u.split];
      std::vector<std::string> parts;
      for (const auto& [s, n] : counts) parts.push_back(fmt::format("{} {}", s, n));
      fmt::print("  split: {}\n", fmt::join(parts, ", "));
    }
    return o.strict && !report.skipped.empty() ? crnn::cli::kExitPartial : 0;
  } catch (const DataError& e) {
    fmt::print(stderr, "crnn prepare: error: {}\n", e.what());
    return crnn::cli::kExitUsage;
  }
}

const crnn::cli::Registrar reg{
    "prepare", "Write a CSV manifest for a corpus in its native layout (recipes: ravdess, speechocean762)",
    [](CLI::App& app) {
      auto o = std::make_shared<PrepareOptions>();
      app.add_option("recipe", o->recipe, "Corpus recipe")
          ->required()
          ->check(CLI::IsMember(crnn::data::recipe_names()));
      app.add_option("dir", o->dir, "Corpus root directory")->required();
      app.add_option("-o,--output", o->output, "Manifest CSV to write")->required();
      app.add_flag("--relative-paths", o->relative,
                   "Write audio paths relative to the manifest's directory (default: absolute)");
      app.add_flag("--strict", o->strict, "Exit with status 3 if any file was skipped");
      app.add_option("--show-skipped", o->show_skipped, "How many skipped files to list")
          ->check(crnn::cli::IntRange(0, std::numeric_limits<int64_t>::max()))  // "-1" would wrap
          ->capture_default_str();
      return [o] { return run_prepare(*o); };
    },
    15};

}  // namespace
