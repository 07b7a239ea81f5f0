// `crnn bench`: training and inference throughput of the paper's models on
// synthetic batches, fused vs composed, as a fraction of the machine's SGEMM
// peak (SPEC §6, docs/performance.md).
//
// Every (model, implementation) pair runs in a fresh worker process (this
// executable re-run with the hidden --worker flag) so that its peak resident
// memory (getrusage ru_maxrss) is its own and allocator state never carries
// over from one model to the next.
#include <fmt/core.h>
#include <fmt/format.h>
#include <sys/resource.h>
#include <ATen/Parallel.h>
#include <torch/torch.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "crnn/cli/command.h"
#include "crnn/nn/flops.h"
#include "crnn/nn/options.h"
#include "crnn/nn/sequence_classifier.h"
#include "crnn/util/threads.h"

namespace {

using Clock = std::chrono::steady_clock;

struct BenchOptions {
  std::vector<std::string> models;
  int64_t batch = 32;
  int64_t frames = 300;
  int threads = 0;
  bool json = false;
  double min_seconds = 2.0;  ///< per measurement: repeat steps for at least this long
  int min_reps = 3;
  bool skip_composed = false;
  int repeats = 1;  ///< worker processes per (model, implementation), alternating; medians reported
  // Worker mode (internal).
  bool worker = false;
  std::string impl = "fused";
  std::string phase = "both";  ///< worker: train, infer or both (for profiling one)
};

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/// Times f() repeatedly (after one warm-up call) for min_reps calls, and more
/// until min_seconds have passed or kMaxTimedCalls calls were timed, whichever
/// comes first; returns the median seconds per call.
/// Enough calls for a stable median; --min-seconds stops here (--min-reps does not).
constexpr int kMaxTimedCalls = 50;

template <typename F>
double time_median(const F& f, double min_seconds, int min_reps) {
  f();  // warm-up: first-touch allocations, OpenBLAS buffers
  std::vector<double> times;
  const auto start = Clock::now();
  while (static_cast<int>(times.size()) < min_reps || seconds_since(start) < min_seconds) {
    const auto t0 = Clock::now();
    f();
    times.push_back(seconds_since(t0));
    if (static_cast<int>(times.size()) >= std::max(min_reps, kMaxTimedCalls)) break;
  }
  return median(times);
}

double current_rss_mb() {
  std::ifstream statm("/proc/self/statm");
  long pages = 0, resident = 0;
  statm >> pages >> resident;
  return static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE)) / (1024.0 * 1024.0);
}

double peak_rss_mb() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;  // Linux: kilobytes
}

/// The machine's single-precision GEMM peak as torch::mm sees it: the best of
/// several 2048² products with the current thread count.
double measure_sgemm_peak_gflops() {
  torch::NoGradGuard no_grad;
  const int64_t n = 2048;
  auto a = torch::randn({n, n}), b = torch::randn({n, n}), c = torch::empty({n, n});
  for (int i = 0; i < 2; ++i) torch::mm_out(c, a, b);
  double best = 0;
  for (int i = 0; i < 7; ++i) {
    const auto t0 = Clock::now();
    torch::mm_out(c, a, b);
    best = std::max(best, 2.0 * n * n * n / seconds_since(t0) / 1e9);
  }
  return best;
}

int64_t classes_for(const std::string& model) {
  // RAVDESS emotion8 for the emotion setup, three classes for age/gender.
  return model.rfind("emotion", 0) == 0 ? 8 : 3;
}

bool is_crnn(const std::string& model) {
  return model.find("clstm") != std::string::npos || model.find("cblstm") != std::string::npos;
}

