#pragma once
// Finding the audio behind a reference file of ../shared/reference (Kaldi
// fbank, openSMILE eGeMAPS): reference files are named "<corpus>__<name>.*".
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

namespace crnn::test {

// speechocean762 keeps utterance id -> relative path in {train,test}/wav.scp.
inline std::map<std::string, std::string> speechocean_paths(const std::filesystem::path& root) {
  std::map<std::string, std::string> paths;
  for (const char* split : {"train", "test"}) {
    std::ifstream in(root / split / "wav.scp");
    std::string id, rel;
    while (in >> id >> rel) paths[id] = (root / rel).string();
  }
  return paths;
}

// "ravdess__03-01-01-01-01-01-01" -> corpora/ravdess/Actor_01/03-01-....flac
// (the actor is the last field of the RAVDESS name); speechocean762 names via
// `so762` (speechocean_paths). "" when the stem names neither.
inline std::string audio_for(const std::filesystem::path& shared, const std::string& stem,
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

}  // namespace crnn::test
