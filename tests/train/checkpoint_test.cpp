// Model files: a saved model loads back bit-exactly, and a damaged or edited
// one (truncated tensor record, missing record, NaN weights, labels that do
// not match the weights) is a DataError naming the file and the problem,
// never a LibTorch backtrace or a model that reads past its buffers.
#include <caffe2/serialize/inline_container.h>
#include <gtest/gtest.h>

#include <fstream>
#include <functional>
#include <random>

#include "crnn/data/error.h"
#include "crnn/train/checkpoint.h"
#include "crnn/train/config.h"
#include "support/test_support.h"
#include "train/tiny_corpus.h"

namespace {

using namespace crnn;

/// Copies a model archive record by record; `edit` returns the new bytes of a
/// record, or nullopt to drop it.
void rewrite_archive(const std::string& from, const std::string& to,
                     const std::function<std::optional<std::string>(const std::string&, std::string)>& edit) {
  caffe2::serialize::PyTorchStreamReader in(from);
  caffe2::serialize::PyTorchStreamWriter out(to);
  out.setMinVersion(in.version());
  for (const auto& name : in.getAllRecords()) {
    if (name == "version" || name == ".data/version") continue;  // writeEndOfFile writes it
    auto [ptr, size] = in.getRecord(name);
    auto bytes = edit(name, std::string(static_cast<const char*>(ptr.get()), size));
    if (bytes) out.writeRecord(name, bytes->data(), bytes->size());
  }
  out.writeEndOfFile();
}

/// Name of the largest tensor record of an archive.
std::string largest_tensor_record(const std::string& path, size_t* size_out) {
  caffe2::serialize::PyTorchStreamReader in(path);
  std::string best;
  size_t best_size = 0;
  for (const auto& name : in.getAllRecords()) {
    if (name.rfind("data/", 0) != 0) continue;
    const size_t size = std::get<1>(in.getRecord(name));
    if (size > best_size) best = name, best_size = size;
  }
  *size_out = best_size;
  return best;
}

/// The DataError message of loading `path` ("" when it loads).
std::string load_error(const std::string& path) {
  try {
    train::load_model(path);
  } catch (const data::DataError& e) {
    return e.what();
  }
  return "";
}

/// `from` with every occurrence of `what` in its records replaced by `with`
/// (of the same length, so the pickled strings stay well-formed): a model file
/// as an editor, another tool or damage could leave it.
void edit_model_file(const std::string& from, const std::string& to, const std::string& what, const std::string& with) {
  ASSERT_EQ(what.size(), with.size());
  size_t edits = 0;
  rewrite_archive(from, to, [&](const std::string&, std::string d) -> std::optional<std::string> {
    for (size_t at; (at = d.find(what)) != std::string::npos; ++edits) d.replace(at, what.size(), with);
    return d;
  });
  ASSERT_GT(edits, 0u) << what;
}

TEST(Checkpoint, SavedModelLoadsBackExactly) {
  test::TempDir dir;
  auto s = test::save_tiny_model(dir, "m.pt");
  auto loaded = train::load_model(s.path);
  EXPECT_EQ(loaded.bundle.labels, (std::vector<std::string>{"down", "up"}));
  auto a = s.model->named_parameters(), b = loaded.model->named_parameters();
  ASSERT_EQ(a.size(), b.size());
  for (const auto& p : a) EXPECT_TRUE(torch::equal(p.value(), b[p.key()])) << p.key();
  // A record-by-record copy is the same model (the rewriting itself is faithful).
  rewrite_archive(s.path, dir.file("copy.pt"), [](const std::string&, std::string d) { return d; });
  EXPECT_EQ(load_error(dir.file("copy.pt")), "");
}

TEST(Checkpoint, TheSplitRecordLoadsBackAndIsCoveredByTheChecksum) {
  test::TempDir dir;
  // Quotes and newlines in names survive.
  const data::SplitMembers splits{{"train", {{"ann", {"a1", "a2"}}}}, {"test", {{"bo\"b", {"b\n1"}}}}};
  test::save_tiny_model(dir, "m.pt", {"down", "up"}, {}, [&](train::ModelBundle& b) { b.splits = splits; });
  EXPECT_EQ(train::load_model(dir.file("m.pt")).bundle.splits, splits);
  // A speaker renamed inside the record: the checksum, which covers it, no longer matches.
  edit_model_file(dir.file("m.pt"), dir.file("edited.pt"), "\"ann\"", "\"anx\"");
  EXPECT_TRUE(test::contains(load_error(dir.file("edited.pt")), "model file damaged")) << load_error(dir.file("edited.pt"));
  // The entry renamed (so absent): the checksum, which covers it, no longer matches.
  edit_model_file(dir.file("m.pt"), dir.file("old.pt"), "splits", "spl1ts");  // another key
  const std::string err = load_error(dir.file("old.pt"));
  EXPECT_TRUE(test::contains(err, "model file damaged")) << err;
}

TEST(Checkpoint, TruncatedTensorRecordIsCorruptNotAnOverRead) {
  test::TempDir dir;
  auto s = test::save_tiny_model(dir, "m.pt");
  size_t size = 0;
  const auto victim = largest_tensor_record(s.path, &size);
  ASSERT_GE(size, 512u) << "the test needs a tensor much larger than a small allocation";
  const auto cut = dir.file("cut.pt");
  rewrite_archive(s.path, cut, [&](const std::string& name, std::string d) -> std::optional<std::string> {
    return name == victim ? d.substr(0, 8) : d;
  });
  const auto msg = load_error(cut);
  EXPECT_NE(msg.find(cut + ": corrupt model file ("), std::string::npos) << msg;
  EXPECT_NE(msg.find(" bytes, its shape ["), std::string::npos) << msg;
}

TEST(Checkpoint, MissingRecordIsADataError) {
  test::TempDir dir;
  auto s = test::save_tiny_model(dir, "m.pt");
  size_t size = 0;
  const auto victim = largest_tensor_record(s.path, &size);
  const auto gone = dir.file("gone.pt");
  rewrite_archive(s.path, gone, [&](const std::string& name, std::string d) -> std::optional<std::string> {
    if (name == victim) return std::nullopt;
    return d;
  });
  const auto msg = load_error(gone);
  EXPECT_NE(msg.find(gone + ": "), std::string::npos) << msg;
  EXPECT_NE(msg.find(victim), std::string::npos) << msg;
  EXPECT_EQ(msg.find("Exception raised from"), std::string::npos) << "backtrace in the message: " << msg;
}

TEST(Checkpoint, NonFiniteWeightsAreCorrupt) {
  test::TempDir dir;
  auto s = test::save_tiny_model(dir, "nan.pt", {"down", "up"}, [](nn::SequenceClassifier& m) {
    torch::NoGradGuard g;
    auto params = m->named_parameters();
    params[params.keys().back()].view(-1)[0] = std::nan("");
  });
  const auto msg = load_error(s.path);
  EXPECT_NE(msg.find("corrupt model file (non-finite values in '" + s.model->named_parameters().keys().back() + "')"),
            std::string::npos)
      << msg;
}

TEST(Checkpoint, LabelsMustMatchTheWeightsAndBeDistinct) {
  test::TempDir dir;
  auto s = test::save_tiny_model(dir, "m.pt");  // labels "down\nup"
  // Four labels for a two-class output layer: the config would build a 4-way layer.
  edit_model_file(s.path, dir.file("four.pt"), "down\nup", "a\nb\nc\nd");
  auto msg = load_error(dir.file("four.pt"));
  EXPECT_NE(msg.find("has shape [2"), std::string::npos) << msg;
  EXPECT_NE(msg.find("4 labels imply [4"), std::string::npos) << msg;
  edit_model_file(s.path, dir.file("one.pt"), "down\nup", "downxup");
  msg = load_error(dir.file("one.pt"));
  EXPECT_NE(msg.find("1 class label(s); a classifier needs at least 2"), std::string::npos) << msg;
  edit_model_file(s.path, dir.file("twice.pt"), "down\nup", "abc\nabc");
  msg = load_error(dir.file("twice.pt"));
  EXPECT_NE(msg.find("class label 'abc' twice"), std::string::npos) << msg;
  edit_model_file(s.path, dir.file("empty.pt"), "down\nup", "\nupupup");
  msg = load_error(dir.file("empty.pt"));
  EXPECT_NE(msg.find(dir.file("empty.pt") + ": corrupt model file (class label 1 of 2 is empty)"), std::string::npos)
      << msg;
}

// save_checkpoint refuses a bundle that does not describe the model: such a
// file would be written fine and refused by every load.
TEST(Checkpoint, ABundleThatDoesNotDescribeTheModelIsRefusedWhenSaving) {
  test::TempDir dir;
  auto save_error = [&](std::vector<std::string> labels, const std::function<void(train::ModelBundle&)>& edit = {}) {
    try {
      test::save_tiny_model(dir, "m.pt", std::move(labels), {}, edit);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_TRUE(test::contains(save_error({"a", "b", "c"}), "'classes.weight' has shape [2, 8], the bundle's config and "
                                                          "3 labels imply [3, 8]"))
      << save_error({"a", "b", "c"});
  EXPECT_TRUE(test::contains(save_error({"a"}), "1 label(s); a classifier has at least 2"));
  EXPECT_TRUE(test::contains(save_error({"a", "b"}, [](train::ModelBundle& b) { b.config_toml.clear(); }),
                             "the model has 'front_end_0.lstm.weight_ih', the bundle's config does not"));
  // The extractor is how Classifier computes features from audio: none, or one no crnn reads, is refused.
  EXPECT_TRUE(test::contains(save_error({"a", "b"}, [](train::ModelBundle& b) { b.feature_extractor.clear(); }),
                             "feature_extractor: unknown feature extractor ''"));
  EXPECT_TRUE(test::contains(
      save_error({"a", "b"}, [](train::ModelBundle& b) { b.feature_extractor = "kaldi-fbank num_bins=x"; }),
      "feature_extractor: fbank description: bad value in 'num_bins=x'"));
  EXPECT_EQ(save_error({"a", "b"}), "");
  // Checking builds a model; the caller's random stream is left as it was.
  auto loaded = train::load_model(dir.file("m.pt"));
  torch::manual_seed(7);
  const auto expected = torch::rand({4});
  torch::manual_seed(7);
  train::save_checkpoint(dir.file("again.pt"), loaded.model, nullptr, loaded.bundle, nullptr);
  EXPECT_TRUE(torch::equal(torch::rand({4}), expected));
  EXPECT_FALSE(std::filesystem::exists(dir.file("m.pt.tmp")));
}

}  // namespace

namespace {

/// Loads `path` and says whether it gives exactly `want`'s parameters ("same"),
/// a DataError naming the file ("error") or anything else.
std::string load_outcome(const std::string& path, const nn::SequenceClassifier& want) {
  try {
    auto loaded = train::load_model(path);
    for (const auto& p : want->named_parameters())
      if (!torch::equal(p.value(), loaded.model->named_parameters()[p.key()])) return "different";
    return "same";
  } catch (const data::DataError& e) {
    return std::string(e.what()).rfind(path + ": ", 0) == 0 ? "error" : std::string("error without the file: ") + e.what();
  } catch (const std::exception& e) {
    return std::string("other exception: ") + e.what();
  }
}

}  // namespace

// A flipped byte in a weight (a disk or copy error) is an error naming the file,
// not silently different predictions: the model file carries a checksum.
TEST(Checkpoint, FlippedWeightByteIsAnErrorNamingTheFile) {
  test::TempDir dir;
  auto s = test::save_tiny_model(dir, "m.pt");
  size_t size = 0;
  const auto victim = largest_tensor_record(s.path, &size);
  const auto flipped = dir.file("flipped.pt");
  rewrite_archive(s.path, flipped, [&](const std::string& name, std::string d) -> std::optional<std::string> {
    if (name == victim) d[d.size() / 2] = static_cast<char>(d[d.size() / 2] ^ 0x10);  // a small, finite change
    return d;
  });
  const auto msg = load_error(flipped);
  EXPECT_NE(msg.find(flipped + ": model file damaged: its contents do not match the checksum written with it"),
            std::string::npos)
      << msg;
}

// Finding 5 of the fuzzing (docs/reliability.md): the zip end record's entry
// counts zeroed, beside a damaged record. LibTorch's reader takes the counts
// from the zip64 record and reads every record; the CRC-32 check must too, so
// the damage is an error before LibTorch parses the record.
TEST(Checkpoint, AZeroedZipEndRecordDoesNotHideADamagedRecord) {
  test::TempDir dir;
  auto s = test::save_tiny_model(dir, "m.pt");
  std::string b;
  {
    std::ifstream in(s.path, std::ios::binary);
    b.assign(std::istreambuf_iterator<char>(in), {});
  }
  auto u16 = [&](size_t at) { return size_t(uint8_t(b[at])) | size_t(uint8_t(b[at + 1])) << 8; };
  const size_t eocd = b.rfind(std::string("PK\x05\x06", 4));
  ASSERT_NE(eocd, std::string::npos);
  ASSERT_EQ(b.compare(eocd - 20, 4, std::string("PK\x06\x07", 4)), 0) << "LibTorch writes zip64 records";
  for (size_t k = 8; k < 12; ++k) b[eocd + k] = 0;  // entries on this disk, entries in all
  // The first byte of data.pkl's contents: after its local header, name and extra field.
  const size_t name = b.find("/data.pkl");
  ASSERT_NE(name, std::string::npos);
  const size_t header = b.rfind(std::string("PK\x03\x04", 4), name);
  ASSERT_NE(header, std::string::npos);
  b[header + 30 + u16(header + 26) + u16(header + 28)] ^= 0x01;
  const auto damaged = dir.file("damaged.pt");
  std::ofstream(damaged, std::ios::binary) << b;
  const auto msg = load_error(damaged);
  EXPECT_NE(msg.find(damaged + ": not a readable crnn model file (zip entry '"), std::string::npos) << msg;
  EXPECT_NE(msg.find("data.pkl' fails its CRC-32 check)"), std::string::npos) << msg;
}

// 50 flipped bits anywhere in the file, 200 times: each load gives the saved
// model exactly or a DataError naming the file — never other weights, never
// another exception (damaged bytes reach LibTorch's pickler and TorchScript
// importer, whose errors are not c10::Errors).
TEST(Checkpoint, RandomByteFlipsNeverLoadAsAnotherModel) {
  test::TempDir dir;
  auto s = test::save_tiny_model(dir, "m.pt");
  std::string bytes;
  {
    std::ifstream in(s.path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  std::mt19937 rng(3);
  for (int trial = 0; trial < 200; ++trial) {
    std::string damaged = bytes;
    for (int k = 0; k < 50; ++k)
      damaged[std::uniform_int_distribution<size_t>(0, damaged.size() - 1)(rng)] ^=
          static_cast<char>(1 << std::uniform_int_distribution<int>(0, 7)(rng));
    const auto path = dir.file("d" + std::to_string(trial) + ".pt");
    std::ofstream(path, std::ios::binary) << damaged;
    const auto outcome = load_outcome(path, s.model);
    EXPECT_TRUE(outcome == "same" || outcome == "error") << "trial " << trial << ": " << outcome;
  }
}

// A model whose embedded config has a key this build does not declare was
// most likely written by a newer crnn: said so, not "corrupt".
TEST(Checkpoint, AConfigKeyFromANewerCrnnIsNamedAsSuch) {
  test::TempDir dir;
  test::save_tiny_model(dir, "m.pt");
  // A key this crnn does not declare, as a newer crnn's file would have
  // (edit_model_file asserts that the config has the line it replaces).
  edit_model_file(dir.file("m.pt"), dir.file("newer.pt"), "\ndense_size = ", "\ndropout    = ");
  const std::string e = load_error(dir.file("newer.pt"));
  EXPECT_TRUE(test::contains(e, "the model's config has a key this crnn (" CRNN_VERSION ") does not know, so it was "
                                "probably written by a newer crnn"))
      << e;
  EXPECT_TRUE(test::contains(e, "model.dropout: unknown key")) << e;
}

// A run directory stands for its best.pt; one without it says why, with the way on.
TEST(Checkpoint, ModelFileOfARunDirectory) {
  test::TempDir dir;
  std::filesystem::create_directories(dir.path() / "run");
  EXPECT_EQ(test::error_of([&] { train::model_file(dir.file("run")); }),
            dir.file("run") + ": not a run directory (no best.pt or config.toml); give a run directory made by "
                              "`crnn train` or a model file");
  std::ofstream(dir.file("run/config.toml")) << "";
  EXPECT_EQ(test::error_of([&] { train::model_file(dir.file("run")); }),
            dir.file("run") + ": no model yet (no best.pt): the run has not finished its first epoch; continue it "
                              "with `crnn train --resume " + dir.file("run") + "`");
  std::ofstream(dir.file("run/best.pt")) << "";
  EXPECT_EQ(train::model_file(dir.file("run")), dir.file("run/best.pt"));
  // load_model takes a file: a run directory is named as such, not as a corrupt file.
  EXPECT_EQ(test::error_of([&] { train::load_model(dir.file("run")); }),
            dir.file("run") + ": a directory, not a model file (a run directory's model file is " +
                dir.file("run/best.pt") + ": train::model_file(dir))");
  EXPECT_EQ(train::model_file(dir.file("m.pt")), dir.file("m.pt"));  // a file (existing or not) is itself
}
