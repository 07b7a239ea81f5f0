// End-to-end: the crnn binary on a temporary manifest.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <cmath>
#include <fstream>
#include <random>
#include <thread>

#include "crnn/audio/fbank.h"
#include "crnn/audio/feature_extractor.h"
#include "crnn/audio/read_audio.h"
#include "crnn/data/feature_store.h"
#include "crnn/data/manifest.h"
#include "support/test_support.h"

namespace {
using crnn::test::CliRun;
using crnn::test::run_crnn;

// Three good files (one 44.1 kHz stereo FLAC in a subfolder, referenced by a
// relative path), one text file named .wav, one 10 ms file.
struct Corpus {
  crnn::test::TempDir dir;
  std::string manifest = dir.file("manifest.csv");
  std::string h5 = dir.file("feats.h5");
  Corpus() {
    std::filesystem::create_directories(dir.path() / "sub");
    crnn::test::write_audio(dir.file("a.wav"), crnn::test::sine(300, 16000, 0.5), 16000, 1);
    crnn::test::write_audio(dir.file("b.wav"), crnn::test::sine(900, 16000, 0.25), 16000, 1);
    std::vector<float> stereo;
    for (float v : crnn::test::sine(500, 44100, 0.3)) stereo.insert(stereo.end(), {v, -0.5f * v});
    crnn::test::write_audio(dir.file("sub/c.flac"), stereo, 44100, 2,
                            SF_FORMAT_FLAC | SF_FORMAT_PCM_16);
    std::ofstream(dir.file("bad.wav")) << "not audio at all\n";
    crnn::test::write_audio(dir.file("short.wav"), crnn::test::sine(300, 16000, 0.01), 16000, 1);
    std::ofstream m(manifest);
    m << "id,speaker,path,emotion\n"
      << "a,s1," << dir.file("a.wav") << ",happy\n"
      << "b,s1,b.wav,sad\n"
      << "c,s2,\"sub/c.flac\",sad\n"
      << "bad,s2,bad.wav,angry\n"
      << "short,s3,short.wav,calm\n";
  }
};

}  // namespace

TEST(FeaturesCli, ExtractsReportsFailuresAndResumes) {
  Corpus c;
  const std::string args = "--threads 2 features '" + c.manifest + "' -o '" + c.h5 + "'";
  CliRun first = run_crnn(args);
  EXPECT_EQ(first.status, 3) << first.out;  // one file failed, no --keep-going
  EXPECT_NE(first.out.find("bad.wav"), std::string::npos) << first.out;
  EXPECT_NE(first.out.find("unsupported or unrecognised audio format"), std::string::npos)
      << first.out;
  EXPECT_NE(first.out.find("shorter than one 25 ms frame"), std::string::npos) << first.out;
  EXPECT_NE(first.out.find("3 extracted, 0 already present, 1 skipped (too short), 1 failed"),
            std::string::npos)
      << first.out;
  EXPECT_NE(first.out.find("real-time factor"), std::string::npos) << first.out;

  {
    auto store = crnn::data::FeatureStore::open(c.h5, crnn::data::FeatureStore::Mode::Read);
    auto ids = store.ids();
    std::sort(ids.begin(), ids.end());
    EXPECT_EQ(ids, (std::vector<std::string>{"a", "b", "c"}));
    EXPECT_EQ(store.sample_rate(), 16000);
    EXPECT_EQ(store.frame_shift_ms(), 10.0);
    EXPECT_EQ(store.feature_names().size(), 26u);
    EXPECT_EQ(store.feature_names()[25], "fbank_25");
    // 0.5 s at 16 kHz = 8000 samples -> 1 + (8000 - 400) / 160 = 48 frames;
    // 0.25 s -> 23; 0.3 s at 44.1 kHz -> 13230 samples -> 4800 at 16 kHz -> 28.
    EXPECT_EQ(store.read("a").sizes(), (std::vector<int64_t>{48, 26}));
    EXPECT_EQ(store.read("b").sizes(), (std::vector<int64_t>{23, 26}));
    EXPECT_EQ(store.read("c").sizes(), (std::vector<int64_t>{28, 26}));
    // The stored matrix is the library's fbank of the decoded file.
    const auto expected = crnn::audio::compute_fbank(crnn::audio::read_audio(c.dir.file("a.wav")));
    EXPECT_TRUE(torch::allclose(store.read("a"), expected, 0, 1e-6));
  }

  // Resume: nothing new is extracted; the failure is still reported and
  // --keep-going turns the status into 0.
  CliRun second = run_crnn(args + " --keep-going");
  EXPECT_EQ(second.status, 0) << second.out;
  EXPECT_NE(second.out.find("0 extracted, 3 already present, 1 skipped (too short), 1 failed"),
            std::string::npos)
      << second.out;

  // --dump prints a header and one CSV line per frame.
  CliRun dump = run_crnn("features --dump b '" + c.h5 + "'");
  EXPECT_EQ(dump.status, 0) << dump.out;
  EXPECT_EQ(std::count(dump.out.begin(), dump.out.end(), '\n'), 1 + 23);
  EXPECT_EQ(dump.out.rfind("fbank_00,fbank_01,", 0), 0u) << dump.out.substr(0, 80);
  EXPECT_EQ(run_crnn("features --dump nosuch '" + c.h5 + "'").status, 2);
}

