#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>

#include "crnn/data/recipes.h"
#include "crnn/data/splits.h"
#include "support/test_support.h"

using namespace crnn::data;
using crnn::test::contains;
using crnn::test::error_of;
using crnn::test::TempDir;
namespace fs = std::filesystem;

namespace {

std::map<std::string, size_t> count_labels(const Manifest& m, const std::string& task) {
  std::map<std::string, size_t> c;
  for (const auto& u : m.utterances()) ++c[u.label(task)];
  return c;
}

// A miniature RAVDESS tree: empty audio files are enough (the recipe reads names only).
void make_fake_ravdess(const TempDir& d) {
  d.write("ravdess/Actor_01/03-01-01-01-01-01-01.wav");  // neutral, actor 1 (male)
  d.write("ravdess/Actor_01/03-01-05-02-01-01-01.flac"); // angry
  d.write("ravdess/Actor_01/03-01-08-01-02-02-01.flac"); // surprised
  d.write("ravdess/Actor_02/03-01-04-01-01-01-02.flac"); // sad, actor 2 (female)
  d.write("ravdess/Actor_02/03-01-02-01-01-01-02.flac"); // calm
  // To be skipped, each for a different reason:
  d.write("ravdess/Actor_02/readme.txt");                // not audio
  d.write("ravdess/Actor_02/take1.flac");                // bad name
  d.write("ravdess/Actor_02/03-02-03-01-01-01-02.flac"); // song, not speech
  d.write("ravdess/Actor_02/03-01-09-01-01-01-02.flac"); // emotion code 09
  d.write("ravdess/Actor_02/03-01-03-01-01-01-05.flac"); // actor 05 in Actor_02/
  d.write("ravdess/notes.txt");                          // outside Actor folders: ignored
}

}  // namespace

TEST(Ravdess, ParsesNamesIntoSpeakersAndTasks) {
  TempDir d;
  make_fake_ravdess(d);
  PrepareReport report;
  Manifest m = prepare_ravdess((d.path() / "ravdess").string(), &report);
  EXPECT_EQ(report.found, 5u);
  EXPECT_EQ(report.skipped.size(), 5u);
  ASSERT_EQ(m.size(), 5u);
  EXPECT_EQ(m.tasks(), (std::vector<std::string>{"emotion8", "emotion2", "gender"}));
  EXPECT_FALSE(m.has_split());

  const auto& angry = m.find("03-01-05-02-01-01-01");
  EXPECT_EQ(angry.speaker, "Actor_01");
  EXPECT_EQ(angry.label("emotion8"), "angry");
  EXPECT_EQ(angry.label("emotion2"), "negative");
  EXPECT_EQ(angry.label("gender"), "male");
  EXPECT_TRUE(fs::path(angry.path).is_absolute());
  EXPECT_EQ(fs::path(angry.path).filename(), "03-01-05-02-01-01-01.flac");

  EXPECT_EQ(m.find("03-01-01-01-01-01-01").label("emotion2"), "non-negative");  // neutral
  EXPECT_EQ(m.find("03-01-08-01-02-02-01").label("emotion8"), "surprised");
  const auto& sad = m.find("03-01-04-01-01-01-02");
  EXPECT_EQ(sad.label("emotion2"), "negative");
  EXPECT_EQ(sad.label("gender"), "female");
  EXPECT_EQ(m.find("03-01-02-01-01-01-02").label("emotion2"), "non-negative");  // calm

  std::string all;
  for (const auto& s : report.skipped) all += s + "\n";
  EXPECT_TRUE(contains(all, "readme.txt: not an audio file extension"));
  EXPECT_TRUE(contains(all, "take1.flac: name does not follow"));
  EXPECT_TRUE(contains(all, "not audio-only speech"));
  EXPECT_TRUE(contains(all, "emotion code 09"));
  EXPECT_TRUE(contains(all, "disagrees with folder Actor_02"));
}

