#include "crnn/data/extract_features.h"

#include <cmath>
#include <filesystem>

#include <ATen/Parallel.h>
#include <fmt/core.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <map>
#include <set>
#include <thread>

#include "crnn/audio/fbank.h"
#include "crnn/audio/read_audio.h"
#include "crnn/data/error.h"
#include "crnn/data/feature_store.h"
#include "crnn/data/manifest.h"
#include "crnn/data/normalization.h"
#include "crnn/util/error_text.h"
#include "crnn/util/progress.h"
#include "crnn/util/threads.h"

namespace crnn::data {
namespace fs = std::filesystem;
namespace {
using Clock = std::chrono::steady_clock;

// One row to extract: the manifest's id and (resolved) audio path.
struct FeatureJob {
  std::string id;
  std::string path;
};

std::vector<FeatureJob> jobs_of(const data::Manifest& manifest) {
  std::vector<FeatureJob> jobs;
  for (const auto& u : manifest.utterances()) jobs.push_back({u.id, u.path});
  return jobs;
}

// ---------------------------------------------------------------------------
struct Result {
  enum class Status { Ok, TooShort, Failed } status = Status::Ok;
  size_t job = 0;
  torch::Tensor features;
  std::string reason;
  double audio_seconds = 0.0;
  int file_rate = 0;  ///< the file's own sample rate (header)
  FileStamp stamp;    ///< what the file held when it was read
  bool no_signal = false;  ///< holds_no_signal(features), computed by the worker
};

// Bounded so that fast workers cannot pile up matrices faster than HDF5 writes.
class ResultQueue {
 public:
  explicit ResultQueue(size_t capacity) : capacity_(capacity) {}
  void push(Result r) {
    std::unique_lock<std::mutex> lock(mu_);
    not_full_.wait(lock, [&] { return items_.size() < capacity_; });
    items_.push_back(std::move(r));
    not_empty_.notify_one();
  }
  Result pop() {
    std::unique_lock<std::mutex> lock(mu_);
    not_empty_.wait(lock, [&] { return !items_.empty(); });
    Result r = std::move(items_.front());
    items_.pop_front();
    not_full_.notify_one();
    return r;
  }

