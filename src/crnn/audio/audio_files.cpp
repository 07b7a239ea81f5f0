#include "crnn/audio/audio_files.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>
#include <stdexcept>
#include <utility>

#include "crnn/util/text.h"

namespace crnn::audio {

namespace fs = std::filesystem;

bool has_audio_extension(const fs::path& path) {
  static const std::set<std::string> kAudio{".wav", ".flac", ".ogg", ".oga", ".opus", ".aiff", ".aif", ".au", ".mp3"};
  return kAudio.count(to_lower(path.extension().string())) > 0;
}

AudioFileSearch find_audio_files(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw std::runtime_error(dir + ": not a folder");
  constexpr size_t kNamed = 5;  // skipped files named one by one; the rest are counted
  AudioFileSearch out;
  std::vector<std::pair<std::string, std::string>> skipped;  // path, why
  size_t hidden = 0;
  for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    // Hidden entries (".git", macOS "._x.wav" resource forks) are not recordings.
    std::error_code entry_ec;  // an entry that vanished or cannot be stat'ed is skipped
    if (it->path().filename().string().rfind('.', 0) == 0) {
      if (it->is_directory(entry_ec)) it.disable_recursion_pending();
      else ++hidden;
      continue;
    }
    // The entry itself, then what it points to (links followed), each read once.
    const fs::file_status own = it->symlink_status(entry_ec);
    if (entry_ec) {
      skipped.push_back({it->path().string(), "cannot be read (" + entry_ec.message() + ")"});
      continue;
    }
    const bool link = fs::is_symlink(own);
    const fs::file_status target = link ? it->status(entry_ec) : own;
    if (entry_ec) {
      skipped.push_back({it->path().string(), entry_ec == std::errc::no_such_file_or_directory
                                                  ? "a link to nothing (broken link)"
                                                  : "a link that cannot be followed (" + entry_ec.message() + ")"});
      continue;
    }
    if (fs::is_directory(target)) {  // folders are searched; linked ones are not (a link to an ancestor loops)
      if (link) skipped.push_back({it->path().string(), "a link to a folder (not followed: it could loop)"});
      continue;
    }
    if (!fs::is_regular_file(target)) {
      skipped.push_back({it->path().string(), "not a regular file (a FIFO, socket or device)"});
      continue;
    }
    if (has_audio_extension(it->path())) out.files.push_back(it->path().string());
    else skipped.push_back({it->path().string(), "not an audio file extension"});
  }
  if (ec) throw std::runtime_error(fmt::format("{}: cannot search the folder: {}", dir, ec.message()));
  std::sort(out.files.begin(), out.files.end());
  std::sort(skipped.begin(), skipped.end());
  for (size_t i = 0; i < skipped.size() && i < kNamed; ++i)
    out.notes.push_back(fmt::format("skipped {}: {}", skipped[i].first, skipped[i].second));
  if (skipped.size() > kNamed)
    out.notes.push_back(fmt::format("skipped {} more entries in {} (not audio files)", skipped.size() - kNamed, dir));
  if (hidden > 0)
    out.notes.push_back(
        fmt::format("skipped {} hidden file(s) in {} (names starting with '.', e.g. macOS ._ files)", hidden, dir));
  if (out.files.empty()) out.notes.push_back(dir + ": no audio files");
  return out;
}

}  // namespace crnn::audio