// Entries that cannot hold utterances are reported, not silently passed over.
TEST(Ravdess, ListsFoldersLinksAndNonFoldersItPassesOver) {
  TempDir d;
  make_fake_ravdess(d);
  const fs::path r = d.path() / "ravdess";
  fs::create_directories(r / "Actor_01" / "03-01-04-01-01-01-01.wav");      // a folder named like audio
  fs::create_symlink(r / "gone.wav", r / "Actor_01" / "03-01-06-01-01-01-01.wav");  // a broken link
  d.write("ravdess/foo/03-01-03-01-01-01-03.wav");                           // outside Actor folders
  d.write("ravdess/Actor_03");                                                // a file, not a folder
  PrepareReport report;
  prepare_ravdess(r.string(), &report);
  EXPECT_EQ(report.found, 5u);
  std::string all;
  for (const auto& s : report.skipped) all += s + "\n";
  EXPECT_TRUE(contains(all, (r / "Actor_01" / "03-01-04-01-01-01-01.wav").string() + ": not a regular file (a folder)")) << all;
  EXPECT_TRUE(contains(all, (r / "Actor_01" / "03-01-06-01-01-01-01.wav").string() + ": not a regular file (a broken link)")) << all;
  EXPECT_TRUE(contains(all, (r / "foo").string() + ": not an Actor_NN folder, not searched")) << all;
  EXPECT_TRUE(contains(all, (r / "Actor_03").string() + ": not a folder")) << all;
  EXPECT_EQ(report.skipped.size(), 5u + 4u);  // notes.txt at the top stays unmentioned
}

TEST(Ravdess, MissingOrWrongDirectoryIsAnError) {
  TempDir d;
  EXPECT_TRUE(contains(error_of([&] { prepare_ravdess((d.path() / "nope").string()); }),
                       "corpus directory not found"));
  EXPECT_TRUE(contains(error_of([&] { prepare_ravdess(d.str()); }), "no Actor_NN folders"));
}

TEST(Recipes, TaskClassOrders) {
  EXPECT_EQ(recipe_tasks("speechocean762")[1].classes, (std::vector<std::string>{"child", "youth", "adult"}));
  EXPECT_EQ(recipe_tasks("ravdess")[0].classes.size(), 8u);
  EXPECT_TRUE(contains(error_of([] { recipe_tasks("timit"); }), "unknown recipe 'timit'"));
}

namespace {
void make_fake_speechocean(const TempDir& d) {
  // Ages chosen at the class boundaries: 14 | 15 … 24 | 25.
  d.write("so/train/wav.scp",
          "u1\tWAVE/S1/u1.flac\n"
          "u2\tWAVE/S2/u2.flac\n"
          "u3\tWAVE/S3/u3.flac\n"
          "u4\tWAVE/S1/u4.flac\n"
          "u9\tWAVE/S9/u9.flac\n"      // audio file missing → skipped
          "u8\tsox x.wav -t wav - |\n"); // piped → skipped
  d.write("so/train/utt2spk", "u1 S1\nu2 S2\nu3 S3\nu4 S1\nu9 S1\nu8 S1\n");
  d.write("so/train/spk2age", "S1\t14\nS2\t15\nS3\t24\n");
  d.write("so/train/spk2gender", "S1\tm\nS2\tf\nS3\tm\n");
  d.write("so/test/wav.scp", "t1\tWAVE/T1/t1.flac\nt2\tWAVE/T2/t2.flac\r\n");
  d.write("so/test/utt2spk", "t1 T1\nt2 T2\n");
  d.write("so/test/spk2age", "T1\t25\nT2 43\n");
  d.write("so/test/spk2gender", "T1\tf\nT2\tM\n");
  for (const char* f : {"S1/u1", "S2/u2", "S3/u3", "S1/u4", "T1/t1", "T2/t2"})
    d.write(std::string("so/WAVE/") + f + ".flac");
}
}  // namespace

TEST(Speechocean762, AgeAndGenderClassesAtTheBoundaries) {
  TempDir d;
  make_fake_speechocean(d);
  PrepareReport report;
  Manifest m = prepare_speechocean762((d.path() / "so").string(), &report);
  EXPECT_EQ(report.found, 6u);
  ASSERT_EQ(report.skipped.size(), 2u);
  ASSERT_EQ(m.size(), 6u);
  EXPECT_EQ(m.tasks(), (std::vector<std::string>{"gender3", "age3"}));
  // age 14, male → child / child
  EXPECT_EQ(m.find("u1").label("gender3"), "child");
  EXPECT_EQ(m.find("u1").label("age3"), "child");
  EXPECT_EQ(m.find("u1").speaker, "S1");
  EXPECT_EQ(m.find("u1").split, "train");
  EXPECT_EQ(m.find("u1").path, (d.path() / "so/WAVE/S1/u1.flac").string());
  // age 15, female → female / youth;  age 24, male → male / youth
  EXPECT_EQ(m.find("u2").label("gender3"), "female");
  EXPECT_EQ(m.find("u2").label("age3"), "youth");
  EXPECT_EQ(m.find("u3").label("gender3"), "male");
  EXPECT_EQ(m.find("u3").label("age3"), "youth");
  // age 25, female → adult; age 43, "M" (case-insensitive) → male adult
  EXPECT_EQ(m.find("t1").label("age3"), "adult");
  EXPECT_EQ(m.find("t1").label("gender3"), "female");
  EXPECT_EQ(m.find("t2").label("gender3"), "male");
  EXPECT_EQ(m.find("t2").split, "test");
  EXPECT_TRUE(contains(report.skipped[0] + report.skipped[1], "audio file not found"));
  EXPECT_TRUE(contains(report.skipped[0] + report.skipped[1], "piped"));
}

