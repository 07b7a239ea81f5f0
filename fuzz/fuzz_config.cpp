// libFuzzer target: the run config reader (crnn::train::RunConfig::parse,
// toml++ underneath) on arbitrary text. Seeds: fuzz/corpus/fuzz_config/ (the
// committed configs). ConfigError for invalid input is expected; crashes and
// sanitizer reports are findings.
#include <cstdint>
#include <exception>
#include <string>

#include "crnn/train/config.h"
#include "fuzz_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    auto cfg = crnn::train::RunConfig::parse(text, {}, "<fuzz>");
    // A valid config is written back as TOML (config.toml of every run) and
    // turned into model options (every training run); both must hold up, and
    // the written text must read back as the same config.
    const std::string toml = cfg.to_toml();
    (void)cfg.identity_toml();
    (void)cfg.model_options(3, 8);
    auto again = crnn::train::RunConfig::parse(toml, {}, "<fuzz round trip>");
    if (again.to_toml() != toml) std::abort();
  } catch (const std::exception& e) {
    crnn::fuzz::expected_error(e);
  }
  return 0;
}
