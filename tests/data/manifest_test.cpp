#include <gtest/gtest.h>

#include <filesystem>

#include "crnn/data/manifest.h"
#include "support/test_support.h"

using namespace crnn::data;
using crnn::test::error_of;
using crnn::test::TempDir;
using crnn::test::contains;
namespace fs = std::filesystem;

TEST(Csv, QuotedFieldsCommasEscapedQuotesAndCrlf) {
  // Record 2 spans lines 2-3 (a line break inside quotes); record 3 starts on line 4.
  const std::string text =
      "\xEF\xBB\xBF"
      "a,b,c\r\n"
      "\"x, y\",\"say \"\"hi\"\"\",\"two\nlines\"\r\n"
      "plain,,\"\"\r\n"
      "\r\n";
  auto recs = csv::parse(text, "t.csv");
  ASSERT_EQ(recs.size(), 3u);
  EXPECT_EQ(recs[0].fields, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(recs[1].fields, (std::vector<std::string>{"x, y", "say \"hi\"", "two\nlines"}));
  EXPECT_EQ(recs[2].fields, (std::vector<std::string>{"plain", "", ""}));
  EXPECT_EQ(recs[0].line, 1u);
  EXPECT_EQ(recs[1].line, 2u);
  EXPECT_EQ(recs[2].line, 4u);
}

// The empty rows a spreadsheet leaves below (or between) its data, ",,,,", are
// blank lines; a row with a quoted empty field is a row.
TEST(Csv, RowsOfEmptyFieldsAreBlankLines) {
  auto recs = csv::parse("a,b\n1,2\n,\n,,,\r\n3,4\n\"\",\n", "t.csv");
  ASSERT_EQ(recs.size(), 4u);
  EXPECT_EQ(recs[2].fields, (std::vector<std::string>{"3", "4"}));
  EXPECT_EQ(recs[2].line, 5u);
  EXPECT_EQ(recs[3].fields, (std::vector<std::string>{"", ""}));
}

TEST(Csv, MalformedInputNamesFileAndLine) {
  EXPECT_TRUE(contains(error_of([] { csv::parse("a,b\n1,\"open\n2,3\n", "m.csv"); }), "m.csv:2: unterminated quoted field"));
  EXPECT_TRUE(contains(error_of([] { csv::parse("a,b\n1,\"x\"y\n", "m.csv"); }), "m.csv:2:"));
  EXPECT_TRUE(contains(error_of([] { csv::parse("a,b\n\n1,x\"y\n", "m.csv"); }), "m.csv:3: quote inside an unquoted field"));
  EXPECT_TRUE(contains(error_of([] { csv::parse(std::string("a,b\n1,x\0y\n", 10), "m.csv"); }),
                       "m.csv:2: NUL byte in a text file (a binary or UTF-16 file?"));
  EXPECT_TRUE(contains(error_of([] { csv::parse(std::string("\xFF\xFE" "a\0,\0", 6), "m.csv"); }),
                       "m.csv:1: NUL byte in a text file (it is UTF-16;"));
}

TEST(Csv, QuoteOnlyWhenNeeded) {
  EXPECT_EQ(csv::quote("plain"), "plain");
  EXPECT_EQ(csv::quote("a,b"), "\"a,b\"");
  EXPECT_EQ(csv::quote("say \"x\""), "\"say \"\"x\"\"\"");
  EXPECT_EQ(csv::quote(" pad"), "\" pad\"");
}

TEST(Manifest, ReadsColumnsInAnyOrderAndResolvesRelativePaths) {
  TempDir dir;
  const std::string file = dir.write("sub/m.csv",
                                     "emotion,speaker,path,id,split,age\n"
                                     "happy,s1,wav/a.wav,a,train,adult\n"
                                     "\"sad\",s2,/abs/b.flac,b,test,\n"
                                     "angry,s2,../up/c.wav,c,test,child\n");
  Manifest m = Manifest::read(file);
  ASSERT_EQ(m.size(), 3u);
  EXPECT_EQ(m.tasks(), (std::vector<std::string>{"emotion", "age"}));
  EXPECT_TRUE(m.has_split());
  EXPECT_EQ(m[0].path, (dir.path() / "sub/wav/a.wav").string());
  EXPECT_EQ(m[1].path, "/abs/b.flac");
  EXPECT_EQ(m[2].path, (dir.path() / "up/c.wav").string());
  EXPECT_EQ(m[0].labels.at("emotion"), "happy");
  EXPECT_EQ(m[1].labels.count("age"), 0u) << "an empty cell means: no label";
  EXPECT_EQ(m[1].label("age"), "");
  EXPECT_EQ(m.find("c").speaker, "s2");
  EXPECT_EQ(m.speakers(), (std::vector<std::string>{"s1", "s2"}));
  EXPECT_EQ(m.subset("test").size(), 2u);
  EXPECT_EQ(m.subset("valid").size(), 0u);
}

TEST(Manifest, SplitColumnIsOptional) {
  auto m = Manifest::parse("id,path,speaker,gender\nu1,/a.wav,s,f\n", "/");
  EXPECT_FALSE(m.has_split());
  EXPECT_EQ(m[0].split, "");
}

// Text columns must be UTF-8 (a Latin-1 "léger" would come back as "l\uFFFDger"
// in every result file); paths are file names and may hold any bytes.
TEST(Manifest, TextThatIsNotUtf8IsAnErrorButPathsMayBeAnyBytes) {
  auto err = [](const std::string& text) { return error_of([&] { Manifest::parse(text, "/d", "m.csv"); }); };
  EXPECT_EQ(err("id,path,speaker,weight\nu1,/a.wav,s,l\xc3\xa9ger\n"), "");  // UTF-8 é
  EXPECT_EQ(err("id,path,speaker,weight\nu1,/caf\xe9.wav,s,heavy\n"), "");    // a Latin-1 file name
  EXPECT_EQ(err("id,path,speaker,weight\nu1,/a.wav,s,l\xe9ger\n"),
            "m.csv:2: column 'weight' holds 'l\\xe9ger', which is not UTF-8 text (byte 0xe9 at position 2); save the "
            "manifest as UTF-8");
  EXPECT_TRUE(contains(err("id,path,speaker\nu1,/a.wav,J\xfcrgen\n"), "m.csv:2: column 'speaker' holds 'J\\xfcrgen'"));
  EXPECT_TRUE(contains(err("id,path,speaker\nu\xff,/a.wav,s\n"), "m.csv:2: column 'id' holds 'u\\xff'"));
  EXPECT_EQ(err("id,path,speaker,\xe9motion\nu1,/a.wav,s,happy\n"),
            "m.csv:1: column name '\\xe9motion' is not UTF-8 text (byte 0xe9); save the manifest as UTF-8");
}

// Without an id column, the id is the file name without its extension.
TEST(Manifest, IdColumnIsOptionalAndDefaultsToTheFileName) {
  auto m = Manifest::parse("path,speaker,emotion\nwav/ann_1.wav,ann,happy\nother/bob 2.flac,bob,sad\n", "/d");
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m[0].id, "ann_1");
  EXPECT_EQ(m[1].id, "bob 2");
  EXPECT_EQ(m[1].path, "/d/other/bob 2.flac");
  EXPECT_EQ(m.tasks(), (std::vector<std::string>{"emotion"}));
  auto err = [](const std::string& text) { return error_of([&] { Manifest::parse(text, "/d", "m.csv"); }); };
  EXPECT_EQ(err("path,speaker\na/x.wav,s\nb/x.wav,t\n"),
            "m.csv:3: duplicate utterance id 'x' (first on line 2); without an id column the id is the file name "
            "without its extension, so two files of one name need an id column");
  EXPECT_TRUE(contains(err("path,speaker\ncaf\xe9.wav,s\n"), "m.csv:2: the id would be the file name 'caf\\xe9'"));
  EXPECT_EQ(err("path,speaker\n,s\n"), "m.csv:2: empty path");
  EXPECT_EQ(err("path,speaker\na/x.wav,s\na/x.wav,s\n"), "m.csv:3: duplicate utterance id 'x' (first on line 2); the same file twice");
}

