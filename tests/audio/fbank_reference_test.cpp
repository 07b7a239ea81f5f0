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
#include "support/test_support.h"

namespace fs = std::filesystem;
using namespace crnn::audio;

namespace {

// speechocean762 keeps utterance id -> relative path in {train,test}/wav.scp.
std::map<std::string, std::string> speechocean_paths(const fs::path& root) {
  std::map<std::string, std::string> paths;
  for (const char* split : {"train", "test"}) {
    std::ifstream in(root / split / "wav.scp");
    std::string id, rel;
    while (in >> id >> rel) paths[id] = (root / rel).string();
  }
  return paths;
}

// "ravdess__03-01-01-01-01-01-01.csv" -> corpora/ravdess/Actor_01/03-01-....flac
// (the actor is the last field of the RAVDESS name).
std::string audio_for(const fs::path& shared, const std::string& stem,
                      const std::map<std::string, std::string>& so762) {
  const auto sep = stem.find("__");
  const std::string corpus = stem.substr(0, sep), name = stem.substr(sep + 2);
  if (corpus == "ravdess") {
    const std::string actor = name.substr(name.rfind('-') + 1);
    return (shared / "corpora" / "ravdess" / ("Actor_" + actor) / (name + ".flac")).string();
  }
  if (corpus == "speechocean762") {
    auto it = so762.find(name);
    if (it != so762.end()) return it->second;
  }
  return {};
}

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