 private:
  size_t capacity_;
  std::mutex mu_;
  std::condition_variable not_full_, not_empty_;
  std::deque<Result> items_;
};

// AudioError messages start with the path, which the failure report prints
// separately.
std::string strip_path(const std::string& message, const std::string& path) {
  const std::string prefix = path + ": ";
  return message.rfind(prefix, 0) == 0 ? message.substr(prefix.size()) : message;
}

Result extract(const FeatureJob& job, const audio::FeatureExtractor& extractor) {
  Result r;
  try {
    // Before decoding: a file rewritten meanwhile then has a newer stamp than
    // its features, and the next run recomputes them.
    // A file that cannot be read gets its error from the decoder below.
    try {
      r.stamp = stamp_of_file(job.path);
    } catch (const std::exception&) {
    }
    r.features = extractor.of_file(job.path, &r.audio_seconds);
    r.file_rate = audio::audio_info(job.path).sample_rate;  // the header only: cheap next to decoding
    if (r.features.size(0) == 0) {
      r.status = Result::Status::TooShort;
      r.reason = extractor.too_short_reason(r.audio_seconds);
    }
    r.no_signal = holds_no_signal(r.features);
  } catch (const std::exception& e) {
    r.status = Result::Status::Failed;
    r.reason = strip_path(error_text(e), job.path);
  }
  return r;
}

}  // namespace

std::string command_options(const std::string& extractor_line) {
  audio::FeatureExtractor fx = audio::FeatureExtractor::fbank({});
  try {
    fx = audio::FeatureExtractor::parse(extractor_line);
  } catch (const std::exception&) {
    return "";
  }
  // The defaults as `crnn features` declares them: ExtractOptions' own.
  const ExtractOptions defaults;
  std::string out;
  if (fx.kind_name() != defaults.kind) out += " --kind " + fx.kind_name();
  if (fx.sample_rate() != defaults.fbank.sample_rate()) out += fmt::format(" --sample-rate {}", fx.sample_rate());
  if (fx.kind() == audio::FeatureExtractor::Kind::Fbank) {
    if (fx.fbank_options().num_bins() != defaults.fbank.num_bins())
      out += fmt::format(" --num-bins {}", fx.fbank_options().num_bins());
    if (fx.fbank_options().window() != defaults.fbank.window())
      out += " --window " + audio::to_string(fx.fbank_options().window());
  }
  return out;
}

ExtractReport extract_features(const std::string& manifest, const std::string& output,
                               const ExtractOptions& options) {
  if (options.kind != "fbank" && options.kind != "egemaps")
    throw DataError(fmt::format("unknown feature kind '{}' (expected fbank or egemaps)", options.kind));
  // Options no extractor can use (too many mel bins for the FFT, a rate
  // eGeMAPS cannot analyse) are refused before any file.
  const audio::FeatureExtractor extractor = [&options] {
    try {
      return options.kind == "egemaps" ? audio::FeatureExtractor::egemaps(options.egemaps)
                                       : audio::FeatureExtractor::fbank(options.fbank);
    } catch (const c10::Error& e) {
      throw DataError(fmt::format("{} options: {}", options.kind, e.what_without_backtrace()));
    }
  }();
  ExtractReport report;
  const auto rows = data::Manifest::read(manifest);  // DataError on a bad manifest
  const std::vector<FeatureJob> jobs = jobs_of(rows);
  if (!options.covered_manifest.empty()) {
    const auto same = [&](const std::string& other) {
      std::error_code ec;
      return fs::absolute(options.covered_manifest).lexically_normal() == fs::absolute(other).lexically_normal() ||
             fs::equivalent(options.covered_manifest, other, ec);
    };
    const std::pair<std::string, const char*> others[] = {{manifest, "the manifest itself"},
                                                          {output, "the feature file"}};
    for (const auto& [other, what] : others)
      if (same(other))
        throw DataError(fmt::format("{}: the manifest of the covered rows would replace {}; name another file",
                                    options.covered_manifest, what));
  }

  auto store = data::FeatureStore::open(output, data::FeatureStore::Mode::Append);
  const data::FeatureAttributes attrs{extractor.sample_rate(), extractor.frame_shift_ms(), extractor.feature_names(),
                                      extractor.describe() + " resampler=soxr-hq"};
  if (store.has_attributes()) {
    // Resuming into a file made with other options would mix incompatible rows.
    if (store.extractor() != attrs.extractor) {
      throw DataError(fmt::format(
          "{} holds features made with other options:\n  file: {}\n  now:  {}\nUse another output "
          "file or delete it.",
          output, store.extractor(), attrs.extractor));
    }
  } else {
    store.set_attributes(attrs);
  }
  for (const auto& id : store.discarded_incomplete())
    fmt::print(stderr, "features: '{}' was incomplete in {} (interrupted run): recomputing\n", id,
               output);
  for (const auto& id : store.discarded_damaged())
    fmt::print(stderr, "features: '{}' is damaged in {} (a failed checksum or an unreadable header: a failed "
               "write, or damage since): recomputing\n", id,
               output);

  std::vector<std::pair<std::string, std::string>> id_paths;
  for (const auto& job : jobs) id_paths.emplace_back(job.id, job.path);
  const std::vector<std::string> moved = data::moved_sources(store, id_paths);
  // Resuming would keep the old file's features under the id: silently wrong data.
  if (!moved.empty())
    throw DataError(fmt::format("{} holds features of other audio files for {} id(s) of {}, e.g.\n  {}\nUse "
                                "another output file or delete it.",
                                output, moved.size(), manifest, moved.front()));
  // Audio rewritten in place since its features were computed (same name,
  // other bytes): stale rows, computed again like incomplete ones.
  const std::vector<std::string> changed = data::changed_sources(store, id_paths);
  std::map<std::string, std::string> path_of;
  if (!changed.empty())
    for (const auto& [id, path] : id_paths) path_of.emplace(id, path);
  for (size_t i = 0; i < changed.size(); ++i) {
    if (i < 5) {
      // The file read now; the stored path differs when the corpus was copied or moved since.
      const std::string now = path_of[changed[i]], then = store.source(changed[i]);
      fmt::print(stderr, "features: '{}' ({}) changed since its features were computed{}: recomputing\n", changed[i],
                 now, then == now ? "" : fmt::format(" (from {})", then));
    }
    store.remove(changed[i]);
  }
  if (changed.size() > 5) fmt::print(stderr, "features: ... and {} more changed files: recomputing\n", changed.size() - 5);
  const std::set<std::string> stale(changed.begin(), changed.end());
  std::vector<size_t> todo;
  for (size_t i = 0; i < jobs.size(); ++i)
    if (!store.contains(jobs[i].id)) todo.push_back(i);
  const size_t present = jobs.size() - todo.size();

  const int threads = options.threads > 0 ? options.threads : at::get_num_threads();
  const int workers = static_cast<int>(
      std::max<size_t>(1, std::min<size_t>(static_cast<size_t>(threads), todo.size())));
  if (!todo.empty())
    fmt::print(stderr, "features: {} to extract, {} already in {}, {} worker thread(s)\n",
               todo.size(), present, output, workers);

  const auto start = Clock::now();
  ResultQueue queue(static_cast<size_t>(2 * workers + 2));
  std::atomic<size_t> next{0};
  std::vector<std::thread> pool;
  for (int w = 0; w < workers && !todo.empty(); ++w) {
    pool.emplace_back([&] {
      // Parallelism is over files: keep each worker's LibTorch ops and
      // OpenBLAS single-threaded. (OpenBLAS's count is process-wide; with
      // more than one BLAS thread its idle threads spin in sched_yield and
      // showed up as ~60% system time.)
      crnn::set_num_threads(1);
      for (size_t k; (k = next.fetch_add(1)) < todo.size();) {
        Result r = extract(jobs[todo[k]], extractor);
        r.job = todo[k];
        queue.push(std::move(r));
      }
    });
  }

  const int caller_threads = at::get_num_threads();
  crnn::Progress progress("features", static_cast<int64_t>(todo.size()), "files");
  size_t written = 0, too_short = 0;
  double audio_seconds = 0.0;
  std::vector<Result> failures, shorts;
  std::exception_ptr write_error;
  for (size_t done = 0; done < todo.size(); ++done) {
    Result r = queue.pop();
    if (write_error) continue;  // drain so workers can finish
    const FeatureJob& job = jobs[r.job];
    switch (r.status) {
      case Result::Status::Ok:
        try {
          store.write(job.id, r.features, job.path, r.stamp);
          ++written;
          report.changed += stale.count(job.id);
          audio_seconds += r.audio_seconds;
          if (r.file_rate > 0 && r.file_rate < extractor.sample_rate()) ++report.upsampled[r.file_rate];
          if (r.no_signal) report.no_signal.push_back(fmt::format("{} ({})", job.id, job.path));
        } catch (...) {
          write_error = std::current_exception();
        }
        break;
      case Result::Status::TooShort:
        ++too_short;
        audio_seconds += r.audio_seconds;
        r.features = torch::Tensor();
        shorts.push_back(std::move(r));
        break;
      case Result::Status::Failed:
        fmt::print(stderr, "{}features: failed: {} ({}): {}\n", isatty(STDERR_FILENO) ? "\n" : "",
                   job.id, job.path, r.reason);
        failures.push_back(std::move(r));
        break;
    }
    progress.advance(1, fmt::format("{} failed", failures.size()));
  }
  for (auto& t : pool) t.join();
  crnn::set_num_threads(caller_threads);  // workers set the process-wide OpenBLAS count to 1
  if (write_error) std::rethrow_exception(write_error);
  if (!todo.empty()) progress.finish(fmt::format("{} failed", failures.size()));
  const double wall = std::chrono::duration<double>(Clock::now() - start).count();

  for (const auto& r : shorts)
    report.skipped.push_back(fmt::format("{} ({}): {}", jobs[r.job].id, jobs[r.job].path, r.reason));
  size_t missing = 0;
  std::string from_cwd;  // a missing file's manifest-relative path that exists from the working directory
  const fs::path manifest_dir = fs::absolute(manifest).lexically_normal().parent_path();
  for (const auto& r : failures) {
    report.failed.push_back(fmt::format("{} ({}): {}", jobs[r.job].id, jobs[r.job].path, r.reason));
    std::error_code ec;
    if (fs::exists(jobs[r.job].path, ec) || ec) continue;
    ++missing;
    const fs::path rel = fs::path(jobs[r.job].path).lexically_relative(manifest_dir);
    if (from_cwd.empty() && !rel.empty() && *rel.begin() != ".." && fs::exists(rel, ec)) from_cwd = rel.string();
  }
  if (missing > 0)
    report.missing_note = fmt::format(
        "{} of the {} failed file(s) do not exist; a relative path in a manifest is taken from the manifest's "
        "folder ({}), not the working directory{}",
        missing, failures.size(), manifest_dir.string(),
        from_cwd.empty() ? ""
                         : fmt::format(" — '{}' exists from the working directory: write the paths relative to {}, "
                                       "or absolute",
                                       from_cwd, manifest_dir.string()));
  report.total = jobs.size();
  report.extracted = written;
  report.present = present;
  report.audio_seconds = audio_seconds;
  report.wall_seconds = wall;
  report.workers = todo.empty() ? 0 : workers;
  (void)too_short;
  if (!options.covered_manifest.empty()) {
    data::Manifest covered(rows.tasks());
    for (const auto& u : rows.utterances())
      if (store.contains(u.id)) covered.add(u);
    covered.write(options.covered_manifest);
    report.covered = covered.size();
  }
  return report;
}


}  // namespace crnn::data