TEST(Manifest, ErrorsNameFileLineAndProblem) {
  auto err = [](const std::string& text) { return error_of([&] { Manifest::parse(text, "/d", "m.csv"); }); };
  EXPECT_TRUE(contains(err("id,path,emotion\na,x.wav,happy\n"), "m.csv:1: missing required column 'speaker'"));
  EXPECT_TRUE(contains(err("id,path,speaker,e\na,x.wav,s,happy\nb,y.wav,s\n"), "m.csv:3: expected 4 fields (as in the header), found 3"));
  EXPECT_TRUE(contains(err("id,path,speaker\na,x.wav,s\nb,y.wav,s\na,z.wav,t\n"), "m.csv:4: duplicate utterance id 'a' (first on line 2)"));
  EXPECT_TRUE(contains(err("id,path,speaker\n,x.wav,s\n"), "m.csv:2: empty id"));
  EXPECT_TRUE(contains(err("id,path,speaker\na,,s\n"), "m.csv:2: empty path for 'a'"));
  EXPECT_TRUE(contains(err("id,path,speaker\na,x.wav,\n"), "m.csv:2: empty speaker"));
  EXPECT_TRUE(contains(err("id,path,speaker,split\na,x.wav,s,dev\n"), "m.csv:2: unknown split 'dev'"));
  EXPECT_TRUE(contains(err("id,path,speaker,id\n"), "duplicate column 'id'"));
  EXPECT_TRUE(contains(err(""), "empty manifest"));
  EXPECT_TRUE(contains(error_of([] { Manifest::read("/nonexistent/m.csv"); }), "/nonexistent/m.csv"));
  {
    crnn::test::TempDir dir;
    std::ofstream(dir.file("header.csv")) << "id,path,speaker,label\n";
    EXPECT_EQ(error_of([&] { Manifest::read(dir.file("header.csv")); }),
              dir.file("header.csv") + ": no utterances (the manifest has a header row only)");
  }
  // Header mistakes a new user makes, each with its likely cause.
  EXPECT_TRUE(contains(err("file,label,speaker\nx.wav,a,s\n"),
                       "m.csv:1: missing required column 'path' (header has: file, label, speaker); if 'file' "
                       "holds the audio files, name it 'path'"));
  EXPECT_TRUE(contains(err("file,talker,label\nx.wav,s,a\n"),
                       "missing required columns 'path', 'speaker' (header has: file, talker, label); if 'file' holds "
                       "the audio files, name it 'path'; if 'talker' names the speakers, name it 'speaker'"));
  EXPECT_TRUE(contains(err("id;path;speaker;label\na;x.wav;s;b\n"),
                       "the header is one field: crnn reads comma-separated CSV, save it with ',' as the separator"));
  EXPECT_TRUE(contains(err("ID,Path,speaker\na,x.wav,s\n"), "column names are case-sensitive: rename 'ID' to 'id'"));
  EXPECT_TRUE(contains(err("ID,path,speaker\na,x.wav,s\n"), "m.csv:1: column names are case-sensitive: rename 'ID' to 'id'"));
  EXPECT_TRUE(contains(err("ID,Path,speaker\na,x.wav,s\n"), "rename 'Path' to 'path'"));
  EXPECT_TRUE(contains(err("id,path,speaker,\na,x.wav,s,\n"), "m.csv:1: column 4 has an empty name (a trailing comma?)"));
  EXPECT_TRUE(contains(err(",id,path,speaker\n0,a,x.wav,s\n"), "(an index column? pandas: to_csv(..., index=False))"));
}

