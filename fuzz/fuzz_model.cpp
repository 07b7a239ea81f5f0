// libFuzzer target: the model file loader (crnn::train::load_model: a LibTorch
// zip archive with the config, labels, statistics, weights and a checksum) on
// arbitrary bytes. Seeds: fuzz/corpus/fuzz_model/ (tiny models written by
// save_checkpoint, fuzz/seeds/make_seeds.cpp). DataError / c10::Error for a
// damaged file are expected; crashes and sanitizer reports are findings.
#include <cstdint>
#include <exception>

#include "crnn/train/checkpoint.h"
#include "fuzz_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = crnn::fuzz::input_path(".pt");
  crnn::fuzz::write_input(path, data, size);
  try {
    auto loaded = crnn::train::load_model(path);
    // What loaded is described by: labels index the model's outputs.
    if (loaded.bundle.labels.empty()) std::abort();
  } catch (const std::exception& e) {
    crnn::fuzz::expected_error(e);
  }
  return 0;
}
