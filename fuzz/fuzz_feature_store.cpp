// libFuzzer target: the feature store reader (crnn::data::FeatureStore, HDF5)
// on arbitrary bytes: open for reading, list the ids, read every row and the
// attributes. Seeds: fuzz/corpus/fuzz_feature_store/ (small stores written by
// FeatureStore::write, fuzz/seeds/make_seeds.cpp). FeatureStoreError for a
// damaged file is expected -- including the one open() gives when its probe
// child crashes in libhdf5; crashes of this process and sanitizer reports are
// findings.
#include <pthread.h>
#include <sanitizer/common_interface_defs.h>

#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <exception>

#include "crnn/data/feature_store.h"
#include "fuzz_file.h"

namespace {

// In FeatureStore::open's probe child (the only fork in this process): a
// crash there is the probe doing its job, not a finding. Without this the
// child inherits libFuzzer's crash handlers, and every libhdf5 crash in a
// child costs a sanitizer report, a stack symbolization and a crash-* file
// that is not one (the parent answers with FeatureStoreError, as it should).
void quiet_probe_child() {
  __sanitizer_set_death_callback(nullptr);
  for (int sig : {SIGSEGV, SIGBUS, SIGABRT, SIGILL, SIGFPE}) signal(sig, SIG_DFL);
}

}  // namespace

// Inputs that make libhdf5 loop cost the probe's stall timer each; 2 s instead
// of 20 keeps the run at executions, not waiting (the caller's value wins).
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  setenv("CRNN_PROBE_STALL_SECONDS", "2", /*overwrite=*/0);
  pthread_atfork(nullptr, nullptr, quiet_probe_child);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = crnn::fuzz::input_path(".h5");
  crnn::fuzz::write_input(path, data, size);
  try {
    auto store = crnn::data::FeatureStore::open(path, crnn::data::FeatureStore::Mode::Read);
    if (store.has_attributes()) (void)store.attributes();
    for (const auto& id : store.ids()) {
      try {
        (void)store.source(id);
        (void)store.source_stamp(id);
        torch::Tensor x = store.read(id);
        if (x.dim() != 2) std::abort();  // read() promises frames x features
      } catch (const std::exception& e) {
        crnn::fuzz::expected_error(e);
      }
    }
  } catch (const std::exception& e) {
    crnn::fuzz::expected_error(e);
  }
  return 0;
}