// --covered-manifest: the manifest's rows that have features (not the failed
// or too-short files), with absolute paths, a manifest training accepts with
// the store; never the input manifest itself.
TEST(FeaturesCli, CoveredManifestHoldsTheRowsWithFeatures) {
  Corpus c;
  const std::string covered = c.dir.file("out/covered.csv");
  std::filesystem::create_directories(c.dir.path() / "out");
  CliRun r = run_crnn("features '" + c.manifest + "' -o '" + c.h5 + "' --keep-going --covered-manifest '" + covered +
                      "'");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_TRUE(crnn::test::contains(r.out, "features: the 3 of 5 rows with features -> " + covered)) << r.out;
  const auto m = crnn::data::Manifest::read(covered);
  ASSERT_EQ(m.size(), 3u);
  const auto store = crnn::data::FeatureStore::open(c.h5, crnn::data::FeatureStore::Mode::Read);
  const auto original = crnn::data::Manifest::read(c.manifest);
  for (const auto& u : m.utterances()) {
    EXPECT_TRUE(store.contains(u.id)) << u.id;
    EXPECT_EQ(u.path, original.find(u.id).path);  // the same file, from the other folder
    EXPECT_EQ(u.label("emotion"), original.find(u.id).label("emotion"));
  }
  EXPECT_FALSE(m.contains("bad"));
  EXPECT_FALSE(m.contains("short"));
  r = run_crnn("features '" + c.manifest + "' -o '" + c.h5 + "' --covered-manifest '" + c.manifest + "'");
  EXPECT_EQ(r.status, 2) << r.out;
  EXPECT_TRUE(crnn::test::contains(r.out, "would replace the manifest itself")) << r.out;
  EXPECT_EQ(crnn::data::Manifest::read(c.manifest).size(), 5u);
  r = run_crnn("features '" + c.manifest + "' -o '" + c.h5 + "' --covered-manifest '" + c.h5 + "'");
  EXPECT_EQ(r.status, 2) << r.out;
  EXPECT_TRUE(crnn::test::contains(r.out, "would replace the feature file")) << r.out;
  EXPECT_TRUE(crnn::data::FeatureStore::open(c.h5, crnn::data::FeatureStore::Mode::Read).contains("a"));
}

TEST(FeaturesCli, RefusesToMixOptionsInOneStore) {
  Corpus c;
  ASSERT_EQ(run_crnn("features '" + c.manifest + "' -o '" + c.h5 + "' --keep-going").status, 0);
  CliRun r = run_crnn("features '" + c.manifest + "' -o '" + c.h5 + "' --num-bins 40");
  EXPECT_EQ(r.status, 2) << r.out;
  EXPECT_NE(r.out.find("other options"), std::string::npos) << r.out;
}

