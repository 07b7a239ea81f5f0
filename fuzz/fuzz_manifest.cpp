// libFuzzer target: the manifest CSV parser (crnn::data::csv::parse and
// Manifest::parse) on arbitrary text. Seeds: fuzz/corpus/fuzz_manifest/.
// DataError for malformed input is expected; crashes and sanitizer reports
// are findings.
#include <cstdint>
#include <exception>
#include <string>

#include "crnn/data/manifest.h"
#include "fuzz_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    (void)crnn::data::csv::parse(text, "<fuzz>");
  } catch (const std::exception& e) {
    crnn::fuzz::expected_error(e);
  }
  try {
    // No file is opened: parse only resolves relative paths against base_dir.
    auto m = crnn::data::Manifest::parse(text, "/corpus", "<fuzz>");
    // What a parsed manifest is used for next: every accessor must hold up.
    (void)m.speakers();
    (void)m.has_split();
    for (const auto& task : m.tasks()) (void)crnn::data::LabelSet::from_manifest(m, task);
    for (const auto& split : crnn::data::split_names()) (void)m.subset(split);
    // Writing it out and parsing it again must give the same manifest.
    const std::string again = m.to_csv("/corpus");
    auto m2 = crnn::data::Manifest::parse(again, "/corpus", "<fuzz round trip>");
    if (m2.size() != m.size() || m2.to_csv("/corpus") != again) std::abort();
  } catch (const std::exception& e) {
    crnn::fuzz::expected_error(e);
  }
  return 0;
}
