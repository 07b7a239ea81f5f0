// libFuzzer target: crnn::audio::read_audio on arbitrary bytes (WAV, FLAC or
// anything else libsndfile recognises). Seeds: fuzz/corpus/fuzz_read_audio/.
// A clean AudioError (or any std::exception) is the expected answer to a
// damaged file; a crash, sanitizer report, hang or abort is a finding.
#include <cstdint>
#include <exception>

#include "crnn/audio/read_audio.h"
#include "fuzz_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = crnn::fuzz::input_path(".audio");
  crnn::fuzz::write_input(path, data, size);
  try {
    (void)crnn::audio::audio_info(path);
    // 16 kHz (the models' rate) resamples every other rate through libsoxr.
    torch::Tensor wave = crnn::audio::read_audio(path, 16000);
    if (wave.dim() != 1) std::abort();  // the documented shape, whatever the input
  } catch (const std::exception& e) {
    crnn::fuzz::expected_error(e);
  }
  return 0;
}
