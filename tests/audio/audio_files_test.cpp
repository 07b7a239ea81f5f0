// find_audio_files: the folder search behind `crnn predict DIR` and
// crnn.Classifier.predict(DIR), on a hand-built tree.
#include "crnn/audio/audio_files.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <sys/stat.h>

#include "support/test_support.h"

namespace fs = std::filesystem;
using crnn::audio::find_audio_files;
using crnn::audio::has_audio_extension;

namespace {

void touch(const fs::path& p) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << "x";
}

}  // namespace

TEST(AudioFiles, ExtensionsAreCaseInsensitiveAndExact) {
  for (const char* yes : {"a.wav", "a.WAV", "b.Flac", "c.ogg", "d.opus", "e.aiff", "f.aif", "g.au", "h.mp3", "i.oga"})
    EXPECT_TRUE(has_audio_extension(yes)) << yes;
  for (const char* no : {"a.txt", "a.wav.txt", "wav", "a.wave", "a.mp4", "a.", ".wav.bak", "a.wavx"})
    EXPECT_FALSE(has_audio_extension(no)) << no;
}

TEST(AudioFiles, FindsAudioRecursivelySortedAndSaysWhatItSkipped) {
  crnn::test::TempDir dir;
  const fs::path root = dir.path();
  touch(root / "z.wav");
  touch(root / "a" / "B.FLAC");
  touch(root / "a" / "deeper" / "c.ogg");
  touch(root / "notes.txt");
  touch(root / ".DS_Store");
  touch(root / "a" / "._B.FLAC");          // a macOS resource fork: hidden, not audio
  touch(root / ".git" / "hidden.wav");     // a hidden folder is not searched at all
  fs::create_symlink(root / "gone.wav", root / "a" / "link.wav");   // a link to nothing
  fs::create_symlink(root / "z.wav", root / "a" / "alias.wav");      // a link to a file is that file
  const auto found = find_audio_files(root.string());
  EXPECT_EQ(found.files, (std::vector<std::string>{(root / "a" / "B.FLAC").string(),
                                                    (root / "a" / "alias.wav").string(),
                                                    (root / "a" / "deeper" / "c.ogg").string(),
                                                    (root / "z.wav").string()}));
  EXPECT_EQ(found.notes,
            (std::vector<std::string>{
                "skipped " + (root / "a" / "link.wav").string() + ": a link to nothing (broken link)",
                "skipped " + (root / "notes.txt").string() + ": not an audio file extension",
                "skipped 2 hidden file(s) in " + root.string() + " (names starting with '.', e.g. macOS ._ files)"}));
}

// A link to a folder is not followed (a link to an ancestor would loop) and a
// FIFO named like audio is no recording: both are named, not dropped silently.
TEST(AudioFiles, LinksToFoldersAndFifosAreNamedAsSkipped) {
  crnn::test::TempDir dir;
  const fs::path root = dir.path() / "corpus";
  touch(root / "a.wav");
  touch(dir.path() / "elsewhere" / "b.wav");
  fs::create_directory_symlink(dir.path() / "elsewhere", root / "linked");
  fs::create_directory_symlink(root, root / "loop");
  ASSERT_EQ(mkfifo((root / "pipe.wav").c_str(), 0600), 0);
  const auto found = find_audio_files(root.string());
  EXPECT_EQ(found.files, (std::vector<std::string>{(root / "a.wav").string()}));
  EXPECT_EQ(found.notes,
            (std::vector<std::string>{
                "skipped " + (root / "linked").string() + ": a link to a folder (not followed: it could loop)",
                "skipped " + (root / "loop").string() + ": a link to a folder (not followed: it could loop)",
                "skipped " + (root / "pipe.wav").string() + ": not a regular file (a FIFO, socket or device)"}));
}

TEST(AudioFiles, NamesFiveSkippedFilesThenCountsTheRest) {
  crnn::test::TempDir dir;
  for (int i = 0; i < 8; ++i) touch(dir.path() / ("readme" + std::to_string(i) + ".txt"));
  const auto found = find_audio_files(dir.path().string());
  EXPECT_TRUE(found.files.empty());
  ASSERT_EQ(found.notes.size(), 7u);  // 5 named, 1 count, 1 "no audio files"
  EXPECT_EQ(found.notes[0], "skipped " + dir.file("readme0.txt") + ": not an audio file extension");
  EXPECT_EQ(found.notes[4], "skipped " + dir.file("readme4.txt") + ": not an audio file extension");
  EXPECT_EQ(found.notes[5], "skipped 3 more entries in " + dir.path().string() + " (not audio files)");
  EXPECT_EQ(found.notes[6], dir.path().string() + ": no audio files");
}

TEST(AudioFiles, ANonFolderIsAnErrorNamingIt) {
  crnn::test::TempDir dir;
  touch(dir.path() / "a.wav");
  for (const std::string p : {dir.file("a.wav"), dir.file("missing")}) {
    try {
      find_audio_files(p);
      ADD_FAILURE() << p;
    } catch (const std::runtime_error& e) {
      EXPECT_EQ(std::string(e.what()), p + ": not a folder");
    }
  }
}
