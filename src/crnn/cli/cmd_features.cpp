// `crnn features`: manifest -> HDF5 feature store (fbank), parallel over files.
//
//   crnn --threads 2 features manifest.csv -o feats.h5 [--keep-going]
//   crnn features --dump 03-01-01-01-01-01-01 feats.h5      # one matrix as CSV
//
// Design:
//  * N worker threads (N = --threads, i.e. at::get_num_threads()) each take the
//    next manifest row, decode + resample + compute the fbank with LibTorch
//    restricted to one intra-op thread (the parallelism is over files; nested
//    intra-op threads would oversubscribe the cores).
//  * The calling thread is the only one that touches HDF5: it receives
//    results through a bounded queue and writes them in completion order.
//    Every write is flushed (see FeatureStore), so an interrupted run keeps
//    everything written so far, and a re-run skips ids already in the file.
//  * Exit status: 0 if every row has features or was skipped as too short
//    (< one 25 ms frame), kExitPartial (3) if any file failed (0 with
//    --keep-going), kExitUsage (2) for a bad manifest / incompatible store.
#include <ATen/Parallel.h>
#include <fmt/core.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "crnn/audio/fbank.h"
#include "crnn/audio/read_audio.h"
#include "crnn/cli/command.h"
#include "crnn/data/feature_store.h"
#include "crnn/data/manifest.h"
#include "crnn/util/progress.h"
#include "crnn/util/threads.h"

namespace crnn::cli {
namespace {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct FeaturesOptions {
  std::string input;  // manifest, or the feature file with --dump
  std::string output;
  std::string kind = "fbank";
  bool keep_going = false;
  int sample_rate = 16000;
  int num_bins = 26;
  std::string window = "povey";
  std::string dump_id;
};

// One row to extract: the manifest's id and (resolved) audio path.
struct FeatureJob {
  std::string id;
  std::string path;
};

std::vector<FeatureJob> read_jobs(const std::string& manifest_path) {
  std::vector<FeatureJob> jobs;
  const auto manifest = data::Manifest::read(manifest_path);
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

Result extract(const FeatureJob& job, const audio::FbankOptions& fbank) {
  Result r;
  try {
    const torch::Tensor wave = audio::read_audio(job.path, static_cast<int>(fbank.sample_rate()));
    r.audio_seconds = static_cast<double>(wave.size(0)) / static_cast<double>(fbank.sample_rate());
    r.features = audio::compute_fbank(wave, fbank);
    if (r.features.size(0) == 0) {
      r.status = Result::Status::TooShort;
      r.reason = fmt::format("shorter than one {:g} ms frame ({} samples at {} Hz)",
                             fbank.frame_length_ms(), wave.size(0), fbank.sample_rate());
    }
  } catch (const std::exception& e) {
    r.status = Result::Status::Failed;
    r.reason = strip_path(e.what(), job.path);
  }
  return r;
}

int dump(const FeaturesOptions& o) {
  auto store = data::FeatureStore::open(o.input, data::FeatureStore::Mode::Read);
  if (!store.contains(o.dump_id)) {
    fmt::print(stderr, "crnn features: {}: no features for id '{}'\n", o.input, o.dump_id);
    return kExitUsage;
  }
  const torch::Tensor m = store.read(o.dump_id);
  std::string out;
  if (store.has_attributes()) {
    const auto names = store.feature_names();
    for (size_t i = 0; i < names.size(); ++i) out += (i ? "," : "") + names[i];
    out += '\n';
  }
  const auto a = m.accessor<float, 2>();
  for (int64_t i = 0; i < m.size(0); ++i) {
    for (int64_t j = 0; j < m.size(1); ++j) {
      if (j) out += ',';
      out += fmt::format("{}", a[i][j]);  // shortest round-trip form
    }
    out += '\n';
  }
  fmt::print("{}", out);
  return 0;
}

int run_features(const FeaturesOptions& o) {
  if (!o.dump_id.empty()) return dump(o);
  if (o.output.empty()) {
    fmt::print(stderr, "crnn features: -o FEATURES.h5 is required (unless --dump)\n");
    return kExitUsage;
  }
  audio::FbankOptions fbank;
  fbank.num_bins(o.num_bins).sample_rate(o.sample_rate);
  fbank.window(audio::parse_window_type(o.window));

  std::vector<FeatureJob> jobs;
  try {
    jobs = read_jobs(o.input);
  } catch (const std::exception& e) {
    fmt::print(stderr, "crnn features: {}\n", e.what());
    return kExitUsage;
  }

  auto store = data::FeatureStore::open(o.output, data::FeatureStore::Mode::Append);
  const data::FeatureAttributes attrs{o.sample_rate, fbank.frame_shift_ms(),
                                      audio::fbank_feature_names(o.num_bins),
                                      audio::describe(fbank) + " resampler=soxr-hq"};
  if (store.has_attributes()) {
    // Resuming into a file made with other options would mix incompatible rows.
    if (store.extractor() != attrs.extractor) {
      fmt::print(stderr,
                 "crnn features: {} holds features made with other options:\n  file: {}\n  now:  "
                 "{}\nUse another output file or delete it.\n",
                 o.output, store.extractor(), attrs.extractor);
      return kExitUsage;
    }
  } else {
    store.set_attributes(attrs);
  }
  for (const auto& id : store.discarded_incomplete())
    fmt::print(stderr, "features: '{}' was incomplete in {} (interrupted run): recomputing\n", id,
               o.output);

  std::vector<size_t> todo;
  for (size_t i = 0; i < jobs.size(); ++i)
    if (!store.contains(jobs[i].id)) todo.push_back(i);
  const size_t present = jobs.size() - todo.size();

  const int workers = static_cast<int>(
      std::max<size_t>(1, std::min<size_t>(static_cast<size_t>(at::get_num_threads()), todo.size())));
  if (!todo.empty())
    fmt::print(stderr, "features: {} to extract, {} already in {}, {} worker thread(s)\n",
               todo.size(), present, o.output, workers);

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
        Result r = extract(jobs[todo[k]], fbank);
        r.job = todo[k];
        queue.push(std::move(r));
      }
    });
  }

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
          store.write(job.id, r.features);
          ++written;
          audio_seconds += r.audio_seconds;
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
  if (write_error) std::rethrow_exception(write_error);
  if (!todo.empty()) progress.finish(fmt::format("{} failed", failures.size()));
  const double wall = std::chrono::duration<double>(Clock::now() - start).count();

  for (const auto& r : shorts)
    fmt::print(stderr, "features: skipped: {} ({}): {}\n", jobs[r.job].id, jobs[r.job].path,
               r.reason);
  for (const auto& r : failures)
    fmt::print(stderr, "features: FAILED: {} ({}): {}\n", jobs[r.job].id, jobs[r.job].path,
               r.reason);
  fmt::print("features: {} utterances: {} extracted, {} already present, {} skipped (too short), "
             "{} failed -> {}\n",
             jobs.size(), written, present, too_short, failures.size(), o.output);
  if (!todo.empty())
    fmt::print("features: {:.1f} s of audio in {:.2f} s wall with {} thread(s): real-time factor "
               "{:.0f} (audio seconds / wall second)\n",
               audio_seconds, wall, workers, wall > 0 ? audio_seconds / wall : 0.0);
  if (!failures.empty() && !o.keep_going) {
    fmt::print(stderr, "features: {} file(s) failed; exit status {} (use --keep-going to accept)\n",
               failures.size(), kExitPartial);
    return kExitPartial;
  }
  return 0;
}