TEST(Speechocean762, MissingListFileIsAnError) {
  TempDir d;
  make_fake_speechocean(d);
  fs::remove(d.path() / "so/test/spk2gender");
  EXPECT_TRUE(contains(error_of([&] { prepare_speechocean762((d.path() / "so").string()); }),
                       "missing list file " + (d.path() / "so/test/spk2gender").string()));
  EXPECT_TRUE(contains(error_of([&] { prepare_speechocean762((d.path() / "none").string()); }),
                       "corpus directory not found"));
}

// Lists that cannot be a corpus's are errors; entries that cannot be used are
// skipped with a reason (never kept: /etc/passwd is no audio path).
TEST(Speechocean762, BadListsAndEntries) {
  TempDir d;
  make_fake_speechocean(d);
  const std::string so = (d.path() / "so").string();
  d.write("so/train/spk2age", "S1\t-5\nS2\t10.5\nS3\t24\n");
  d.write("so/train/wav.scp", "u1\tWAVE/S1/u1.flac\nu2\tWAVE/S2/u2.flac\nu3\t/etc/passwd\n");
  PrepareReport report;
  prepare_speechocean762(so, &report);
  EXPECT_EQ(report.skipped, (std::vector<std::string>{
                                "u1: speaker S1 has age '-5' (expected whole years, 0..150)",
                                "u2: speaker S2 has age '10.5' (expected whole years, 0..150)",
                                "train/wav.scp: u3: not an audio file extension: /etc/passwd"}));
  d.write("so/train/wav.scp", "");
  EXPECT_TRUE(contains(error_of([&] { prepare_speechocean762(so); }), "train/wav.scp: no utterances (empty list)"));
  d.write("so/train/wav.scp", std::string("u1\xff\xfe\x01\n", 6));
  EXPECT_TRUE(contains(error_of([&] { prepare_speechocean762(so); }), "expected 'key value', found 'u1\\xff\\xfe\\x01'"));
  // A key followed only by blanks has no value (line 2: the first line is fine).
  d.write("so/train/wav.scp", "u3\tWAVE/S3/u3.flac\nu4 \t \r\n");
  EXPECT_TRUE(contains(error_of([&] { prepare_speechocean762(so); }), "wav.scp:2: no value for 'u4'"));
  // The extension test (audio::has_audio_extension) ignores case: .Flac is audio, .txt is not.
  d.write("so/WAVE/S3/u3.Flac");
  d.write("so/train/wav.scp", "u3\tWAVE/S3/u3.Flac\nu1\tWAVE/S1/u1.txt\n");
  report = PrepareReport{};
  Manifest mixed = prepare_speechocean762(so, &report);
  EXPECT_EQ(mixed.find("u3").path, (d.path() / "so/WAVE/S3/u3.Flac").string());
  EXPECT_EQ(report.skipped, (std::vector<std::string>{"train/wav.scp: u1: not an audio file extension: " + so +
                                                      "/WAVE/S1/u1.txt"}));
  d.write("so/train/wav.scp", "u3\tWAVE/S3/u3.flac\n");
  fs::remove_all(d.path() / "so/test");
  d.write("so/test", "a file");
  EXPECT_TRUE(contains(error_of([&] { prepare_speechocean762(so); }), "not a folder (the lists' folder): " + so + "/test"));
}

TEST(PrepareCommand, WritesManifestAndFailsCleanlyOnMissingDir) {
  TempDir d;
  make_fake_ravdess(d);
  const std::string out = (d.path() / "m.csv").string();
  const std::string cmd = std::string(CRNN_BINARY) + " prepare ravdess " + (d.path() / "ravdess").string() +
                          " -o " + out + " --relative-paths > " + (d.path() / "log.txt").string();
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  Manifest m = Manifest::read(out);
  EXPECT_EQ(m.size(), 5u);
  EXPECT_TRUE(contains(crnn::read_text_file(out), ",ravdess/Actor_01/"));  // relative to m.csv
  EXPECT_TRUE(fs::exists(m.find("03-01-04-01-01-01-02").path));
  EXPECT_TRUE(contains(crnn::read_text_file((d.path() / "log.txt").string()), "5 files found, 5 skipped"));

  const std::string bad = std::string(CRNN_BINARY) + " prepare ravdess " + (d.path() / "none").string() +
                          " -o " + out + " 2> /dev/null";
  int rc = std::system(bad.c_str());
  EXPECT_EQ(WEXITSTATUS(rc), 2);
}