// Audio below the extraction rate is upsampled, and said so with the rates:
// a corpus whose classes come from different sources can differ in rate alone.
TEST(FeaturesCli, UpsampledFilesAreCountedByTheirRate) {
  crnn::test::TempDir dir;
  std::vector<float> tone(8000);
  for (size_t i = 0; i < tone.size(); ++i) tone[i] = 0.3f * std::sin(0.05f * static_cast<float>(i));
  crnn::test::write_audio(dir.file("a.wav"), tone, 16000, 1);
  crnn::test::write_audio(dir.file("b.wav"), tone, 8000, 1);
  crnn::test::write_audio(dir.file("c.wav"), tone, 44100, 1);  // downsampled: nothing to say
  std::ofstream(dir.file("m.csv")) << "id,path,speaker\na,a.wav,s\nb,b.wav,s\nc,c.wav,s\n";
  CliRun r = run_crnn("--threads 1 features '" + dir.file("m.csv") + "' -o '" + dir.file("f.h5") + "'");
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_TRUE(crnn::test::contains(r.out, "features: note: 1 of 3 file(s) were upsampled to 16000 Hz from a lower rate "
                                          "(8000 Hz: 1)"))
      << r.out;
}

// Digital silence, a constant (DC) signal and stereo channels that cancel give
// the same features in every frame: extracted (they are valid audio) but named
// in a note, for both feature kinds; speech-like audio is not named.
TEST(FeaturesCli, FilesWithoutSignalAreNamed) {
  crnn::test::TempDir dir;
  std::vector<float> tone(8000), silence(8000, 0.0f), dc(8000, 0.5f), antiphase;
  for (size_t i = 0; i < tone.size(); ++i) tone[i] = 0.3f * std::sin(0.05f * static_cast<float>(i)) * (1.0f + 0.5f * std::sin(0.001f * static_cast<float>(i)));
  for (float v : tone) antiphase.insert(antiphase.end(), {v, -v});
  crnn::test::write_audio(dir.file("tone.wav"), tone, 16000, 1);
  crnn::test::write_audio(dir.file("silence.wav"), silence, 16000, 1);
  crnn::test::write_audio(dir.file("dc.wav"), dc, 16000, 1);
  crnn::test::write_audio(dir.file("anti.wav"), antiphase, 16000, 2);
  std::ofstream(dir.file("m.csv")) << "id,path,speaker\ntone,tone.wav,s\nsilence,silence.wav,s\ndc,dc.wav,s\n"
                                       "anti,anti.wav,s\n";
  for (const std::string kind : {"fbank", "egemaps"}) {
    CliRun r = run_crnn("--threads 1 features '" + dir.file("m.csv") + "' -o '" + dir.file(kind + ".h5") + "' --kind " + kind);
    EXPECT_EQ(r.status, 0) << r.out;
    EXPECT_TRUE(crnn::test::contains(r.out, "4 extracted")) << r.out;
    EXPECT_TRUE(crnn::test::contains(r.out, "features: note: 3 file(s) hold no signal: every frame identical")) << kind << r.out;
    for (const char* id : {"silence", "dc", "anti"})
      EXPECT_TRUE(crnn::test::contains(r.out, std::string(id) + " (" + dir.file(std::string(id) + ".wav") + ")")) << kind << r.out;
    EXPECT_FALSE(crnn::test::contains(r.out, "tone (")) << kind << r.out;
  }
}

// Every failure is printed as it happens; the closing summary repeats the
// first five and counts the rest (30 missing files gave 60 lines).
TEST(FeaturesCli, ManyFailuresAreListedOnceAndSummarized) {
  crnn::test::TempDir dir;
  std::ofstream m(dir.file("m.csv"));
  m << "id,path,speaker\n";
  for (int i = 0; i < 8; ++i) m << "u" << i << ",missing" << i << ".wav,s\n";
  m.close();
  CliRun r = run_crnn("--threads 1 features '" + dir.file("m.csv") + "' -o '" + dir.file("f.h5") + "'");
  EXPECT_EQ(r.status, 3) << r.out;
  auto count = [&](const std::string& part) {
    size_t n = 0;
    for (size_t at = 0; (at = r.out.find(part, at)) != std::string::npos; at += part.size()) ++n;
    return n;
  };
  EXPECT_EQ(count("features: failed: "), 8u) << r.out;
  EXPECT_EQ(count("features: FAILED: "), 5u) << r.out;
  EXPECT_EQ(count("features: ... and 3 more failed (each listed above)"), 1u) << r.out;
  EXPECT_TRUE(crnn::test::contains(r.out, "features: note: 8 of the 8 failed file(s) do not exist; a relative path in "
                                          "a manifest is taken from the manifest's folder"))
      << r.out;
}

