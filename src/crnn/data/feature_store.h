#pragma once
/// \file feature_store.h
/// On-disk store of per-utterance feature matrices (HDF5).
///
/// Layout of a store file:
///   /                     attributes: format ("crnn-features-1"), sample_rate (int64),
///                         frame_shift_ms (double), feature_names (string array),
///                         extractor (string: every extractor option, see audio::describe)
///   /features/<id>        float32 dataset, frames x features, one per utterance;
///                         attributes source (the audio file), source_bytes,
///                         source_mtime_ns and source_crc32 (its FileStamp),
///                         crc32 (CRC-32 of the float32 bytes) and, after the
///                         data, complete = 1
/// Ids are stored with '%' and '/' percent-escaped ("a/b" -> "a%2Fb"), since
/// '/' separates HDF5 path components; ids() returns the original ids, in
/// the order they were written.
///
/// Durability and resume (docs/reliability.md): every write() creates the
/// dataset, writes the data, its checksum, then the `complete` mark, and calls
/// H5Fflush, so a run that is interrupted loses at most the utterance being
/// written:
///   - a dataset without the mark (killed between create and flush) is
///     invisible to contains()/ids()/read() and deleted when the file is
///     opened for Append, so a resumed run rewrites it;
///   - a marked dataset whose bytes do not match its checksum (a flush that
///     failed on a full disk after the mark was written, or later damage) is
///     refused by read() naming the utterance, and deleted and recomputed by
///     an Append open, which checks every row (discarded_damaged());
///   - a kill *inside* H5Fflush can leave the HDF5 metadata unreadable (HDF5
///     has no journal), and libhdf5 may then crash while reading it. open()
///     first walks the file in a child process, so that such a file gives an
///     error naming it and saying to regenerate it, never a crash. A crash
///     inside one row's checks sets that row aside (absent; recomputed by an
///     Append open), as does a row whose header libhdf5 cannot read;
///   - damaged rows are never deleted in place (libhdf5 crashed freeing their
///     space; a damaged header cannot be deleted at all, which blocked the id
///     for good): an Append open copies the good rows into a new file that
///     replaces the store (the old file untouched until the rename).
/// Rows written before checksums existed are read without the check.
///
/// \code
///   auto store = crnn::data::FeatureStore::open("feats.h5", FeatureStore::Mode::Append);
///   if (!store.has_attributes()) store.set_attributes({16000, 10.0, names, "kaldi-fbank ..."});
///   if (!store.contains("utt1")) store.write("utt1", feats);   // frames x features
///   torch::Tensor x = store.read("utt1");
/// \endcode
///
/// Not thread-safe: use one FeatureStore from one thread at a time.

#include <torch/torch.h>

#include <cstdint>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "crnn/util/file_stamp.h"

namespace crnn::data {

/// Most frames one stored matrix may have: 10^8 frames of 10 ms are 11.6 days.
inline constexpr unsigned long long kMaxStoredFrames = 100'000'000ULL;
/// Most features per frame a stored matrix may have.
inline constexpr unsigned long long kMaxStoredWidth = 65'536ULL;
/// Most values (frames × features) a stored matrix may have: 2^31 floats, 8 GiB.
inline constexpr unsigned long long kMaxStoredValues = 1ULL << 31;
/// Largest feature magnitude read() accepts. Log mel energies stay within a
/// few hundred, eGeMAPS LLDs (Hz, dB) within 10^5; 3e38 in a row is damage.
inline constexpr double kMaxFeatureMagnitude = 1e9;

/// Any failure of the feature store; `what()` starts with the file name.
class FeatureStoreError : public std::runtime_error {
 public:
  FeatureStoreError(std::string path, const std::string& problem);
  const std::string& path() const noexcept { return path_; }

 private:
  std::string path_;
};

/// File-level description of the stored features.
struct FeatureAttributes {
  int64_t sample_rate = 0;                 ///< audio rate the features were computed at, Hz
  double frame_shift_ms = 0.0;             ///< time between consecutive rows
  std::vector<std::string> feature_names;  ///< one per column
  std::string extractor;                   ///< all extractor options, one line
};

class FeatureStore {
 public:
  enum class Mode {
    Read,      ///< existing file, read only
    Append,    ///< create if missing, else keep contents and add (resume)
    Truncate,  ///< create, discarding an existing file
  };

  /// Opens (or creates) `path`. Throws FeatureStoreError naming the file if
  /// it is missing (Read), not an HDF5 file, not a crnn feature store,
  /// locked by another process, or corrupt.
  static FeatureStore open(const std::string& path, Mode mode);

  FeatureStore(FeatureStore&& other) noexcept;
  FeatureStore& operator=(FeatureStore&& other) noexcept;
  FeatureStore(const FeatureStore&) = delete;
  FeatureStore& operator=(const FeatureStore&) = delete;
  ~FeatureStore();