/// Worker: builds one model with one implementation and prints `key value` lines.
int run_worker(const BenchOptions& o) {
  const std::string model = o.models.at(0);
  crnn::nn::set_default_implementation(crnn::nn::parse_implementation(o.impl));
  torch::manual_seed(0);
  auto options = crnn::nn::SequenceClassifierOptions::preset(model, classes_for(model));
  crnn::nn::SequenceClassifier net(options);
  auto x = torch::randn({o.batch, o.frames, options.input_size()});
  auto lengths = torch::full({o.batch}, o.frames, torch::kLong);
  auto labels = torch::randint(options.num_classes(), {o.batch}, torch::kLong);
  torch::optim::Adam adam(net->parameters(), torch::optim::AdamOptions(0.002));
  crnn::nn::PaddedSequence batch{x, lengths};
  const double baseline = current_rss_mb();

  auto train_step = [&] {
    adam.zero_grad();
    auto loss = torch::nll_loss(net->forward(batch), labels);
    loss.backward();
    adam.step();
  };
  auto infer_step = [&] {
    torch::NoGradGuard no_grad;
    auto p = net->forward(batch);
    (void)p;
  };
  net->train();
  const double train_s =
      o.phase != "infer" ? time_median(train_step, o.min_seconds, o.min_reps) : 1.0;
  const double peak = peak_rss_mb();  // training's peak, before inference runs
  net->eval();
  const double infer_s =
      o.phase != "train" ? time_median(infer_step, o.min_seconds, o.min_reps) : 1.0;
  const double frames = static_cast<double>(o.batch * o.frames);
  fmt::print("train_s {:.6f}\ninfer_s {:.6f}\ntrain_frames_per_s {:.3f}\ninfer_frames_per_s {:.3f}\n"
             "peak_rss_mb {:.1f}\nbaseline_rss_mb {:.1f}\n",
             train_s, infer_s, frames / train_s, frames / infer_s, peak, baseline);
  return 0;
}

using Figures = std::map<std::string, double>;

Figures spawn_worker(const BenchOptions& o, const std::string& model, const std::string& impl) {
  std::string cmd = fmt::format(
      "'/proc/{}/exe' bench --threads {} --worker --model {} --impl {} --batch {} --frames {} "
      "--min-seconds {} --min-reps {}",
      getpid(), o.threads, model, impl, o.batch, o.frames, o.min_seconds, o.min_reps);
  // /proc/<pid>/exe of this very process: the same binary, a fresh address space.
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(cmd.c_str(), "r"), pclose);
  TORCH_CHECK(pipe, "bench: could not start a worker: ", cmd);
  Figures f;
  char line[512];
  while (fgets(line, sizeof(line), pipe.get())) {
    std::istringstream in(line);
    std::string key;
    double value;
    if (in >> key >> value) f[key] = value;
  }
  const int status = pclose(pipe.release());
  // The worker's own error went to stderr, just above this one.
  TORCH_CHECK(status == 0 && f.count("train_s"), "bench: the worker for ", model, " (", impl, ", batch ", o.batch,
              " x ", o.frames, " frames) failed: ",
              WIFSIGNALED(status) ? fmt::format("killed by signal {}", WTERMSIG(status))
                                  : fmt::format("exit status {}", WEXITSTATUS(status)),
              " (its error, if any, is above)");
  return f;
}

/// Per key, the median over several workers' figures (empty in, empty out).
Figures median_figures(const std::vector<Figures>& runs) {
  Figures out;
  if (runs.empty()) return out;
  for (const auto& [key, unused] : runs.front()) {
    std::vector<double> v;
    for (const auto& r : runs)
      if (auto it = r.find(key); it != r.end()) v.push_back(it->second);
    out[key] = median(v);
  }
  return out;
}