// The usual mistake: paths written relative to the working directory, in a
// manifest kept in another folder. The note says which folder they are taken from.
TEST(FeaturesCli, MissingFilesThatExistFromTheWorkingDirectoryAreExplained) {
  crnn::test::TempDir dir;
  std::filesystem::create_directories(dir.path() / "meta");
  std::filesystem::create_directories(dir.path() / "wav");
  crnn::test::write_audio(dir.file("wav/a.wav"), crnn::test::sine(300, 16000, 0.5), 16000, 1);
  std::ofstream(dir.file("meta/m.csv")) << "path,speaker,label\nwav/a.wav,s,x\n";
  CliRun r = crnn::test::run_command("cd '" + dir.path().string() + "' && '" CRNN_BINARY "' features meta/m.csv -o f.h5");
  EXPECT_EQ(r.status, 3) << r.out;
  EXPECT_TRUE(crnn::test::contains(r.out, "not the working directory — 'wav/a.wav' exists from the working directory: "
                                          "write the paths relative to " + dir.file("meta") + ", or absolute"))
      << r.out;
  // Given as ./meta/../meta/m.csv: the same folder, the same note.
  r = crnn::test::run_command("cd '" + dir.path().string() + "' && '" CRNN_BINARY "' features ./meta/../meta/m.csv -o f.h5");
  EXPECT_TRUE(crnn::test::contains(r.out, "'wav/a.wav' exists from the working directory: write the paths relative to " +
                                          dir.file("meta") + ", or absolute"))
      << r.out;
}

// Resuming into a store whose matrix for an id came from another audio file
// would keep the old features under the id: refused. The same file names in
// another folder (a moved corpus) resume.
TEST(FeaturesCli, RefusesToResumeWhenAnIdNamesAnotherFile) {
  Corpus c;
  ASSERT_EQ(run_crnn("features '" + c.manifest + "' -o '" + c.h5 + "' --keep-going").status, 0);
  EXPECT_EQ(crnn::data::FeatureStore::open(c.h5, crnn::data::FeatureStore::Mode::Read).source("b"),
            c.dir.file("b.wav"));
  const std::string swapped = c.dir.file("swapped.csv");
  std::ofstream(swapped) << "id,speaker,path,emotion\na,s1,b.wav,happy\nb,s1,a.wav,sad\n";
  CliRun r = run_crnn("features '" + swapped + "' -o '" + c.h5 + "'");
  EXPECT_EQ(r.status, 2) << r.out;
  EXPECT_NE(r.out.find("holds features of other audio files for 2 id(s) of " + swapped), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("'a': stored from " + c.dir.file("a.wav") + ", the manifest now names " + c.dir.file("b.wav")),
            std::string::npos)
      << r.out;
  // The corpus moved: same file names under another folder.
  std::filesystem::create_directories(c.dir.path() / "moved");
  std::filesystem::copy_file(c.dir.file("a.wav"), c.dir.file("moved/a.wav"));
  const std::string moved = c.dir.file("moved.csv");
  std::ofstream(moved) << "id,speaker,path,emotion\na,s1,moved/a.wav,happy\n";
  r = run_crnn("features '" + moved + "' -o '" + c.h5 + "'");
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("1 already present"), std::string::npos) << r.out;
}