  const std::string& path() const { return path_; }

  /// True if a complete matrix for `id` is stored.
  bool contains(const std::string& id) const;
  /// Stores `features` (2-D, any floating dtype; saved as float32) under `id`
  /// and flushes the file. Throws if `id` is already stored or the store is
  /// read-only. A non-empty `source` (the audio path) is kept with the matrix,
  /// and a known `stamp` (what that file held when the features were computed).
  void write(const std::string& id, const torch::Tensor& features, const std::string& source = "",
             const FileStamp& stamp = {});
  /// The source recorded by write() for `id`; empty if none was (or for files
  /// written before sources were recorded).
  std::string source(const std::string& id) const;
  /// The stamp recorded by write() for `id`; unknown (bytes = -1) if none was.
  FileStamp source_stamp(const std::string& id) const;
  /// Deletes the matrix stored under `id` (to compute it again) and flushes.
  /// Throws if it is absent or the store is read-only.
  void remove(const std::string& id);
  /// The frames x features float32 matrix stored under `id`. Throws
  /// FeatureStoreError if it is absent, declares more than kMaxStoredFrames
  /// frames, kMaxStoredWidth features or kMaxStoredValues values, or holds NaN
  /// or ±inf.
  torch::Tensor read(const std::string& id) const;
  /// Ids of all complete matrices, in the order they were written.
  std::vector<std::string> ids() const;
  /// Ids of incomplete datasets that open(..., Append) deleted.
  const std::vector<std::string>& discarded_incomplete() const { return discarded_; }
  /// Ids of complete datasets that failed their checksum and open(..., Append) deleted.
  const std::vector<std::string>& discarded_damaged() const { return damaged_; }

  /// Ids of rows this open set aside as damaged (a header libhdf5 cannot read,
  /// or one that crashed it): absent from ids() and contains(); an Append open
  /// drops them (discarded_damaged) for recomputing.
  std::vector<std::string> set_aside() const;
  /// True once set_attributes has been called on this file.
  bool has_attributes() const;
  FeatureAttributes attributes() const;
  /// Writes the file attributes (replacing previous ones) and flushes.
  void set_attributes(const FeatureAttributes& attributes);
  int64_t sample_rate() const { return attributes().sample_rate; }
  double frame_shift_ms() const { return attributes().frame_shift_ms; }
  std::vector<std::string> feature_names() const { return attributes().feature_names; }
  std::string extractor() const { return attributes().extractor; }

  /// Flushes buffered data and metadata to disk.
  void flush();

 private:
  FeatureStore(std::string path, int64_t file, int64_t group, bool writable);
  void close() noexcept;
  /// A complete row whose header can be read (escaped name).
  bool complete(const std::string& name) const;
  /// Why `id` has no readable row, for the error.
  std::string no_features(const std::string& id) const;
  /// `old` (opened for Append) without its damaged and incomplete rows: every
  /// good row copied into a new file that then replaces the old one.
  static FeatureStore rewritten(FeatureStore&& old);

  std::string path_;
  int64_t file_ = -1;   // hid_t
  int64_t group_ = -1;  // hid_t of /features
  bool writable_ = false;
  std::vector<std::string> names_;  // link names under /features (escaped ids); see open()
  std::set<std::string> unreadable_;  // rows whose header libhdf5 cannot read: never touched
  std::vector<std::string> discarded_;
  std::vector<std::string> damaged_;
};

/// Stored ids whose recorded audio file is not the one `paths` names for them
/// (compared by file name, so a corpus moved or mounted elsewhere keeps its
/// features), as "'id': stored from A, the manifest now names B". Ids not
/// stored, or stored without a source, are skipped. `features`, `train` and
/// `eval` refuse such a store: it would give one file's features to another.
std::vector<std::string> moved_sources(const FeatureStore& store,
                                       const std::vector<std::pair<std::string, std::string>>& id_paths);

/// Stored ids whose audio file, named by `id_paths`, now holds other bytes
/// than when their features were computed (util/file_stamp.h: size, time and
/// content): re-recorded or edited in place under the same name. Rows without
/// a stamp and files that cannot be inspected are skipped. `features`
/// recomputes these rows; `train` and `eval` refuse a store holding any.
std::vector<std::string> changed_sources(const FeatureStore& store,
                                         const std::vector<std::pair<std::string, std::string>>& id_paths);

/// '%' -> "%25", '/' -> "%2F", "." -> "%2E": an id as an HDF5 link name.
std::string escape_id(const std::string& id);
/// Inverse of escape_id.
std::string unescape_id(const std::string& name);

}  // namespace crnn::data