// --- the real corpora (../shared), skipped when absent ---------------------------

namespace {
std::string shared(const std::string& rel) { return std::string(CRNN_SHARED_DIR) + "/corpora/" + rel; }
}  // namespace

TEST(RealCorpora, Ravdess) {
  if (!fs::is_directory(shared("ravdess"))) GTEST_SKIP() << shared("ravdess") << " not found: skipping";
  PrepareReport report;
  Manifest m = prepare_ravdess(shared("ravdess"), &report);
  EXPECT_EQ(m.size(), 1440u);
  EXPECT_EQ(report.skipped.size(), 0u);
  EXPECT_EQ(m.speakers().size(), 24u);
  EXPECT_TRUE(m.validate_paths().empty());
  // README: per actor 4 neutral files and 8 of each other emotion; 12 f / 12 m actors.
  auto e8 = count_labels(m, "emotion8");
  EXPECT_EQ(e8["neutral"], 96u);
  for (const char* e : {"calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"}) EXPECT_EQ(e8[e], 192u) << e;
  auto e2 = count_labels(m, "emotion2");
  EXPECT_EQ(e2["negative"], 4u * 192u);
  EXPECT_EQ(e2["non-negative"], 96u + 3u * 192u);
  auto g = count_labels(m, "gender");
  EXPECT_EQ(g["female"], 720u);
  EXPECT_EQ(g["male"], 720u);
  EXPECT_EQ(m.find("03-01-05-01-02-01-12").label("gender"), "female");  // README's example

  // 6-fold speaker CV: 4 actors (240 utterances) per fold, since every actor has 60.
  KFoldOptions ko;
  ko.k = 6;
  ko.seed = 11;
  Splits s = split_by_column(kfold(m, 2, ko));
  EXPECT_EQ(s.test.size(), 240u);
  EXPECT_EQ(s.valid.size(), 240u);
  EXPECT_EQ(s.train.size(), 960u);
  // Validation carved out of the training actors: emotion is not speaker-level,
  // so it is balanced by gender: 2 female + 2 male actors.
  ValidationOptions vo;
  vo.task = "emotion8";
  vo.speakers_per_class = 2;
  Splits c = split_by_column(carve_validation(m, vo));
  EXPECT_EQ(c.valid.speakers().size(), 4u);
  EXPECT_EQ(count_labels(c.valid, "gender")["female"], 120u);
  EXPECT_EQ(c.train.size(), 1200u);
}

TEST(RealCorpora, Speechocean762) {
  if (!fs::is_directory(shared("speechocean762")))
    GTEST_SKIP() << shared("speechocean762") << " not found: skipping";
  PrepareReport report;
  Manifest m = prepare_speechocean762(shared("speechocean762"), &report);
  EXPECT_EQ(m.size(), 1750u);
  EXPECT_EQ(report.skipped.size(), 0u);
  EXPECT_EQ(m.speakers().size(), 250u);
  EXPECT_EQ(m.subset("train").size(), 875u);
  EXPECT_EQ(m.subset("test").size(), 875u);
  EXPECT_NO_THROW(check_speaker_independent(m));
  // README table (speakers) × 7 utterances each.
  auto age = count_labels(m, "age3");
  EXPECT_EQ(age["child"], 109u * 7);
  EXPECT_EQ(age["youth"], 97u * 7);
  EXPECT_EQ(age["adult"], 44u * 7);
  auto g3 = count_labels(m, "gender3");
  EXPECT_EQ(g3["child"], 109u * 7);
  EXPECT_EQ(g3["female"], (67u + 14u) * 7);
  EXPECT_EQ(g3["male"], (30u + 30u) * 7);
  auto train_age = count_labels(m.subset("train"), "age3");
  EXPECT_EQ(train_age["child"], (30u + 24u) * 7);
  EXPECT_EQ(train_age["adult"], (14u + 8u) * 7);

  ValidationOptions vo;
  vo.task = "age3";
  vo.speakers_per_class = 3;
  vo.seed = 5;
  Splits s = split_by_column(carve_validation(m, vo));
  EXPECT_EQ(s.valid.speakers().size(), 9u);
  EXPECT_EQ(count_labels(s.valid, "age3")["adult"], 3u * 7);
  EXPECT_EQ(s.test.size(), 875u);
  EXPECT_EQ(s.train.size(), 875u - 9u * 7);
}