int run_bench(BenchOptions o) {
  if (o.worker) return run_worker(o);
  if (o.models.empty()) o.models = crnn::nn::SequenceClassifierOptions::preset_names();
  // Fail early on a bad name (a usage error), not in a worker.
  const auto names = crnn::nn::SequenceClassifierOptions::preset_names();
  for (auto& m : o.models) {
    if (std::find(names.begin(), names.end(), m) == names.end()) {
      fmt::print(stderr, "crnn bench: --model {}: unknown model preset (known: {})\n", m, fmt::join(names, ", "));
      return crnn::cli::kExitUsage;
    }
  }
  const double peak = measure_sgemm_peak_gflops();
  if (!o.json)
    fmt::print("SGEMM peak (torch::mm 2048², best of 7, {} threads): {:.1f} GFLOP/s\n", o.threads,
               peak);
  std::vector<std::string> rows;
  if (!o.json)
    fmt::print("{:<17} {:>9} {:>12} {:>12} {:>9} {:>7} {:>9} | {:>12} {:>12} {:>9} {:>7} {:>8}\n",
               "model", "GFLOP/st", "train fr/s", "infer fr/s", "GFLOP/s", "peak%", "RSS MB",
               "comp train", "comp infer", "comp RSS", "x train", "x infer");
  for (const auto& model : o.models) {
    auto options = crnn::nn::SequenceClassifierOptions::preset(model, classes_for(model));
    const double flops = crnn::nn::training_flops(options, o.batch, o.frames);
    const double fwd_flops = crnn::nn::forward_flops(options, o.batch, o.frames);
    // Alternate the two paths' workers so that slow drifts of a shared machine
    // hit both; every figure is the median over the repeats.
    std::vector<Figures> fused_runs, composed_runs;
    for (int r = 0; r < o.repeats; ++r) {
      fused_runs.push_back(spawn_worker(o, model, "fused"));
      if (!o.skip_composed) composed_runs.push_back(spawn_worker(o, model, "composed"));
    }
    auto fused = median_figures(fused_runs);
    Figures composed = median_figures(composed_runs);
    // Rates from the median times (a median of rates differs slightly for an even count).
    for (Figures* f : {&fused, &composed}) {
      if (f->count("train_s")) (*f)["train_frames_per_s"] = double(o.batch * o.frames) / (*f)["train_s"];
      if (f->count("infer_s")) (*f)["infer_frames_per_s"] = double(o.batch * o.frames) / (*f)["infer_s"];
    }
    const double train_gflops = flops / fused["train_s"] / 1e9;
    const double infer_gflops = fwd_flops / fused["infer_s"] / 1e9;
    std::string js = fmt::format(
        "{{\"model\": \"{}\", \"crnn\": {}, \"batch\": {}, \"frames\": {}, \"threads\": {}, "
        "\"train_gflop_per_step\": {:.6g}, \"train_frames_per_s\": {:.1f}, "
        "\"infer_frames_per_s\": {:.1f}, \"train_gflops\": {:.2f}, \"infer_gflops\": {:.2f}, "
        "\"sgemm_peak_gflops\": {:.2f}, \"peak_fraction\": {:.4f}, \"peak_rss_mb\": {:.1f}, "
        "\"baseline_rss_mb\": {:.1f}, \"repeats\": {}",
        model, is_crnn(model) ? "true" : "false", o.batch, o.frames, o.threads, flops / 1e9,
        fused["train_frames_per_s"], fused["infer_frames_per_s"], train_gflops, infer_gflops, peak,
        train_gflops / peak, fused["peak_rss_mb"], fused["baseline_rss_mb"], o.repeats);
    if (!composed.empty()) {
      js += fmt::format(
          ", \"composed_train_frames_per_s\": {:.1f}, \"composed_infer_frames_per_s\": {:.1f}, "
          "\"composed_train_gflops\": {:.2f}, \"composed_peak_fraction\": {:.4f}, "
          "\"composed_peak_rss_mb\": {:.1f}, \"composed_baseline_rss_mb\": {:.1f}, "
          "\"train_speedup\": {:.2f}, \"infer_speedup\": {:.2f}",
          composed["train_frames_per_s"], composed["infer_frames_per_s"],
          flops / composed["train_s"] / 1e9, flops / composed["train_s"] / 1e9 / peak,
          composed["peak_rss_mb"], composed["baseline_rss_mb"],
          composed["train_s"] / fused["train_s"], composed["infer_s"] / fused["infer_s"]);
    }
    js += "}";
    rows.push_back(js);
    if (!o.json) {
      fmt::print("{:<17} {:>9.2f} {:>12.0f} {:>12.0f} {:>9.1f} {:>6.1f}% {:>9.0f}", model,
                 flops / 1e9, fused["train_frames_per_s"], fused["infer_frames_per_s"],
                 train_gflops, 100 * train_gflops / peak, fused["peak_rss_mb"]);
      if (!composed.empty()) {
        fmt::print(" | {:>12.0f} {:>12.0f} {:>9.0f} {:>6.2f}x {:>7.2f}x", composed["train_frames_per_s"],
                   composed["infer_frames_per_s"], composed["peak_rss_mb"],
                   composed["train_s"] / fused["train_s"], composed["infer_s"] / fused["infer_s"]);
      }
      fmt::print("\n");
      std::fflush(stdout);
    }
  }
  if (o.json) {
    fmt::print("[\n");
    for (size_t i = 0; i < rows.size(); ++i)
      fmt::print("  {}{}\n", rows[i], i + 1 < rows.size() ? "," : "");
    fmt::print("]\n");
  }
  return 0;
}

