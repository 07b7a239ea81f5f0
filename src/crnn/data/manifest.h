#pragma once
/// \file manifest.h
/// The generic CSV manifest: one row per utterance, any corpus, no code.
///
/// Format (docs/manifest.md): a header row naming the columns `id`, `path`,
/// `speaker`, optionally `split` (train / valid / test), and one column per
/// task label with any name. Column order is free. Relative paths resolve
/// against the manifest file's directory.
///
/// \code
///   id,path,speaker,split,emotion
///   a01,wav/a01.wav,spk1,train,happy
///   a02,wav/a02.wav,spk2,test,"sad"
/// \endcode
///
/// \code
///   auto m = crnn::data::Manifest::read("corpus.csv");
///   for (const auto& task : m.tasks()) {
///     auto labels = crnn::data::LabelSet::from_manifest(m, task);  // sorted
///     int64_t y = labels.index(m[0].labels.at(task));
///   }
///   for (const auto& problem : m.validate_paths()) std::cerr << problem << "\n";
/// \endcode

#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "crnn/data/error.h"

namespace crnn::data {

/// The split names a manifest may use (an empty split means "not assigned").
inline const std::vector<std::string>& split_names() {
  static const std::vector<std::string> names{"train", "valid", "test"};
  return names;
}

/// One utterance (one audio file) of a corpus.
struct Utterance {
  std::string id;       ///< unique within the manifest
  std::string path;     ///< audio file; absolute after Manifest::read
  std::string speaker;  ///< speaker (or other grouping) id; splits never share one
  /// task name → label string. A task missing here (an empty CSV cell) means
  /// "no label for this task".
  std::map<std::string, std::string> labels;
  std::string split;  ///< "train", "valid", "test" or "" (none)
  /// Where it was read ("corpus.csv:12"), for messages; "" when built in code.
  std::string origin;

  /// The label for `task`, or "" when the utterance has none.
  const std::string& label(const std::string& task) const;
};

struct ManifestWriteOptions {
  /// Write paths relative to the manifest's directory (portable corpus +
  /// manifest bundles); otherwise as stored (absolute after read).
  bool relative_paths = false;
  /// Write a `split` column even when no utterance has a split.
  bool always_write_split = false;
};

/// An ordered list of utterances with unique ids and a fixed set of tasks.
class Manifest {
 public:
  Manifest() = default;
  /// An empty manifest with the given task columns (in this order).
  explicit Manifest(std::vector<std::string> tasks);

  /// Reads a CSV manifest. Throws DataError naming the file and line for
  /// malformed CSV, a missing required column, an empty id/path/speaker, a
  /// duplicate id, an unknown split value, text that is not UTF-8, or no rows at all.
  static Manifest read(const std::string& path);
  /// Parses CSV text; `base_dir` resolves relative paths and `source` names
  /// the input in error messages.
  static Manifest parse(const std::string& text, const std::string& base_dir,
                        const std::string& source = "<manifest>");

  /// Writes the manifest atomically (a temporary file in the same directory,
  /// then rename), so a crash never leaves a half-written manifest behind.
  void write(const std::string& path, const ManifestWriteOptions& options = {}) const;
  /// The CSV text that write() would store (paths as stored).
  std::string to_csv(const std::string& base_dir = "",
                     const ManifestWriteOptions& options = {}) const;

  /// Appends an utterance. Throws DataError on an empty id/path/speaker, a
  /// duplicate id, an unknown split, or a label for a task this manifest
  /// does not have.
  void add(Utterance utterance);

  const std::vector<std::string>& tasks() const { return tasks_; }
  bool has_task(const std::string& task) const;
  /// True when at least one utterance has a split.
  bool has_split() const;

  const std::vector<Utterance>& utterances() const { return utterances_; }
  size_t size() const { return utterances_.size(); }
  bool empty() const { return utterances_.empty(); }
  const Utterance& operator[](size_t i) const { return utterances_[i]; }
  /// Mutable access (e.g. to assign splits); the id must not be changed.
  Utterance& mutable_at(size_t i) { return utterances_.at(i); }
  /// The utterance with this id; throws DataError if absent.
  const Utterance& find(const std::string& id) const;
  bool contains(const std::string& id) const { return index_.count(id) > 0; }

  /// Sorted distinct speakers.
  std::vector<std::string> speakers() const;
  /// The utterances whose split equals `split` ("" selects unassigned ones),
  /// in manifest order, as a new manifest with the same tasks.
  Manifest subset(const std::string& split) const;

  /// One message per utterance whose audio file does not exist or is not a
  /// regular file, e.g. "a01: file not found: /data/a01.wav". Empty = all good.
  std::vector<std::string> validate_paths() const;

 private:
  std::vector<std::string> tasks_;
  std::vector<Utterance> utterances_;
  std::unordered_map<std::string, size_t> index_;
};

/// Maps the label strings of one task to class indices 0..n-1.
///
/// The order is part of a trained model's meaning, so it is explicit: either
/// sorted (byte-wise, `from_manifest`) or a fixed order (a recipe's natural
/// order, e.g. child, youth, adult).
///
/// \code
///   LabelSet s({"child", "youth", "adult"});
///   s.index("youth");   // 1
///   s.index("elder");   // throws: unknown label 'elder' (known: child, youth, adult)
/// \endcode
class LabelSet {
 public:
  LabelSet() = default;
  /// Fixed order; throws DataError on duplicate or empty names.
  explicit LabelSet(std::vector<std::string> names, std::string task = "");

  /// The distinct non-empty labels of `task`, sorted byte-wise. If `order` is
  /// given, that order is used instead and every label of the manifest must
  /// be in it.
  static LabelSet from_manifest(const Manifest& manifest, const std::string& task,
                                const std::vector<std::string>& order = {});

  /// Class index of `label`; throws DataError naming the label, the task and
  /// the known labels if it is unknown.
  int64_t index(const std::string& label) const;
  /// Class index of `u`'s label for `task`; an unknown one throws DataError
  /// naming where the row was read and the utterance ("corpus.csv:12:
  /// utterance 'x': unknown label 'angyr' for task 'emotion' (known: ...)").
  int64_t index_of(const Utterance& u, const std::string& task) const;
  bool contains(const std::string& label) const { return index_.count(label) > 0; }
  const std::string& name(int64_t index) const;
  const std::vector<std::string>& names() const { return names_; }
  int64_t size() const { return static_cast<int64_t>(names_.size()); }
  const std::string& task() const { return task_; }

 private:
  std::string task_;
  std::vector<std::string> names_;
  std::map<std::string, int64_t> index_;
};

namespace csv {
/// Parses RFC 4180 CSV: comma separated, fields optionally in double quotes,
/// "" is a quote inside a quoted field, quoted fields may hold commas and line
/// breaks, records end in LF or CRLF. A UTF-8 byte-order mark is skipped and
/// blank lines are ignored. Each record carries the line it starts on.
/// Throws DataError ("source:line: unterminated quoted field", …).
struct Record {
  size_t line = 0;
  std::vector<std::string> fields;
};
std::vector<Record> parse(const std::string& text, const std::string& source);
/// Quotes a field if it needs it (comma, quote, CR, LF, or edge spaces).
std::string quote(const std::string& field);
}  // namespace csv

}  // namespace crnn::data
