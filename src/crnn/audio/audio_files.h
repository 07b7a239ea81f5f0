#pragma once
/// \file audio_files.h
/// Finding the recordings in a folder: the one rule that `crnn predict DIR`,
/// `crnn.Classifier.predict(DIR)` and the corpus recipes share for what counts
/// as an audio file.
///
/// \code
///   auto found = crnn::audio::find_audio_files("recordings/");
///   for (const auto& note : found.notes) std::cerr << note << '\n';   // what was skipped
///   for (const auto& path : found.files) classify(path);               // sorted
/// \endcode

#include <filesystem>
#include <string>
#include <vector>

namespace crnn::audio {

/// True for the extensions read as audio (case-insensitive): .wav .flac .ogg
/// .oga .opus .aiff .aif .au .mp3 — the containers libsndfile decodes.
bool has_audio_extension(const std::filesystem::path& path);

/// The audio files under a folder and what was left out.
struct AudioFileSearch {
  /// Regular files with an audio extension, sorted by path, so the order does
  /// not depend on the file system.
  std::vector<std::string> files;
  /// One line per kind of skipped entry, e.g. "skipped notes.txt: not an audio
  /// file extension" (the first 5 by name, then a count), each broken link,
  /// link to a folder (not followed) and FIFO, socket or device, the hidden files
  /// (names starting with '.', e.g. macOS "._x.wav" resource forks, and
  /// hidden folders, which are not searched), or "DIR: no audio files".
  std::vector<std::string> notes;
};

/// Searches `dir` recursively (symlinked folders are not followed, unreadable
/// ones are skipped). Throws std::runtime_error naming `dir` when it is not a
/// folder.
AudioFileSearch find_audio_files(const std::string& dir);

}  // namespace crnn::audio
