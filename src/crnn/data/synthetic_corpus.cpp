#include "crnn/data/synthetic_corpus.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include <fmt/format.h>

#include "crnn/data/error.h"
#include "crnn/data/random.h"
#include "crnn/util/subprocess.h"
#include "crnn/util/text.h"

namespace crnn::data {
namespace {

namespace fs = std::filesystem;

// Bump when the generated corpus changes for the same options (parameter
// ranges, sentences, file layout), so that stale stamps force a regeneration.
constexpr const char* kGeneratorVersion = "crnn synthetic corpus 1";

const std::string kNotFound = "espeak-ng not found: install it (scripts/setup installs it)";

// The executable to run, checked up front so that a missing espeak-ng gives
// one clear message instead of a failure per utterance.
std::string find_espeak(const std::string& name) {
  try {
    return find_executable(name);
  } catch (const SubprocessError& e) {
    throw DataError(fmt::format("{}; {}", kNotFound, e.what()));
  }
}

// espeak-ng with `args`, stdout + stderr captured. A program that cannot be
// started (removed since find_espeak, say) is a DataError like any failure.
ProcessResult run_espeak(const std::string& exe, const std::vector<std::string>& args) {
  std::vector<std::string> argv{exe};
  argv.insert(argv.end(), args.begin(), args.end());
  try {
    return run_process(argv);
  } catch (const SubprocessError& e) {
    throw DataError(e.what());
  }
}

// "eSpeak NG text-to-speech: 1.51  Data at: ..." -> "1.51". Part of the stamp:
// another espeak-ng release may synthesise different samples.
std::string espeak_version(const std::string& exe) {
  ProcessResult r = run_espeak(exe, {"--version"});
  if (!r.ok()) throw DataError(fmt::format("'{} --version' failed ({}): {}", exe, r.describe(), r.output));
  const std::string key = "text-to-speech:";
  size_t pos = r.output.find(key);
  std::string first_line = r.output.substr(0, r.output.find('\n'));
  if (pos == std::string::npos) return first_line;
  pos = r.output.find_first_not_of(' ', pos + key.size());
  if (pos == std::string::npos) return first_line;
  return r.output.substr(pos, r.output.find_first_of(" \n", pos) - pos);
}

// ---------------------------------------------------------------------------
// The corpus plan: every random draw happens here, serially, before any
// process runs, so the result does not depend on `jobs` or scheduling.

// Uniform in [0, 1) with 53 random bits (Rng::below is fully specified).
double uniform01(Rng& rng) { return static_cast<double>(rng.below(1ull << 53)) / 9007199254740992.0; }
double uniform(Rng& rng, double lo, double hi) { return lo + (hi - lo) * uniform01(rng); }
// Box–Muller by hand: std::normal_distribution is implementation defined.
double normal(Rng& rng, double sd) {
  const double u1 = 1.0 - uniform01(rng);  // (0, 1]: log is finite
  const double u2 = uniform01(rng);
  return sd * std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
}

struct Speaker {
  std::string id;
  std::string sex;    // "female" / "male"
  std::string voice;  // espeak-ng voice, e.g. "en+m3"
  double pitch = 50, speed = 175, amplitude = 80;
  std::string split;
};

struct Job {
  Utterance utterance;
  std::vector<std::string> args;  // espeak-ng arguments
};

// Class differences and jitter (docs/demo.md). Per utterance, each cue is
// shifted by ±offset·separation (calm −, excited +) and jittered with a normal
// of the given sd. Within one speaker each cue alone separates the classes
// with d' = 2·offset/sd ≈ 1.4–1.5 (~76%), all four with d' ≈ 2.9 for an ideal
// linear rule (~93%). Features are normalized per speaker
// (docs/normalization.md), which removes the speakers' base differences, so
// these numbers set the difficulty. Calibrated: logistic regression on the
// per-utterance mean and std of speaker-normalized 26 log-mel features,
// leave-one-speaker-out on the default corpus, gets 82.8% / 82.3% (seeds 0 / 1);
// with separation 0, 51% (tests/data/synthetic_corpus_calibration_test.cpp,
// CRNN_CALIBRATION=full).
constexpr double kPitchOffset = 6.5, kPitchJitter = 9.0;     // espeak -p units (0..99)
constexpr double kRangeOffset = 32.0, kRangeJitter = 45.0;   // SSML prosody range, percent
constexpr double kSpeedOffset = 0.09, kSpeedJitter = 0.12;   // relative to the speaker's speed
constexpr double kAmpOffset = 0.13, kAmpJitter = 0.18;       // relative to the speaker's amplitude

std::vector<Speaker> plan_speakers(const SyntheticCorpusOptions& o, Rng& rng) {
  std::vector<std::string> male{"m1", "m2", "m3", "m4", "m5", "m6", "m7"};
  std::vector<std::string> female{"f1", "f2", "f3", "f4", "f5"};
  rng.shuffle(male);
  rng.shuffle(female);
  const int64_t n_female = o.speakers / 2;
  // Sexes alternate (male first), so the first speakers — test, then valid —
  // are balanced by sex and training keeps both.
  std::vector<Speaker> speakers;
  int64_t males = 0, females = 0;
  for (int64_t i = 0; i < o.speakers; ++i) {
    Speaker s;
    const bool is_female = (i % 2 == 1 && females < n_female) || (o.speakers - i <= n_female - females);
    s.sex = is_female ? "female" : "male";
    // More speakers than variants of a sex reuse variants; base pitch, speed
    // and loudness still differ.
    s.voice = "en+" + (is_female ? female[females++ % female.size()] : male[males++ % male.size()]);
    s.id = fmt::format("spk{:02d}", i + 1);
    s.pitch = uniform(rng, 35.0, 65.0);
    s.speed = uniform(rng, 150.0, 185.0);
    s.amplitude = uniform(rng, 70.0, 90.0);
    speakers.push_back(s);
  }
  // Speaker-independent split: ~1/4 test, ~1/8 valid (at least one each),
  // the rest train; 8 speakers → 2 test (m, f), 1 valid, 5 train.
  const int64_t n = o.speakers;
  const int64_t n_test = std::max<int64_t>(1, static_cast<int64_t>(std::lround(n * 0.25)));
  const int64_t n_valid = std::max<int64_t>(1, static_cast<int64_t>(std::lround(n * 0.125)));
  for (int64_t i = 0; i < n; ++i)
    speakers[i].split = i < n_test ? "test" : i < n_test + n_valid ? "valid" : "train";
  return speakers;
}

std::vector<Job> plan_jobs(const SyntheticCorpusOptions& o, const fs::path& wav_dir) {
  Rng rng(o.seed);
  const auto speakers = plan_speakers(o, rng);
  const auto& sentences = synthetic_corpus_sentences();
  std::vector<Job> jobs;
  for (const auto& s : speakers) {
    // The k-th calm and k-th excited utterance read the same sentence, so
    // the classes never differ in wording; sentences cycle in shuffled blocks.
    std::vector<size_t> order;
    for (int64_t k = 0; k < o.utterances_per_class; ++k) {
      if (k % static_cast<int64_t>(sentences.size()) == 0) {
        order.resize(sentences.size());
        for (size_t i = 0; i < order.size(); ++i) order[i] = i;
        rng.shuffle(order);
      }
      const std::string& sentence = sentences[order[k % sentences.size()]];
      for (int c = 0; c < 2; ++c) {
        const double sign = c == 0 ? -1.0 : 1.0;
        const double sep = o.separation;
        const double pitch = std::clamp(s.pitch + sign * kPitchOffset * sep + normal(rng, kPitchJitter), 0.0, 99.0);
        const double range = std::clamp(100.0 + sign * kRangeOffset * sep + normal(rng, kRangeJitter), 30.0, 200.0);
        const double speed =
            std::clamp(s.speed * (1.0 + sign * kSpeedOffset * sep + normal(rng, kSpeedJitter)), 80.0, 400.0);
        // Capped at 125: louder than that, espeak-ng clips the waveform.
        const double amp =
            std::clamp(s.amplitude * (1.0 + sign * kAmpOffset * sep + normal(rng, kAmpJitter)), 20.0, 125.0);

        Job job;
        auto& u = job.utterance;
        u.id = fmt::format("{}_{}_{:03d}", s.id, arousal_labels()[c], k + 1);
        u.path = (wav_dir / (u.id + ".wav")).string();
        u.speaker = s.id;
        u.split = s.split;
        u.labels[kArousalTask] = arousal_labels()[c];
        u.labels[kSpeakerSexTask] = s.sex;
        // Integers: the arguments (and so the audio) do not depend on the
        // last bits of log / cos on this platform, except at rounding ties.
        job.args = {"-v", s.voice,
                    "-p", std::to_string(std::lround(pitch)),
                    "-s", std::to_string(std::lround(speed)),
                    "-a", std::to_string(std::lround(amp)),
                    "-m",  // SSML: the only way to set the pitch range
                    "-w", u.path,
                    fmt::format("<speak><prosody range=\"{}%\">{}</prosody></speak>", std::lround(range),
                                crnn::xml_escape(sentence))};
        jobs.push_back(std::move(job));
      }
    }
  }
  return jobs;
}

std::string stamp_text(const SyntheticCorpusOptions& o, const std::string& version) {
  // Only what determines the output (not out_dir, jobs or the executable path).
  return fmt::format(
      "{{\n  \"generator\": \"{}\",\n  \"espeak_ng\": \"{}\",\n  \"speakers\": {},\n"
      "  \"utterances_per_class\": {},\n  \"seed\": {},\n  \"separation\": {}\n}}\n",
      kGeneratorVersion, version, o.speakers, o.utterances_per_class, o.seed, o.separation);
}

void ensure_writable_dir(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw DataError(fmt::format("cannot create output directory '{}': {}", dir.string(), ec.message()));
  if (!fs::is_directory(dir)) throw DataError(fmt::format("output path '{}' is not a directory", dir.string()));
  // access(W_OK) is wrong for root and some file systems: really try.
  const fs::path probe = dir / ".write_test";
  {
    std::ofstream f(probe);
    if (!f || !(f << "x") || !(f.flush()))
      throw DataError(fmt::format("output directory '{}' is not writable", dir.string()));
  }
  fs::remove(probe, ec);
}

}  // namespace

const std::vector<std::string>& synthetic_corpus_sentences() {
  // Short, neutral, no digits or abbreviations (espeak-ng would expand them
  // differently across versions).
  static const std::vector<std::string> sentences{
      "The train leaves the station at noon.",
      "Please put the book back on the shelf.",
      "The weather will change later this week.",
      "She walked to the market this morning.",
      "We need to buy some bread and milk.",
      "The meeting is in the room upstairs.",
      "He opened the window and looked outside.",
      "The garden behind the house is quite large.",
      "They painted the kitchen walls last year.",
      "The letter arrived on a Tuesday afternoon.",
  };
  return sentences;
}

Manifest make_synthetic_corpus(const SyntheticCorpusOptions& options,
                               std::function<void(int64_t done, int64_t total)> progress) {
  if (options.out_dir.empty()) throw DataError("synthetic corpus: out_dir is empty");
  if (options.speakers < 3)
    throw DataError(fmt::format("synthetic corpus: speakers must be >= 3 (train, valid and test), got {}",
                                options.speakers));
  if (options.utterances_per_class < 1)
    throw DataError(fmt::format("synthetic corpus: utterances_per_class must be >= 1, got {}",
                                options.utterances_per_class));
  if (!(options.separation >= 0.0) || !std::isfinite(options.separation))
    throw DataError(fmt::format("synthetic corpus: separation must be finite and >= 0, got {}", options.separation));

  const std::string exe = find_espeak(options.espeak);
  const fs::path out_dir = fs::absolute(options.out_dir);
  ensure_writable_dir(out_dir);
  const fs::path manifest_path = out_dir / "manifest.csv";
  const fs::path stamp_path = out_dir / "corpus.json";
  const fs::path wav_dir = out_dir / "wav";

  const std::string stamp = stamp_text(options, espeak_version(exe));
  const int64_t total = options.speakers * options.utterances_per_class * 2;

  std::error_code ec;
  if (fs::exists(stamp_path, ec)) {
    if (fs::exists(manifest_path, ec) && read_text_file(stamp_path.string()) == stamp) {
      Manifest m = Manifest::read(manifest_path.string());
      if (static_cast<int64_t>(m.size()) == total && m.validate_paths().empty()) {
        if (progress) progress(total, total);
        return m;
      }
    }
    // Our corpus, but for other options (or damaged): the stamp proves wav/
    // is ours, so clearing it is safe and drops files a smaller corpus lacks.
    fs::remove(stamp_path, ec);
    fs::remove_all(wav_dir, ec);
  }
  ensure_writable_dir(wav_dir);

  const std::vector<Job> jobs = plan_jobs(options, wav_dir);

  // Workers pull the next job; the first error stops new jobs and is rethrown.
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex mutex;  // guards done, first_error and progress calls
  int64_t done = 0;
  std::string first_error;
  auto worker = [&] {
    for (;;) {
      if (failed) return;
      const size_t i = next++;
      if (i >= jobs.size()) return;
      const Job& job = jobs[i];
      std::string error;
      std::error_code file_ec;  // per thread
      try {
        // A leftover file must not pass for this run's output (see below).
        fs::remove(job.utterance.path, file_ec);
        ProcessResult r = run_espeak(exe, job.args);
        if (!r.ok()) {
          error = fmt::format("espeak-ng failed for '{}' ({}): {}", job.utterance.id, r.describe(), r.output);
        } else if (!fs::exists(job.utterance.path, file_ec) || fs::file_size(job.utterance.path, file_ec) <= 44) {
          // espeak-ng exits 0 even when it could not open the -w file.
          error = fmt::format("espeak-ng wrote no audio for '{}' to {}: {}", job.utterance.id, job.utterance.path,
                              r.output);
        }
      } catch (const std::exception& e) {
        error = e.what();
      }
      std::lock_guard<std::mutex> lock(mutex);
      if (!error.empty()) {
        if (first_error.empty()) first_error = error;
        failed = true;
        return;
      }
      ++done;
      if (progress && !failed) progress(done, total);
    }
  };
  const int64_t n_threads = std::clamp<int64_t>(options.jobs, 1, static_cast<int64_t>(jobs.size()));
  std::vector<std::thread> threads;
  for (int64_t t = 0; t < n_threads; ++t) threads.emplace_back(worker);
  for (auto& t : threads) t.join();
  if (failed) throw DataError(first_error);

  Manifest manifest({kArousalTask, kSpeakerSexTask});
  for (const auto& job : jobs) manifest.add(job.utterance);
  ManifestWriteOptions write_options;
  write_options.relative_paths = true;
  write_options.always_write_split = true;
  manifest.write(manifest_path.string(), write_options);
  // Last, and atomically: a stamp means every file above is complete.
  write_text_file_atomic(stamp_path.string(), stamp);
  return Manifest::read(manifest_path.string());
}

}  // namespace crnn::data
