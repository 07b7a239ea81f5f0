#include "crnn/data/recipes.h"

#include <fmt/core.h>
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <map>
#include <sstream>

#include "crnn/audio/audio_files.h"
#include "crnn/util/text.h"

namespace fs = std::filesystem;

namespace crnn::data {
namespace {

const std::vector<TaskSpec> kRavdessTasks{
    {"emotion8", {"neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"}},
    {"emotion2", {"non-negative", "negative"}},
    {"gender", {"female", "male"}},
};
const std::vector<TaskSpec> kSpeechoceanTasks{
    {"gender3", {"child", "female", "male"}},
    {"age3", {"child", "youth", "adult"}},
};

std::vector<std::string> task_names(const std::vector<TaskSpec>& specs) {
  std::vector<std::string> out;
  for (const auto& s : specs) out.push_back(s.name);
  return out;
}

void require_dir(const std::string& dir, const std::string& recipe) {
  if (!fs::exists(dir)) throw DataError(fmt::format("{}: corpus directory not found: {}", recipe, dir));
  if (!fs::is_directory(dir)) throw DataError(fmt::format("{}: not a directory: {}", recipe, dir));
}

// Parses "MM-VV-EE-II-SS-RR-AA" into 7 numbers; false if it does not match.
bool parse_ravdess_stem(const std::string& stem, int (&f)[7]) {
  if (stem.size() != 20) return false;
  for (int k = 0; k < 7; ++k) {
    const size_t p = static_cast<size_t>(3 * k);
    if (!std::isdigit(static_cast<unsigned char>(stem[p])) ||
        !std::isdigit(static_cast<unsigned char>(stem[p + 1])))
      return false;
    if (k < 6 && stem[p + 2] != '-') return false;
    f[k] = (stem[p] - '0') * 10 + (stem[p + 1] - '0');
  }
  return true;
}

// Reads a Kaldi "key<whitespace>value" list into a map (value = rest of line, trimmed).
std::map<std::string, std::string> read_kaldi_map(const fs::path& file) {
  if (!fs::is_regular_file(file))
    throw DataError(fmt::format("speechocean762: missing list file {}", file.string()));
  std::istringstream in(read_text_file(file.string()));
  std::map<std::string, std::string> out;
  std::string line;
  size_t lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    size_t b = line.find_first_not_of(" \t");
    if (b == std::string::npos) continue;
    size_t e = line.find_first_of(" \t", b);
    if (e == std::string::npos)
      throw DataError(fmt::format("{}:{}: expected 'key value', found '{}'", file.string(), lineno, printable(line)));
    std::string key = line.substr(b, e - b);
    std::string value = trim(std::string_view(line).substr(e));
    if (value.empty())
      throw DataError(fmt::format("{}:{}: no value for '{}'", file.string(), lineno, key));
    if (!out.emplace(key, std::move(value)).second)
      throw DataError(fmt::format("{}:{}: duplicate key '{}'", file.string(), lineno, key));
  }
  return out;
}

void skip(PrepareReport* r, std::string msg) {
  if (r) r->skipped.push_back(std::move(msg));
}

}  // namespace

std::vector<std::string> recipe_names() { return {"ravdess", "speechocean762"}; }

const std::vector<TaskSpec>& recipe_tasks(const std::string& recipe) {
  if (recipe == "ravdess") return kRavdessTasks;
  if (recipe == "speechocean762") return kSpeechoceanTasks;
  throw DataError(fmt::format("unknown recipe '{}' (known: {})", recipe, fmt::join(recipe_names(), ", ")));
}

Manifest prepare_ravdess(const std::string& dir, PrepareReport* report) {
  require_dir(dir, "ravdess");
  const auto& emotions = kRavdessTasks[0].classes;  // index = code - 1
  // Sorted traversal: directory iteration order is file-system dependent,
  // and the manifest's row order should not be.
  std::vector<fs::path> actor_dirs;
  std::vector<std::string> ignored;  // folders (and Actor_* non-folders) that hold no utterances
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    const bool actor_name = name.rfind("Actor_", 0) == 0;
    if (e.is_directory() && actor_name)
      actor_dirs.push_back(e.path());
    else if (e.is_directory())
      ignored.push_back(fmt::format("{}: not an Actor_NN folder, not searched", e.path().string()));
    else if (actor_name)
      ignored.push_back(fmt::format("{}: not a folder", e.path().string()));
  }
  std::sort(actor_dirs.begin(), actor_dirs.end());
  std::sort(ignored.begin(), ignored.end());
  for (auto& i : ignored) skip(report, std::move(i));
  if (actor_dirs.empty())
    throw DataError(fmt::format("ravdess: no Actor_NN folders in {} (is this the speech part of "
                                "RAVDESS, audio_speech_actors_01-24?)",
                                dir));

  Manifest m(task_names(kRavdessTasks));
  for (const auto& adir : actor_dirs) {
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(adir)) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    const std::string folder = adir.filename().string();
    for (const auto& f : files) {
      if (!fs::is_regular_file(f)) {  // follows links: a broken one is no file either
        skip(report, fmt::format("{}: not a regular file ({})", f.string(),
                                 fs::is_directory(f) ? "a folder" : fs::is_symlink(f) ? "a broken link" : "special file"));
        continue;
      }
      if (!audio::has_audio_extension(f)) {
        skip(report, fmt::format("{}: not an audio file extension", f.string()));
        continue;
      }
      int fld[7];
      const std::string stem = f.stem().string();
      if (!parse_ravdess_stem(stem, fld)) {
        skip(report, fmt::format("{}: name does not follow MM-VV-EE-II-SS-RR-AA", f.string()));
        continue;
      }
      if (fld[0] != 3 || fld[1] != 1) {
        skip(report, fmt::format("{}: not audio-only speech (modality {:02d}, channel {:02d})",
                                 f.string(), fld[0], fld[1]));
        continue;
      }
      if (fld[2] < 1 || fld[2] > 8 || fld[6] < 1) {
        skip(report, fmt::format("{}: emotion code {:02d} or actor {:02d} out of range", f.string(),
                                 fld[2], fld[6]));
        continue;
      }
      const std::string actor = fmt::format("Actor_{:02d}", fld[6]);
      if (actor != folder) {
        skip(report, fmt::format("{}: actor {} in the name disagrees with folder {}", f.string(),
                                 actor, folder));
        continue;
      }
      Utterance u;
      u.id = stem;
      u.path = fs::absolute(f).lexically_normal().string();
      u.speaker = actor;
      const std::string& emo = emotions[static_cast<size_t>(fld[2] - 1)];
      u.labels["emotion8"] = emo;
      const bool negative = emo == "angry" || emo == "fearful" || emo == "disgust" || emo == "sad";
      u.labels["emotion2"] = negative ? "negative" : "non-negative";
      u.labels["gender"] = fld[6] % 2 == 1 ? "male" : "female";
      if (m.contains(u.id)) {
        skip(report, fmt::format("{}: duplicate of {}", f.string(), m.find(u.id).path));
        continue;
      }
      m.add(std::move(u));
      if (report) ++report->found;
    }
  }
  return m;
}