Registrar reg{
    "features",
    "Extract log mel filterbank features for every file in a manifest into an HDF5 store",
    [](CLI::App& app) {
      auto o = std::make_shared<FeaturesOptions>();
      app.add_option("input", o->input,
                     "CSV manifest with 'id' and 'path' columns (relative paths are resolved "
                     "against its directory); with --dump: the HDF5 feature file")
          ->required();
      app.add_option("-o,--output", o->output, "HDF5 feature file (created, or resumed)");
      app.add_option("--kind", o->kind, "Feature kind")
          ->check(CLI::IsMember({"fbank"}))
          ->capture_default_str();
      app.add_flag("--keep-going", o->keep_going,
                   "Exit 0 even if some files failed (they are still reported)");
      app.add_option("--sample-rate", o->sample_rate, "Resample audio to this rate (Hz)")
          ->check(CLI::PositiveNumber)
          ->capture_default_str();
      app.add_option("--num-bins", o->num_bins, "Mel bins")
          ->check(CLI::Range(3, 1024))
          ->capture_default_str();
      app.add_option("--window", o->window, "Analysis window")
          ->check(CLI::IsMember({"povey", "hamming", "hanning", "rectangular", "blackman"}))
          ->capture_default_str();
      app.add_option("--dump", o->dump_id, "Print the matrix stored for this id as CSV and exit");
      return [o] { return run_features(*o); };
    },
    20};

}  // namespace
}  // namespace crnn::cli
