// Every input a fuzz target (fuzz/, scripts/fuzz) crashed on is kept in
// tests/fixtures/fuzz-regressions/<reader>/ and must now give a clean error
// naming the file. These run in the ordinary build; scripts/fuzz also replays
// them through the sanitizer-built targets.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "crnn/data/error.h"
#include "crnn/data/feature_store.h"
#include "crnn/train/checkpoint.h"

namespace crnn {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> regression_inputs(const std::string& reader) {
  std::vector<std::string> files;
  const fs::path dir = fs::path(CRNN_FIXTURE_DIR) / "fuzz-regressions" / reader;
  for (const auto& e : fs::directory_iterator(dir)) files.push_back(e.path().string());
  return files;
}

// A one-byte change in data.pkl (an opcode turned into GLOBAL) sent LibTorch's
// TorchScript type parser into a SIGSEGV; the archive's CRC-32s now catch it first.
TEST(FuzzRegressions, DamagedModelFilesAreErrorsNamingTheFile) {
  const auto files = regression_inputs("model");
  ASSERT_FALSE(files.empty());
  for (const auto& f : files) {
    try {
      (void)train::load_model(f);
      ADD_FAILURE() << f << " loaded";
    } catch (const data::DataError& e) {
      EXPECT_NE(std::string(e.what()).find(f), std::string::npos) << e.what();
    }
  }
}

// A store whose row's `source` string has a damaged length in HDF5's global
// heap: libhdf5 allocated 4 GB for it and copied past its buffer. open()'s
// probe child now reads the sources, so it is an error before any read, or
// the row is set aside (the child died inside that row's checks) and the
// others read.
TEST(FuzzRegressions, DamagedFeatureStoresAreErrorsNamingTheFile) {
  // The looping store would wait out the probe's 20 s stall timer.
  setenv("CRNN_PROBE_STALL_SECONDS", "2", /*overwrite=*/1);
  const auto files = regression_inputs("feature_store");
  ASSERT_FALSE(files.empty());
  for (const auto& f : files) {
    try {
      auto store = data::FeatureStore::open(f, data::FeatureStore::Mode::Read);
      if (store.has_attributes()) (void)store.attributes();
      for (const auto& id : store.ids()) {
        (void)store.source(id);
        (void)store.read(id);
      }
      if (store.set_aside().empty()) ADD_FAILURE() << f << " read without an error or a row set aside";
    } catch (const data::FeatureStoreError& e) {
      EXPECT_NE(std::string(e.what()).find(f), std::string::npos) << e.what();
      if (fs::path(f).filename() == "global-heap-loop.h5")
        EXPECT_NE(std::string(e.what()).find("made libhdf5 loop: no progress in 2 s"), std::string::npos) << e.what();
      // A row whose datatype claims 4294967291-byte elements: libhdf5 allocated
      // a 4 GB conversion buffer inside H5Dread.
      if (fs::path(f).filename() == "datatype-size-4gb.h5")
        EXPECT_NE(std::string(e.what()).find("is not stored as 32-bit floats"), std::string::npos) << e.what();
      // A row whose layout turned compact with no bytes behind it: libhdf5's
      // H5Dread copied past the buffer (SIGSEGV in the reading process).
      if (fs::path(f).filename() == "compact-layout-segv.h5")
        EXPECT_NE(std::string(e.what()).find("is not stored as one contiguous block"), std::string::npos) << e.what();
    }
  }
  unsetenv("CRNN_PROBE_STALL_SECONDS");
}

// A probe child that libhdf5 keeps looping dies with its parent: killed while
// it waits for the child (kill -9 of `crnn train`, an interrupted fuzzer), the
// parent takes its stall timer with it, and the orphan would spin forever.
TEST(FuzzRegressions, ALoopingProbeChildDiesWithItsParent) {
  const std::string looping = (fs::path(CRNN_FIXTURE_DIR) / "fuzz-regressions/feature_store/global-heap-loop.h5").string();
  const pid_t parent = fork();
  ASSERT_GE(parent, 0);
  if (parent == 0) {
    setenv("CRNN_PROBE_STALL_SECONDS", "20", 1);
    try {
      (void)data::FeatureStore::open(looping, data::FeatureStore::Mode::Read);
    } catch (...) {
    }
    _exit(0);
  }
  // The probe child, once the parent has started it.
  const std::string children = "/proc/" + std::to_string(parent) + "/task/" + std::to_string(parent) + "/children";
  pid_t child = 0;
  for (int i = 0; i < 500 && child == 0; ++i) {
    std::ifstream(children) >> child;
    if (child == 0) usleep(10000);
  }
  if (child == 0) {
    kill(parent, SIGKILL);
    waitpid(parent, nullptr, 0);
    GTEST_SKIP() << children << ": no probe child seen (no /proc children list?)";
  }
  usleep(200000);  // inside libhdf5's loop by now
  kill(parent, SIGKILL);
  waitpid(parent, nullptr, 0);
  // Gone, or a zombie (dead; reaping it is init's business).
  auto alive = [&] {
    std::ifstream stat("/proc/" + std::to_string(child) + "/stat");
    std::string pid, comm, state;
    if (!(stat >> pid >> comm >> state)) return false;
    return state != "Z" && state != "X";
  };
  bool died = false;
  for (int i = 0; i < 500 && !died; ++i) {
    died = !alive();
    if (!died) usleep(10000);
  }
  if (!died) kill(child, SIGKILL);
  EXPECT_TRUE(died) << "probe child " << child << " outlived its parent";
}

}  // namespace
}  // namespace crnn