Manifest prepare_speechocean762(const std::string& dir, PrepareReport* report) {
  require_dir(dir, "speechocean762");
  Manifest m(task_names(kSpeechoceanTasks));
  const fs::path root = fs::absolute(dir).lexically_normal();
  for (const std::string split : {"train", "test"}) {
    const fs::path sd = root / split;
    if (!fs::is_directory(sd))
      throw DataError(fmt::format("speechocean762: {} {}", fs::exists(sd) ? "not a folder (the lists' folder):" : "missing list folder",
                                  sd.string()));
    // Read every list first so a missing one is reported before any work.
    auto wav = read_kaldi_map(sd / "wav.scp");
    auto utt2spk = read_kaldi_map(sd / "utt2spk");
    auto spk2age = read_kaldi_map(sd / "spk2age");
    auto spk2gender = read_kaldi_map(sd / "spk2gender");
    if (wav.empty()) throw DataError(fmt::format("speechocean762: {}: no utterances (empty list)", (sd / "wav.scp").string()));
    for (const auto& [utt, where] : wav) {  // std::map: sorted by utterance id
      const std::string where_s = where;
      if (!where_s.empty() && where_s.back() == '|') {
        skip(report, fmt::format("{}/wav.scp: {}: piped commands are not supported", split, utt));
        continue;
      }
      fs::path p(where_s);
      if (p.is_relative()) p = root / p;  // the corpus's wav.scp paths are relative to its root
      p = p.lexically_normal();
      if (!audio::has_audio_extension(p)) {  // the same case-insensitive test as the RAVDESS recipe's
        skip(report, fmt::format("{}/wav.scp: {}: not an audio file extension: {}", split, utt, p.string()));
        continue;
      }
      auto spk = utt2spk.find(utt);
      if (spk == utt2spk.end()) {
        skip(report, fmt::format("{}/wav.scp: {}: not in utt2spk", split, utt));
        continue;
      }
      auto age_s = spk2age.find(spk->second);
      auto gen = spk2gender.find(spk->second);
      if (age_s == spk2age.end() || gen == spk2gender.end()) {
        skip(report, fmt::format("{}: speaker {} has no {} entry", utt, spk->second,
                                 age_s == spk2age.end() ? "spk2age" : "spk2gender"));
        continue;
      }
      int age = -1;
      try {
        size_t used = 0;
        age = std::stoi(age_s->second, &used);
        if (used != age_s->second.size()) age = -1;
      } catch (const std::exception&) {
        age = -1;
      }
      if (age < 0 || age > 150) {
        skip(report, fmt::format("{}: speaker {} has age '{}' (expected whole years, 0..150)", utt, spk->second,
                                 age_s->second));
        continue;
      }
      const std::string g = to_lower(gen->second);
      if (g != "m" && g != "f") {
        skip(report, fmt::format("{}: speaker {} has gender '{}' (expected m or f)", utt, spk->second,
                                 gen->second));
        continue;
      }
      if (!fs::is_regular_file(p)) {
        skip(report, fmt::format("{}: audio file not found: {}", utt, p.string()));
        continue;
      }
      Utterance u;
      u.id = utt;
      u.path = p.string();
      u.speaker = spk->second;
      u.split = split;
      u.labels["gender3"] = age <= 14 ? "child" : (g == "f" ? "female" : "male");
      u.labels["age3"] = age <= 14 ? "child" : (age <= 24 ? "youth" : "adult");
      if (m.contains(u.id))
        throw DataError(fmt::format("speechocean762: utterance {} is in both train and test lists", utt));
      m.add(std::move(u));
      if (report) ++report->found;
    }
  }
  return m;
}

Manifest prepare(const std::string& recipe, const std::string& dir, PrepareReport* report) {
  if (recipe == "ravdess") return prepare_ravdess(dir, report);
  if (recipe == "speechocean762") return prepare_speechocean762(dir, report);
  recipe_tasks(recipe);  // throws: unknown recipe
  return {};
}

}  // namespace crnn::data
