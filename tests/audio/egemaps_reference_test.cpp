// compute_egemaps against the 24 openSMILE eGeMAPS v02 references in
// ../shared/reference/egemaps_v02 (test data only, see its README): the
// agreement targets of issue 26 on the smoothed LLDs, all files pooled.
//
// The test prints the per-LLD table (Pearson r, median |difference|, unit) that
// docs/features.md publishes; scripts/egemaps-agreement runs just this test.
// CRNN_EGEMAPS_RAW=1 also prints the table of the unsmoothed LLDs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "crnn/audio/egemaps.h"
#include "crnn/audio/read_audio.h"
#include "support/shared_corpora.h"

namespace fs = std::filesystem;
using namespace crnn::audio;

namespace {

using crnn::test::audio_for;
using crnn::test::speechocean_paths;

// openSMILE CSV: name;frameTime;25 values. Returns rows x 25 and the header's
// LLD names.
std::vector<std::vector<double>> read_reference(const std::string& path, std::vector<std::string>* names) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path);
  std::vector<std::vector<double>> rows;
  std::string line;
  bool header = true;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    std::stringstream ss(line);
    std::string cell;
    std::vector<std::string> cells;
    while (std::getline(ss, cell, ';')) cells.push_back(cell);
    if (header) {
      if (names) names->assign(cells.begin() + 2, cells.end());
      header = false;
      continue;
    }
    std::vector<double> row;
    for (size_t i = 2; i < cells.size(); ++i) row.push_back(std::stod(cells[i]));
    rows.push_back(row);
  }
  return rows;
}

struct Pairs {
  std::vector<double> a, b;  // ours, reference
  void add(double x, double y) { a.push_back(x); b.push_back(y); }
  double pearson() const {
    const size_t n = a.size();
    if (n < 2) return 0.0;
    double ma = 0, mb = 0;
    for (size_t i = 0; i < n; ++i) { ma += a[i]; mb += b[i]; }
    ma /= n; mb /= n;
    double sab = 0, saa = 0, sbb = 0;
    for (size_t i = 0; i < n; ++i) {
      sab += (a[i] - ma) * (b[i] - mb);
      saa += (a[i] - ma) * (a[i] - ma);
      sbb += (b[i] - mb) * (b[i] - mb);
    }
    return saa > 0 && sbb > 0 ? sab / std::sqrt(saa * sbb) : 0.0;
  }
  double median_abs_error() const {
    std::vector<double> d;
    for (size_t i = 0; i < a.size(); ++i) d.push_back(std::abs(a[i] - b[i]));
    if (d.empty()) return 0.0;
    std::nth_element(d.begin(), d.begin() + d.size() / 2, d.end());
    return d[d.size() / 2];
  }
};

const char* const kUnits[kEgemapsLlds] = {"openSMILE", "dB", "dB", "dB/Hz", "dB/Hz", "openSMILE", "", "", "", "",
                                          "semitone", "fraction", "dB", "dB", "dB", "dB", "Hz", "Hz", "dB",
                                          "Hz", "Hz", "dB", "Hz", "Hz", "dB"};

// Pooled comparison of one table (smoothed or raw).
struct Agreement {
  std::vector<Pairs> columns = std::vector<Pairs>(kEgemapsLlds);
  long frames = 0, vuv_agree = 0, voiced_both = 0, within_1st = 0;
  std::vector<double> f0_abs;
  int files = 0;

  void add(const torch::Tensor& ours, const std::vector<std::vector<double>>& ref) {
    ++files;
    const auto o = ours.accessor<float, 2>();
    for (int64_t t = 0; t < ours.size(0); ++t) {
      const auto& r = ref[static_cast<size_t>(t)];
      const bool ov = o[t][10] != 0.0f, rv = r[10] != 0.0;
      ++frames;
      vuv_agree += ov == rv;
      for (int64_t c = 0; c < 10; ++c) columns[c].add(o[t][c], r[c]);
      if (ov && rv) {
        ++voiced_both;
        const double d = std::abs(o[t][10] - r[10]);
        f0_abs.push_back(d);
        within_1st += d <= 1.0;
        for (int64_t c = 10; c < kEgemapsLlds; ++c) columns[c].add(o[t][c], r[c]);
      }
    }
  }
  double vuv() const { return frames ? static_cast<double>(vuv_agree) / frames : 0.0; }
  double f0_median() const {
    auto d = f0_abs;
    if (d.empty()) return 0.0;
    std::nth_element(d.begin(), d.begin() + d.size() / 2, d.end());
    return d[d.size() / 2];
  }
  double f0_within() const { return voiced_both ? static_cast<double>(within_1st) / voiced_both : 0.0; }