// An audio file rewritten in place (same name; here even the same size) has
// its features computed again on the next run, and only it; a copy of the
// corpus with new file times but the same bytes is not recomputed.
TEST(FeaturesCli, RecomputesRowsWhoseAudioChangedSinceAndKeepsCopies) {
  Corpus c;
  const std::string args = "features '" + c.manifest + "' -o '" + c.h5 + "' --keep-going";
  ASSERT_EQ(run_crnn(args).status, 0);
  const auto before = crnn::data::FeatureStore::open(c.h5, crnn::data::FeatureStore::Mode::Read).read("b");
  // Every file an hour newer: a copy that did not keep the times.
  for (const char* f : {"a.wav", "b.wav", "sub/c.flac"})
    std::filesystem::last_write_time(c.dir.file(f), std::filesystem::file_time_type::clock::now() +
                                                        std::chrono::hours(1));
  CliRun r = run_crnn(args);
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("0 extracted, 3 already present"), std::string::npos) << r.out;
  // b.wav re-recorded: another tone, the same length and so the same size.
  const auto size = std::filesystem::file_size(c.dir.file("b.wav"));
  crnn::test::write_audio(c.dir.file("b.wav"), crnn::test::sine(1700, 16000, 0.25), 16000, 1);
  ASSERT_EQ(std::filesystem::file_size(c.dir.file("b.wav")), size);
  r = run_crnn(args);
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("features: 'b' (" + c.dir.file("b.wav") + ") changed since its features were computed: "
                       "recomputing"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("1 extracted (1 of them again: their audio changed), 2 already present"), std::string::npos)
      << r.out;
  const auto after = crnn::data::FeatureStore::open(c.h5, crnn::data::FeatureStore::Mode::Read).read("b");
  const auto expected = crnn::audio::FeatureExtractor::fbank({}).of_file(c.dir.file("b.wav"));
  EXPECT_FALSE(torch::allclose(after, before));
  EXPECT_TRUE(torch::allclose(after, expected, 1e-5, 1e-5));

  // In a copy of the corpus (manifest, store and audio), the changed file named
  // is the copy's, the one read, with the path its features came from.
  crnn::test::TempDir copy;
  for (const char* f : {"manifest.csv", "feats.h5", "b.wav", "sub/c.flac", "bad.wav", "short.wav"}) {
    std::filesystem::create_directories((copy.path() / f).parent_path());
    std::filesystem::copy_file(c.dir.file(f), copy.file(f));
  }
  crnn::test::write_audio(copy.file("b.wav"), crnn::test::sine(2300, 16000, 0.25), 16000, 1);
  r = run_crnn("features '" + copy.file("manifest.csv") + "' -o '" + copy.file("feats.h5") + "' --keep-going");
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("features: 'b' (" + copy.file("b.wav") + ") changed since its features were computed (from " +
                       c.dir.file("b.wav") + "): recomputing"),
            std::string::npos)
      << r.out;
}

// More mel bins than the FFT can fill: refused before any file is read, with
// no output file left behind.
TEST(FeaturesCli, TooManyMelBinsIsAUsageError) {
  Corpus c;
  CliRun r = run_crnn("features '" + c.manifest + "' -o '" + c.h5 + "' --num-bins 256");
  EXPECT_EQ(r.status, 2) << r.out;
  EXPECT_NE(r.out.find("crnn features: fbank options: num_bins = 256 is too many for a 512-point FFT at 16000 Hz"),
            std::string::npos)
      << r.out;
  EXPECT_FALSE(std::filesystem::exists(c.h5));
}

TEST(FeaturesCli, BadManifest) {
  crnn::test::TempDir dir;
  const std::string m = dir.file("m.csv");
  std::ofstream(m) << "name,file\nx,y.wav\n";
  CliRun r = run_crnn("features '" + m + "' -o '" + dir.file("f.h5") + "'");
  EXPECT_EQ(r.status, 2) << r.out;
  EXPECT_NE(r.out.find("missing required columns 'path', 'speaker' (header has: name, file); if 'file' holds "
                       "the audio files, name it 'path'"),
            std::string::npos)
      << r.out;
}