TEST(Manifest, WriteThenReadRoundTripsTrickyFieldsAtomically) {
  TempDir dir;
  Manifest m({"emotion", "note"});
  m.add({"u,1", (dir.path() / "audio/a.wav").string(), "spk \"A\"", {{"emotion", "happy"}, {"note", "two\nlines"}}, "train"});
  m.add({"u2", (dir.path() / "audio/b.wav").string(), "B", {{"emotion", "sad"}}, "test"});
  const std::string out = (dir.path() / "m.csv").string();
  ManifestWriteOptions wo;
  wo.relative_paths = true;
  m.write(out, wo);
  // Only the manifest itself is left: the temporary file was renamed into place.
  size_t files = 0;
  for (const auto& e : fs::directory_iterator(dir.path())) files += e.is_regular_file();
  EXPECT_EQ(files, 1u);
  EXPECT_TRUE(contains(crnn::read_text_file(out), "\"u,1\",audio/a.wav,"));

  Manifest r = Manifest::read(out);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r.tasks(), m.tasks());
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(r[i].id, m[i].id);
    EXPECT_EQ(r[i].path, m[i].path);
    EXPECT_EQ(r[i].speaker, m[i].speaker);
    EXPECT_EQ(r[i].labels, m[i].labels);
    EXPECT_EQ(r[i].split, m[i].split);
  }
}

