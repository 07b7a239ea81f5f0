// compute_fbank against the 24 torchaudio references in ../shared (SPEC §4).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "crnn/audio/fbank.h"
#include "crnn/audio/read_audio.h"
#include "support/shared_corpora.h"
#include "support/test_support.h"

namespace fs = std::filesystem;
using namespace crnn::audio;

namespace {

using crnn::test::audio_for;
using crnn::test::speechocean_paths;

}  // namespace

TEST(FbankReference, MatchesTorchaudioOnSharedCorpora) {
  const fs::path shared = CRNN_SHARED_DIR;
  const fs::path refdir = shared / "reference" / "kaldi_fbank26";
  if (!fs::is_directory(refdir) || !fs::is_directory(shared / "corpora"))
    GTEST_SKIP() << refdir.string() << " (../shared/reference) not found: skipping";
  const auto so762 = speechocean_paths(shared / "corpora" / "speechocean762");

  int checked = 0;
  double worst = 0.0;
  for (const auto& entry : fs::directory_iterator(refdir)) {
    if (entry.path().extension() != ".csv") continue;
    const std::string stem = entry.path().stem().string();
    SCOPED_TRACE(stem);
    const std::string audio = audio_for(shared, stem, so762);
    ASSERT_FALSE(audio.empty()) << "no audio file known for " << stem;
    const torch::Tensor expected = crnn::test::read_csv_matrix(entry.path().string());
    const torch::Tensor got = compute_fbank(read_audio(audio, 16000));
    ASSERT_EQ(got.sizes(), expected.sizes());
    const double max_abs = (got - expected).abs().max().item<double>();
    EXPECT_LE(max_abs, 1e-3) << audio;
    worst = std::max(worst, max_abs);
    ++checked;
  }
  EXPECT_EQ(checked, 24);
  RecordProperty("max_abs_diff", std::to_string(worst));
  std::printf("[ info     ] %d references, largest |difference| %.3g\n", checked, worst);
}
