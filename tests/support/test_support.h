#pragma once
// Helpers shared by the tests: temp directories, writing audio with
// libsndfile, reading numeric CSV matrices.
#include <gtest/gtest.h>
#include <sndfile.h>
#include <torch/torch.h>

#include <array>
#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <sys/wait.h>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace crnn::test {

/// A fresh directory under the system temp dir, removed with the object.
class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() /
            ("crnn_test_" + std::to_string(rd()) + "_" + std::to_string(rd()));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  std::string str() const { return path_.string(); }
  /// Writes `text` to `rel` (creating parent folders); returns the full path.
  std::string write(const std::string& rel, const std::string& text = "") const {
    auto p = path_ / rel;
    std::filesystem::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << text;
    return p.string();
  }

 private:
  std::filesystem::path path_;
};

/// Writes interleaved float samples with libsndfile; `format` e.g.
/// SF_FORMAT_WAV | SF_FORMAT_PCM_16.
inline void write_audio(const std::string& path, const std::vector<float>& interleaved, int rate,
                        int channels, int format = SF_FORMAT_WAV | SF_FORMAT_PCM_16) {
  SF_INFO info{};
  info.samplerate = rate;
  info.channels = channels;
  info.format = format;
  SNDFILE* f = sf_open(path.c_str(), SFM_WRITE, &info);
  if (!f) throw std::runtime_error("cannot write " + path + ": " + sf_strerror(nullptr));
  const sf_count_t frames = static_cast<sf_count_t>(interleaved.size()) / channels;
  if (frames > 0 && sf_writef_float(f, interleaved.data(), frames) != frames) {
    sf_close(f);
    throw std::runtime_error("short write to " + path);
  }
  sf_close(f);
}

/// Writes interleaved raw int16 samples as a 16-bit PCM WAV (no float
/// conversion: libsndfile scales float by 32767 when writing).
inline void write_pcm16(const std::string& path, const std::vector<short>& interleaved, int rate,
                        int channels) {
  SF_INFO info{};
  info.samplerate = rate;
  info.channels = channels;
  info.format = SF_FORMAT_WAV | SF_FORMAT_PCM_16;
  SNDFILE* f = sf_open(path.c_str(), SFM_WRITE, &info);
  if (!f) throw std::runtime_error("cannot write " + path + ": " + sf_strerror(nullptr));
  const sf_count_t frames = static_cast<sf_count_t>(interleaved.size()) / channels;
  sf_writef_short(f, interleaved.data(), frames);
  sf_close(f);
}

/// A sine of `hz` at `rate`, `seconds` long, amplitude `amp`.
inline std::vector<float> sine(double hz, int rate, double seconds, double amp = 0.5) {
  const auto n = static_cast<size_t>(std::llround(seconds * rate));
  std::vector<float> x(n);
  for (size_t i = 0; i < n; ++i)
    x[i] = static_cast<float>(amp * std::sin(2.0 * M_PI * hz * static_cast<double>(i) / rate));
  return x;
}

/// Reads a header-less numeric CSV into a rows x cols float32 tensor.
inline torch::Tensor read_csv_matrix(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path);
  std::vector<float> values;
  int64_t rows = 0, cols = -1;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    std::stringstream ss(line);
    std::string cell;
    int64_t c = 0;
    while (std::getline(ss, cell, ',')) {
      values.push_back(std::stof(cell));
      ++c;
    }
    if (cols >= 0 && c != cols) throw std::runtime_error("ragged CSV " + path);
    cols = c;
    ++rows;
  }
  if (rows == 0) return torch::empty({0, 0});
  return torch::from_blob(values.data(), {rows, cols}, torch::kFloat).clone();
}

/// Result of running the crnn executable.
struct CliRun {
  int status = -1;
  std::string out;  // stdout + stderr
};

/// Runs a shell command line, capturing stdout + stderr.
inline CliRun run_command(const std::string& command) {
  const std::string cmd = command + " 2>&1";
  CliRun r;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  const int raw = pclose(p);
  r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  return r;
}

/// Runs `crnn ARGS` (CRNN_BINARY), capturing stdout + stderr.
inline CliRun run_crnn(const std::string& args) {
  return run_command(std::string("'") + CRNN_BINARY + "' " + args);
}

/// Runs `fn` and returns the message of the exception it throws ("" if none).
template <typename Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

/// Passes if `text` contains `part` (gtest without gmock).
inline ::testing::AssertionResult contains(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "\"" << text << "\" does not contain \"" << part << "\"";
}

/// True when espeak-ng is on PATH (the synthetic corpus tests skip otherwise).
inline bool espeak_available() { return std::system("command -v espeak-ng > /dev/null 2>&1") == 0; }

}  // namespace crnn::test