TEST(Manifest, AddRejectsBadUtterances) {
  Manifest m({"gender"});
  m.add({"a", "/a.wav", "s", {{"gender", "f"}}, ""});
  EXPECT_TRUE(contains(error_of([&] { m.add({"a", "/b.wav", "s", {}, ""}); }), "duplicate utterance id 'a'"));
  EXPECT_TRUE(contains(error_of([&] { m.add({"b", "/b.wav", "s", {{"age", "x"}}, ""}); }), "unknown task 'age'"));
  EXPECT_TRUE(contains(error_of([&] { m.add({"c", "/c.wav", "s", {}, "dev"}); }), "unknown split 'dev'"));
  EXPECT_TRUE(contains(error_of([] { Manifest({"split"}); }), "reserved"));
  EXPECT_EQ(m.size(), 1u);
}

TEST(Manifest, ValidatePathsReportsMissingFiles) {
  TempDir dir;
  dir.write("ok.wav", "x");
  fs::create_directories(dir.path() / "folder.wav");
  const std::string file = dir.write("m.csv",
                                     "id,path,speaker\n"
                                     "ok,ok.wav,s\n"
                                     "gone,missing.wav,s\n"
                                     "dir,folder.wav,s\n");
  auto problems = Manifest::read(file).validate_paths();
  ASSERT_EQ(problems.size(), 2u);
  EXPECT_TRUE(contains(problems[0], "gone: file not found: "));
  EXPECT_TRUE(contains(problems[0], "missing.wav"));
  EXPECT_TRUE(contains(problems[1], "dir: not a regular file"));
}

TEST(LabelSet, SortedByDefaultOrFixedOrder) {
  auto m = Manifest::parse("id,path,speaker,age\na,/a,s,youth\nb,/b,s,adult\nc,/c,s,child\nd,/d,s,youth\ne,/e,s,\n", "/");
  auto sorted = LabelSet::from_manifest(m, "age");
  EXPECT_EQ(sorted.names(), (std::vector<std::string>{"adult", "child", "youth"}));
  EXPECT_EQ(sorted.index("youth"), 2);
  auto fixed = LabelSet::from_manifest(m, "age", {"child", "youth", "adult"});
  EXPECT_EQ(fixed.index("child"), 0);
  EXPECT_EQ(fixed.index("adult"), 2);
  EXPECT_EQ(fixed.name(1), "youth");
  EXPECT_EQ(fixed.size(), 3);
}

TEST(LabelSet, UnknownLabelIsNamed) {
  LabelSet s({"child", "youth", "adult"}, "age3");
  EXPECT_TRUE(contains(error_of([&] { s.index("elder"); }), "unknown label 'elder' for task 'age3' (known: child, youth, adult)"));
  // A model's classes against a manifest (crnn eval, predict --manifest): the
  // message names the file, the line and the utterance.
  auto m = Manifest::parse("id,path,speaker,age\nk,/k,s,child\na,/a,s,elder\n", "/", "corpus.csv");
  EXPECT_TRUE(contains(error_of([&] { LabelSet::from_manifest(m, "age", {"child", "adult"}); }),
                       "corpus.csv:3: utterance 'a': unknown label 'elder' for task 'age' (known: child, adult)"));
  EXPECT_TRUE(contains(error_of([&] { LabelSet::from_manifest(m, "emotion"); }), "no task 'emotion'"));
  EXPECT_TRUE(contains(error_of([] { LabelSet({"a", "a"}); }), "duplicate class 'a'"));
  EXPECT_TRUE(contains(error_of([&] { s.name(3); }), "out of range"));
}