namespace {

/// `n` one-second tones (one speaker each pair) and a manifest for them.
std::string tone_corpus(const crnn::test::TempDir& dir, int n) {
  const std::string manifest = dir.file("tones.csv");
  std::ofstream m(manifest);
  m << "id,speaker,path,label\n";
  for (int i = 0; i < n; ++i) {
    const std::string name = "tone" + std::to_string(i) + ".wav";
    crnn::test::write_audio(dir.file(name), crnn::test::sine(200.0f + 37.0f * i, 16000, 1.0), 16000, 1);
    m << "t" << i << ",s" << i / 2 << "," << name << "," << (i % 2 ? "hi" : "lo") << "\n";
  }
  return manifest;
}

/// Every row of `a` equals the same row of `b`, and both hold the same ids.
::testing::AssertionResult same_rows(const std::string& a, const std::string& b) {
  using crnn::data::FeatureStore;
  auto x = FeatureStore::open(a, FeatureStore::Mode::Read), y = FeatureStore::open(b, FeatureStore::Mode::Read);
  auto ix = x.ids(), iy = y.ids();
  std::sort(ix.begin(), ix.end());
  std::sort(iy.begin(), iy.end());
  if (ix != iy) return ::testing::AssertionFailure() << ix.size() << " ids vs " << iy.size();
  for (const auto& id : ix)
    if (!torch::equal(x.read(id), y.read(id))) return ::testing::AssertionFailure() << "row " << id << " differs";
  return ::testing::AssertionSuccess();
}

}  // namespace

// A disk that fills up while a row is flushed (the completion mark reaches the
// file, half the frames do not; util/file_io.h's CRNN_FAULT_WRITE seam): the run
// fails with a message, and the resume recomputes that row instead of counting it.
TEST(FeaturesCli, DiskFullWhileWritingARowIsRecomputedOnResume) {
  crnn::test::TempDir dir;
  const std::string manifest = tone_corpus(dir, 6);
  ASSERT_EQ(run_crnn("--threads 1 features '" + manifest + "' -o '" + dir.file("ref.h5") + "'").status, 0);
  CliRun r = crnn::test::run_command("CRNN_FAULT_WRITE=f.h5:3 '" + std::string(CRNN_BINARY) + "' --threads 1 features '" +
                                     manifest + "' -o '" + dir.file("f.h5") + "'");
  EXPECT_NE(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("flush failed (disk full?)"), std::string::npos) << r.out;
  r = run_crnn("--threads 1 features '" + manifest + "' -o '" + dir.file("f.h5") + "'");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("is damaged in " + dir.file("f.h5") + " (a failed checksum or an unreadable header: a failed write, or damage since): recomputing"),
            std::string::npos)
      << r.out;
  EXPECT_TRUE(same_rows(dir.file("f.h5"), dir.file("ref.h5")));
}

// A real write failure, not the seam: a file size limit (ulimit -f, SIGXFSZ
// ignored so write() fails with EFBIG as on a full disk) stops the store half
// way. crnn exits with its error (status 2), not with a segfault in libhdf5's
// shutdown at exit, which closed the failed file a second time; the resume
// without the limit gives the rows of an uninterrupted run.
TEST(FeaturesCli, AFileSizeLimitReachedMidwayIsAnErrorNotACrashAndResumes) {
  crnn::test::TempDir dir;
  const std::string manifest = tone_corpus(dir, 24);
  ASSERT_EQ(run_crnn("--threads 1 features '" + manifest + "' -o '" + dir.file("ref.h5") + "'").status, 0);
  const auto half_blocks = std::filesystem::file_size(dir.file("ref.h5")) / 512 / 2;  // sh counts 512-byte blocks
  CliRun r = crnn::test::run_command("trap '' XFSZ; ulimit -f " + std::to_string(half_blocks) + "; exec '" +
                                     std::string(CRNN_BINARY) + "' --threads 1 features '" + manifest + "' -o '" +
                                     dir.file("f.h5") + "'");
  EXPECT_EQ(r.status, 2) << r.out;  // -1: killed by a signal
  EXPECT_TRUE(crnn::test::contains(r.out, dir.file("f.h5") + ": ")) << r.out;
  r = run_crnn("--threads 1 features '" + manifest + "' -o '" + dir.file("f.h5") + "'");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_TRUE(crnn::test::contains(r.out, "bytes before its recorded length (a write cut short")) << r.out;
  EXPECT_TRUE(same_rows(dir.file("f.h5"), dir.file("ref.h5")));
}