  void print(const char* title, const std::vector<std::string>& names) const {
    std::printf("\n%s: %d files, %ld frames; F0 voiced/unvoiced agreement %.1f %%, voiced in both %ld frames: "
                "median |dF0| %.3f semitone, %.1f %% within 1 semitone\n",
                title, files, frames, 100.0 * vuv(), voiced_both, f0_median(), 100.0 * f0_within());
    std::printf("| %-30s | %8s | %12s | %-12s | %8s |\n", "LLD", "r", "median |d|", "unit", "pairs");
    for (int64_t c = 0; c < kEgemapsLlds; ++c)
      std::printf("| %-30s | %8.3f | %12.4g | %-12s | %8zu |\n", names[c].c_str(), columns[c].pearson(),
                  columns[c].median_abs_error(), kUnits[c], columns[c].a.size());
    std::fflush(stdout);
  }
};

}  // namespace

TEST(EgemapsReference, AgreesWithOpenSmileOnSharedCorpora) {
  const fs::path shared = CRNN_SHARED_DIR;
  const fs::path refdir = shared / "reference" / "egemaps_v02";
  if (!fs::is_directory(refdir) || !fs::is_directory(shared / "corpora"))
    GTEST_SKIP() << refdir.string() << " or " << (shared / "corpora").string()
                 << " (../shared) not found: skipping the openSMILE agreement check";
  const auto so762 = speechocean_paths(shared / "corpora" / "speechocean762");
  const bool print_raw = std::getenv("CRNN_EGEMAPS_RAW") != nullptr;

  Agreement smoothed, raw;
  std::vector<fs::path> refs;
  for (const auto& entry : fs::directory_iterator(refdir))
    if (entry.path().string().size() > 8 && entry.path().string().rfind(".lld.csv") == entry.path().string().size() - 8)
      refs.push_back(entry.path());
  std::sort(refs.begin(), refs.end());
  std::vector<std::string> ref_names;
  for (const auto& path : refs) {
    const std::string stem = path.filename().string().substr(0, path.filename().string().size() - 8);
    SCOPED_TRACE(stem);
    const std::string audio = audio_for(shared, stem, so762);
    ASSERT_FALSE(audio.empty()) << "no audio file known for " << stem;
    const auto ref = read_reference(path.string(), &ref_names);
    const auto ref_raw = read_reference((refdir / (stem + ".lldraw.csv")).string(), nullptr);
    const torch::Tensor wave = read_audio(audio, 16000);
    const torch::Tensor ours = compute_egemaps(wave);
    ASSERT_EQ(ours.size(0), static_cast<int64_t>(ref.size())) << "frame count";
    ASSERT_EQ(ours.size(1), kEgemapsLlds);
    EXPECT_TRUE(torch::isfinite(ours).all().item<bool>());
    smoothed.add(ours, ref);
    if (print_raw) {
      const torch::Tensor ours_raw = compute_egemaps(wave, EgemapsOptions().smooth(false));
      ASSERT_EQ(ours_raw.size(0), static_cast<int64_t>(ref_raw.size())) << "raw frame count";
      raw.add(ours_raw, ref_raw);
    }
  }
  ASSERT_EQ(smoothed.files, 24);
  EXPECT_EQ(ref_names, egemaps_feature_names(true));
  smoothed.print("eGeMAPS v02 smoothed LLDs vs openSMILE 3.0.1", egemaps_feature_names(true));
  if (print_raw) raw.print("eGeMAPS v02 raw LLDs vs openSMILE 3.0.1", egemaps_feature_names(false));

  // Issue 26 targets where crnn meets them; elsewhere the measured lower bound
  // (a regression guard, 0.02-0.05 below the value measured when it was set),
  // with the gap explained in docs/features.md.
  struct Bound {
    int column;
    double min_r;
    bool target;  // the target (true) or a measured lower bound (false)
  };
  const std::vector<Bound> bounds = {
      {0, 0.99, true},   {1, 0.99, true},   {2, 0.99, true},   {3, 0.83, false},  {4, 0.86, false},
      {5, 0.99, true},   {6, 0.99, true},   {7, 0.99, true},   {8, 0.99, true},   {9, 0.99, true},
      {11, 0.10, false}, {12, 0.10, false}, {13, 0.8, true},   {14, 0.10, false}, {15, 0.63, false},
      {16, 0.15, false}, {17, -0.2, false}, {18, 0.43, false}, {19, 0.27, false}, {20, 0.08, false},
      {21, 0.55, false}, {22, 0.18, false}, {23, -0.05, false}, {24, 0.57, false}};
  const auto names = egemaps_feature_names(true);
  for (const auto& b : bounds)
    EXPECT_GE(smoothed.columns[b.column].pearson(), b.min_r)
        << names[b.column] << (b.target ? " (issue 26 target)" : " (measured lower bound)");
  EXPECT_GE(smoothed.vuv(), 0.90) << "F0 voiced/unvoiced agreement (target)";
  EXPECT_LE(smoothed.f0_median(), 0.3) << "median |dF0| in semitones on frames voiced in both (target)";
  EXPECT_GE(smoothed.f0_within(), 0.95) << "share of frames voiced in both within 1 semitone (target)";
}