crnn::cli::Registrar reg{
    "bench",
    "Time training steps and inference of the paper's models (fused vs composed), as frames/s "
    "and as a fraction of the measured SGEMM peak",
    [](CLI::App& app) {
      auto o = std::make_shared<BenchOptions>();
      app.add_option("--model", o->models,
                     "Model preset(s) (default: all): emotion-{baseline,conv,clstm,eclstm}, "
                     "agender-{baseline,conv,clstm,cblstm}");
      app.add_option("--batch", o->batch, "Sequences per batch")->check(crnn::cli::IntRange(1, 4096));
      app.add_option("--frames", o->frames, "Frames per sequence")->check(crnn::cli::IntRange(1, 1000000));
      app.add_option("--threads", o->threads, "CPU threads (default: all cores)")
          ->check(crnn::cli::IntRange(0, crnn::kMaxThreads));
      app.add_flag("--json", o->json, "Print a JSON array, one object per model");
      app.add_option("--min-seconds", o->min_seconds,
                     "Repeat each measurement for at least this long, up to 50 calls (median reported)")
          ->check(CLI::Validator(
              [](std::string& text) -> std::string {
                double v = std::nan("");
                try {
                  size_t used = 0;
                  v = std::stod(text, &used);
                  if (used != text.size()) v = std::nan("");
                } catch (const std::exception&) {
                }
                // NaN fails both comparisons, so it is refused too.
                return v >= 0.0 && v <= 3600.0 ? "" : "must be a number of seconds in 0..3600, got " + text;
              },
              "SECONDS in 0..3600"));
      app.add_option("--min-reps", o->min_reps, "Repeat each measurement at least this often")
          ->check(crnn::cli::IntRange(1, 1000000));
      app.add_flag("--skip-composed", o->skip_composed, "Do not time the composed path");
      app.add_option("--repeats", o->repeats,
                     "Workers per model and path, fused and composed alternating; medians reported")
          ->check(crnn::cli::IntRange(1, 1000));
      app.add_flag("--worker", o->worker, "(internal) time one model in this process")
          ->group("");
      app.add_option("--impl", o->impl, "(internal) implementation for --worker")->group("");
      app.add_option("--phase", o->phase, "(internal) train, infer or both, for --worker")
          ->group("");
      return [o] {
        // `crnn --threads N bench` has already set the count; `bench --threads N` wins.
        o->threads = crnn::set_num_threads(o->threads > 0 ? o->threads : at::get_num_threads());
        return run_bench(*o);
      };
    },
    70};

}  // namespace