// kill -9 of `crnn features` at random instants: every resume either completes
// with exactly the rows of an uninterrupted run, or stops with a message naming
// the file — never a crash.
TEST(FeaturesCli, KilledAtRandomInstantsEveryResumeGivesTheUninterruptedRows) {
  crnn::test::TempDir dir;
  const std::string manifest = tone_corpus(dir, 40);
  CliRun ref = run_crnn("--threads 1 features '" + manifest + "' -o '" + dir.file("ref.h5") + "'");
  ASSERT_EQ(ref.status, 0) << ref.out;
  // The extraction's own wall time, as the command reports it: the kills land
  // within it, counted from when the store appears (starting the process,
  // mostly loading LibTorch, takes far longer than extracting 40 short files).
  const auto at = ref.out.find(" s wall");
  ASSERT_NE(at, std::string::npos) << ref.out;
  const double seconds = 1.5 * std::stod(ref.out.substr(ref.out.rfind(' ', at - 1) + 1));
  const std::string out = dir.file("f.h5");
  std::mt19937 rng(11);
  int completed = 0, refused = 0;
  for (int trial = 0; trial < 10; ++trial) {
    const pid_t pid = fork();
    if (pid == 0) {
      const int null = open("/dev/null", O_WRONLY);
      dup2(null, 1);
      dup2(null, 2);
      execl(CRNN_BINARY, CRNN_BINARY, "--threads", "1", "features", manifest.c_str(), "-o", out.c_str(),
            static_cast<char*>(nullptr));
      _exit(127);
    }
    bool exited = false;  // on its own, before the store appeared (at most 10 s)
    for (int waited = 0; waited < 20000 && !std::filesystem::exists(out); ++waited) {
      if ((exited = waitpid(pid, nullptr, WNOHANG) == pid)) break;
      std::this_thread::sleep_for(std::chrono::microseconds(500));
    }
    if (!exited) {
      std::this_thread::sleep_for(std::chrono::duration<double>(std::uniform_real_distribution<double>(0, seconds)(rng)));
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
    // Resume a copy to the end; the next trial kills a resume of the original.
    if (!std::filesystem::exists(out)) continue;
    const std::string copy = dir.file("copy.h5");
    std::filesystem::copy_file(out, copy, std::filesystem::copy_options::overwrite_existing);
    CliRun r = run_crnn("--threads 1 features '" + manifest + "' -o '" + copy + "'");
    ASSERT_TRUE(r.status == 0 || r.status == 2) << "trial " << trial << ": status " << r.status << "\n" << r.out;
    if (r.status == 2) {
      ++refused;
      EXPECT_NE(r.out.find(copy), std::string::npos) << r.out;
      continue;
    }
    ++completed;
    EXPECT_TRUE(same_rows(copy, dir.file("ref.h5"))) << "trial " << trial;
  }
  EXPECT_GT(completed, 0) << refused << " refused";
}

// `train` and `eval` check the store against the manifest as `features` does:
// rows computed from other audio files than the manifest names are refused.
TEST(FeaturesCli, TrainRefusesAStoreOfOtherAudioFiles) {
  crnn::test::TempDir dir;
  const std::string manifest = tone_corpus(dir, 8);
  ASSERT_EQ(run_crnn("--threads 1 features '" + manifest + "' -o '" + dir.file("f.h5") + "'").status, 0);
  // Same ids, the files swapped.
  std::string text;
  {
    std::ifstream in(manifest);
    text.assign(std::istreambuf_iterator<char>(in), {});
  }
  const auto swap_at = text.find("tone0.wav");
  text.replace(text.find("tone1.wav"), 9, "tone0.wav");
  text.replace(swap_at, 9, "tone1.wav");
  std::ofstream(dir.file("swapped.csv")) << text;
  std::ofstream(dir.file("c.toml")) << "[data]\nmanifest = \"" << dir.file("swapped.csv") << "\"\nfeatures = \""
                                    << dir.file("f.h5") << "\"\ntask = \"label\"\n[train]\nmax_epochs = 1\n";
  CliRun r = run_crnn("--threads 1 train '" + dir.file("c.toml") + "' -o '" + dir.file("run") + "'");
  EXPECT_EQ(r.status, 2) << r.out;
  EXPECT_NE(r.out.find(dir.file("f.h5") + ": holds features of other audio files than the manifest " +
                       dir.file("swapped.csv") + " names for 2 id(s)"),
            std::string::npos)
      << r.out;
}
