#include "crnn/data/feature_store.h"

#include <fmt/core.h>
#include <hdf5.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <filesystem>
#include <set>
#include <type_traits>

#include "crnn/audio/fbank.h"
#include "crnn/util/checksum.h"
#include "crnn/util/file_io.h"

namespace crnn::data {
namespace fs = std::filesystem;
static_assert(std::is_same_v<hid_t, int64_t>, "HDF5 >= 1.10 (64-bit hid_t) expected");

FeatureStoreError::FeatureStoreError(std::string path, const std::string& problem)
    : std::runtime_error(fmt::format("{}: {}", path, problem)), path_(std::move(path)) {}

namespace {

constexpr const char* kGroup = "features";
constexpr const char* kFormat = "crnn-features-1";
constexpr const char* kComplete = "complete";
constexpr const char* kSource = "source";  // the audio file a matrix was computed from
constexpr const char* kCrc = "crc32";      // CRC-32 of the matrix's float32 bytes (little-endian)
// The source file's FileStamp when the matrix was computed from it.
constexpr const char* kSourceBytes = "source_bytes";
constexpr const char* kSourceMtime = "source_mtime_ns";
constexpr const char* kSourceCrc = "source_crc32";

// HDF5 prints its error stack to stderr by default; we report errors
// ourselves. With the thread-safe library the setting is per thread.
//
// Before libhdf5 starts, it is also told not to shut itself down at exit
// (H5dont_atexit). A file whose H5Fclose fails (a full disk, a file size
// limit) is freed by libhdf5 1.10.8 but left in its table of open files, and
// the shutdown at exit closed it again: a segfault after crnn had already
// printed its error (HDFGroup/hdf5 HDFFV-11052, fixed in later releases).
// Nothing is lost by skipping the shutdown: every store is closed by its
// owner, and each row is flushed as it is written (a process that dies
// without closing is the kill -9 case the store is built for).
void silence_hdf5() {
  static const bool no_shutdown_at_exit = [] { return H5dont_atexit() >= 0; }();
  (void)no_shutdown_at_exit;
  thread_local bool done = false;
  if (!done) {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    done = true;
  }
}

// Closes an HDF5 handle at scope exit.
struct Handle {
  hid_t id;
  herr_t (*closer)(hid_t);
  Handle(hid_t i, herr_t (*c)(hid_t)) : id(i), closer(c) {}
  ~Handle() {
    if (id >= 0) closer(id);
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  operator hid_t() const { return id; }
  bool ok() const { return id >= 0; }
};

bool link_exists(hid_t loc, const std::string& name) {
  return H5Lexists(loc, name.c_str(), H5P_DEFAULT) > 0;
}

bool is_complete(hid_t group, const std::string& name) {
  if (!link_exists(group, name)) return false;
  return H5Aexists_by_name(group, name.c_str(), kComplete, H5P_DEFAULT) > 0;
}

herr_t collect_name(hid_t, const char* name, const H5L_info_t*, void* out) {
  static_cast<std::vector<std::string>*>(out)->emplace_back(name);
  return 0;
}

std::vector<std::string> link_names(hid_t group) {
  std::vector<std::string> names;
  hsize_t idx = 0;
  // Creation order is tracked on /features (see create_group), so ids come
  // back in the order they were written.
  if (H5Literate(group, H5_INDEX_CRT_ORDER, H5_ITER_INC, &idx, collect_name, &names) < 0) {
    // A group made by another tool may not track creation order.
    names.clear();
    idx = 0;
    H5Literate(group, H5_INDEX_NAME, H5_ITER_INC, &idx, collect_name, &names);
  }
  return names;
}

/// Why a row's storage is not what FeatureStore::write makes — little-endian
/// 32-bit floats, contiguous, dims[0] × dims[1] values inside the file — or ""
/// when it is. libhdf5 trusts these fields when it reads; fuzzing found a
/// damaged element size (libhdf5 allocated a 4 GB conversion buffer inside
/// H5Dread), a layout turned compact with no bytes behind it (memcpy past the
/// buffer: SIGSEGV in the reading process) and a size larger than the file
/// (gigabytes allocated for a file of a few KB).
std::string storage_damage(hid_t dset, const hsize_t dims[2]) {
  Handle file(H5Iget_file_id(dset), H5Fclose);
  hsize_t file_bytes = 0;
  if (!file.ok() || H5Fget_filesize(file, &file_bytes) < 0) return "cannot be located in its file";
  const hsize_t values = dims[0] * dims[1];  // bounded by kMaxStored* before this is called
  if (values > file_bytes / sizeof(float))
    return fmt::format("declares {} × {} values, more than the whole file holds", dims[0], dims[1]);
  Handle type(H5Dget_type(dset), H5Tclose);
  if (!type.ok() || H5Tequal(type, H5T_IEEE_F32LE) <= 0) return "is not stored as 32-bit floats (as crnn writes them)";
  if (values == 0) return "";
  // The file address of the values: defined only for contiguous storage that
  // was written. Not H5Dget_create_plist: copying the creation properties
  // (fill value, filters) of a damaged dataset crashed libhdf5 now and then
  // (FeatureStore.ByteFlippedFilesGiveErrorsNeverCrashesOrWrongRows).
  const haddr_t offset = H5Dget_offset(dset);
  if (offset == HADDR_UNDEF) return "is not stored as one contiguous block (as crnn writes it)";
  const hsize_t stored = H5Dget_storage_size(dset);
  if (stored != values * sizeof(float) || offset > file_bytes || stored > file_bytes - offset)
    return fmt::format("declares {} × {} values, but its storage ({} bytes) does not hold them inside the file",
                       dims[0], dims[1], stored);
  return "";
}

/// Reads a complete dataset's matrix and whether it matches its stored CRC
/// (true for rows written before checksums existed). False if unreadable.
bool row_intact(hid_t group, const std::string& name) {
  Handle dset(H5Dopen2(group, name.c_str(), H5P_DEFAULT), H5Dclose);
  if (!dset.ok()) return false;
  if (H5Aexists(dset, kCrc) <= 0) return true;
  Handle space(H5Dget_space(dset), H5Sclose);
  if (!space.ok() || H5Sget_simple_extent_ndims(space) != 2) return false;
  hsize_t dims[2];
  H5Sget_simple_extent_dims(space, dims, nullptr);
  if (dims[0] > kMaxStoredFrames || dims[1] > kMaxStoredWidth || (dims[1] > 0 && dims[0] > kMaxStoredValues / dims[1]) ||
      !storage_damage(dset, dims).empty())
    return false;
  std::vector<float> data(static_cast<size_t>(dims[0] * dims[1]));
  if (!data.empty() && H5Dread(dset, H5T_IEEE_F32LE, H5S_ALL, H5S_ALL, H5P_DEFAULT, data.data()) < 0) return false;
  uint32_t stored = 0;
  Handle attr(H5Aopen(dset, kCrc, H5P_DEFAULT), H5Aclose);
  if (!attr.ok() || H5Aread(attr, H5T_NATIVE_UINT32, &stored) < 0) return false;
  return crnn::crc32(data.data(), data.size() * sizeof(float)) == stored;
}

std::vector<std::string> read_string_attr(hid_t loc, const char* name);

/// In the probe child: reads a string attribute of `object` (relative to
/// `loc`) if it exists, for the crash it may cause. One that exists but cannot
/// be read, or holds a string longer than any path or extractor line, is
/// damage: the child exits with status 6, which the parent reports.
void read_strings_quietly(hid_t loc, const char* object, const char* attr) {
  if (H5Aexists_by_name(loc, object, attr, H5P_DEFAULT) <= 0) return;
  const hid_t obj = H5Oopen(loc, object, H5P_DEFAULT);
  if (obj < 0) return;
  try {
    for (const auto& v : read_string_attr(obj, attr))
      if (v.size() > (1u << 20)) _exit(6);
  } catch (const std::exception&) {
    _exit(6);
  }
  H5Oclose(obj);
}

/// In the probe child: caps its address space at what it uses now plus 1 GiB,
/// so that a damaged length makes libhdf5's allocation fail (an error the
/// child reports) instead of succeeding and copying gigabytes of garbage.
void cap_probe_memory() {
#if defined(__SANITIZE_ADDRESS__)
  return;  // ASan reserves terabytes of shadow memory; its own allocator refuses a 4 GB request.
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
  return;
#endif
#endif
  long pages = 0;
  if (FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld", &pages) != 1) pages = 0;
    std::fclose(f);
  }
  if (pages <= 0) return;
  const rlim_t now = static_cast<rlim_t>(pages) * static_cast<rlim_t>(sysconf(_SC_PAGE_SIZE));
  const rlimit cap{now + (rlim_t{1} << 30), now + (rlim_t{1} << 30)};
  setrlimit(RLIMIT_AS, &cap);
}

/// Longest a probe child may go without reading one more row: a row is at most
/// kMaxStoredValues floats, read in well under a second from any local disk.
/// CRNN_PROBE_STALL_SECONDS (1..20) shortens it for the fuzz target and the
/// tests, where inputs that make libhdf5 loop would otherwise cost 20 s each.
int probe_stall_seconds() {
  constexpr int kDefault = 20;
  const char* v = std::getenv("CRNN_PROBE_STALL_SECONDS");
  if (v == nullptr) return kDefault;
  const int s = std::atoi(v);
  return s >= 1 && s <= kDefault ? s : kDefault;
}

/// Opens `path` read-only in a child process and walks what open() and a
/// resume touch: the link table of /features, every complete row's source and
/// the file attributes, and, with `verify_rows`, every complete row against its
/// checksum. Why a child: a file cut off inside an
/// HDF5 metadata write (kill -9 during a flush) can make libhdf5 itself abort
/// or corrupt memory while iterating links (free(): invalid pointer); in a
/// child that costs the child, and the caller gets a message instead of a
/// crash. Returns the link names of /features as the child read them (the
/// parent never iterates the link table itself: that libhdf5 bug frees
/// uninitialized pointers, so whether it crashes depends on the heap's
/// contents, and a child that came through says nothing about a second walk;
/// FeatureStore.ByteFlippedFilesGiveErrorsNeverCrashesOrWrongRows caught the
/// parent's walk crashing after the child's had not) and the rows that failed
/// their check; throws FeatureStoreError when the child died, exited
/// unexpectedly or stalled.
struct ProbeResult {
  bool ran = false;                  ///< false: no pipe or no fork; the caller reads the links itself
  std::vector<std::string> names;    ///< every link under /features, in creation order
  std::vector<std::string> damaged;  ///< complete rows that fail their checksum (verify_rows)
  /// Rows whose object header libhdf5 cannot read (asking for the completion
  /// mark is an error, not "no"): the parent never touches them, since libhdf5
  /// may crash in them (seen in H5Aexists_by_name) and cannot delete them.
  std::vector<std::string> unreadable;
  /// The row the child was checking when it crashed or stalled ("" if it did
  /// not, or not inside a row): probe_rows checks again without it.
  std::string crashed_in;
};

ProbeResult probe_in_child(const std::string& path, bool verify_rows, const std::set<std::string>& skip) {
  int fds[2];
  if (pipe(fds) != 0) return {};  // no probe possible: open as before
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    return {};
  }
  if (pid == 0) {
    // A child that makes libhdf5 loop must not outlive a parent killed
    // meanwhile (the parent's stall timer is gone with it): it would spin
    // forever, orphaned (seen when fuzzing runs were interrupted).
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(4);  // the parent died before prctl
    close(fds[0]);
    cap_probe_memory();
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    if (file < 0) _exit(3);  // the parent's own open reports it
    if (H5Lexists(file, kGroup, H5P_DEFAULT) > 0) {
      const hid_t group = H5Gopen2(file, kGroup, H5P_DEFAULT);
      if (group >= 0) {
        for (const auto& name : link_names(group)) {
          // The name, which is also progress for the parent's stall timer.
          const std::string link = 'L' + name + '\0';
          if (write(fds[1], link.data(), link.size()) != static_cast<ssize_t>(link.size())) _exit(4);
          if (skip.count(name)) continue;  // crashed an earlier probe: not touched again
          // Testing seam: libhdf5 crashing inside this row's header (FeatureStore tests).
          if (const char* crash = std::getenv("CRNN_TEST_PROBE_CRASH_ROW"); crash != nullptr && name == crash)
            raise(SIGSEGV);
          const htri_t complete = H5Aexists_by_name(group, name.c_str(), kComplete, H5P_DEFAULT);
          if (complete < 0) {
            const std::string line = 'U' + name + '\0';
            if (write(fds[1], line.data(), line.size()) != static_cast<ssize_t>(line.size())) _exit(4);
            continue;
          }
          if (complete == 0) continue;
          // The row's source attribute too: a damaged string length in HDF5's
          // global heap makes libhdf5 allocate that much (4 GB in the fuzzed
          // store of tests/fixtures/fuzz-regressions/feature_store/) and read
          // it; source() and data::moved_sources read every row's.
          read_strings_quietly(group, name.c_str(), kSource);
          if (!verify_rows || row_intact(group, name)) continue;
          const std::string line = 'D' + name + '\0';
          if (write(fds[1], line.data(), line.size()) != static_cast<ssize_t>(line.size())) _exit(4);
        }
      }
    }
    // Past the rows: a failure from here on is not one row's.
    if (write(fds[1], "E\0", 2) != 2) _exit(4);
    read_strings_quietly(file, ".", "feature_names");  // what attributes() reads
    read_strings_quietly(file, ".", "extractor");
    // _exit, not exit: no atexit handlers (HDF5's would flush the parent's open files from here).
    _exit(0);
  }
  close(fds[1]);
  // A damaged global heap can also make libhdf5 loop forever (fuzzing found
  // one in H5HG_read, tests/fixtures/fuzz-regressions/feature_store/): a child
  // that reports no progress for probe_stall_seconds() is killed.
  const int stall_seconds = probe_stall_seconds();
  std::string out;
  char buf[4096];
  bool stalled = false;
  while (true) {
    pollfd p{fds[0], POLLIN, 0};
    const int ready = poll(&p, 1, stall_seconds * 1000);
    if (ready == 0) {
      stalled = true;
      kill(pid, SIGKILL);
      break;
    }
    const ssize_t n = ready < 0 ? -1 : read(fds[0], buf, sizeof buf);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    out.append(buf, static_cast<size_t>(n));
  }
  close(fds[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  ProbeResult result;
  std::string last;  // the last record: 'L' + the row being checked, or "E" past the rows
  for (size_t start = 0, end; (end = out.find('\0', start)) != std::string::npos; start = end + 1) {
    if (end == start) continue;
    last = out.substr(start, end - start);
    if (last[0] == 'E') continue;
    auto& list = last[0] == 'L' ? result.names : last[0] == 'D' ? result.damaged : result.unreadable;
    list.push_back(last.substr(1));
  }
  const bool failed = stalled || WIFSIGNALED(status) ||
                      (WIFEXITED(status) && WEXITSTATUS(status) != 0 && WEXITSTATUS(status) != 3 &&
                       WEXITSTATUS(status) != 4);
  // Inside one row's checks: that row is damaged, the others may be fine.
  if (failed && !last.empty() && last[0] == 'L') {
    result.crashed_in = last.substr(1);
    return result;
  }
  if (stalled)
    throw FeatureStoreError(path, fmt::format("the HDF5 file is damaged (reading its index made libhdf5 loop: no "
                                              "progress in {} s): delete it and run `crnn features` again to "
                                              "recompute the features",
                                              stall_seconds));
  if (WIFSIGNALED(status))
    throw FeatureStoreError(path, fmt::format("the HDF5 file is damaged (reading its index crashed libhdf5 with signal "
                                              "{}; a run killed inside a write can leave it so): delete it and run "
                                              "`crnn features` again to recompute the features",
                                              WTERMSIG(status)));
  // Any other exit than the child's own: it ended inside libhdf5 (a sanitizer
  // or allocation limit ends a process so; libhdf5 may call exit itself).
  if (failed)
    throw FeatureStoreError(path, fmt::format("the HDF5 file is damaged (reading its index ended the checking process "
                                              "with exit status {}): delete it and run `crnn features` again to "
                                              "recompute the features",
                                              WEXITSTATUS(status)));
  result.ran = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  return result;
}

/// probe_in_child, again without each row that crashed (or stalled) it, up to
/// kMaxCrashingRows of them: those rows are unreadable (never touched by this
/// process; recomputed by an Append open), the rest of the file is usable.
ProbeResult probe_rows(const std::string& path, bool verify_rows) {
  constexpr size_t kMaxCrashingRows = 20;
  std::set<std::string> skip;
  while (true) {
    ProbeResult r = probe_in_child(path, verify_rows, skip);
    if (r.crashed_in.empty()) {
      r.unreadable.insert(r.unreadable.end(), skip.begin(), skip.end());
      return r;
    }
    if (skip.size() >= kMaxCrashingRows || skip.count(r.crashed_in))
      throw FeatureStoreError(path, fmt::format("the HDF5 file is damaged ({} rows or more crash or hang libhdf5 when "
                                                "read): delete it and run `crnn features` again to recompute the "
                                                "features",
                                                skip.size() + 1));
    skip.insert(r.crashed_in);
  }
}

/// The file length libhdf5 recorded in the superblock (its end-of-file
/// address, which libhdf5 stores as an absolute offset), or 0 where that
/// cannot be read: no superblock of version 0–3 at offset 0 with 8-byte
/// addresses (how libhdf5 writes crnn's stores). Byte layout: the HDF5 file
/// format specification, "Format Signature and Superblock".
uint64_t recorded_length(const std::string& path) {
  unsigned char b[56] = {};
  std::ifstream in(path, std::ios::binary);
  in.read(reinterpret_cast<char*>(b), sizeof b);
  const auto got = static_cast<size_t>(in.gcount());
  static const unsigned char kSignature[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
  if (got < 16 || std::memcmp(b, kSignature, 8) != 0) return 0;
  const auto u64 = [&](size_t at) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = (v << 8) | b[at + static_cast<size_t>(i)];
    return v;
  };
  // The end-of-file address: after the base, superblock-extension (v2/3) or
  // free-space (v0/1) address; version 1 adds 4 bytes (indexed storage K).
  size_t eof_at = 0;
  switch (b[8]) {
    case 0: eof_at = b[13] == 8 ? 40 : 0; break;
    case 1: eof_at = b[13] == 8 ? 44 : 0; break;
    case 2:
    case 3: eof_at = b[9] == 8 ? 28 : 0; break;
    default: break;
  }
  if (eof_at == 0 || got < eof_at + 8) return 0;
  return u64(eof_at);
}

/// Lets a file cut short grow to `length` with zeros, unless another process
/// holds it (libhdf5 locks an open file with flock: that process's writes,
/// not a cut, may be what is missing) or it has grown since. 1: extended;
/// 0: left alone (held elsewhere, or no longer short); −1: failed, errno set.
int extend_to(const std::string& path, uint64_t length) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  int result = 0;
  if (::flock(fd, LOCK_EX | LOCK_NB) == 0) {  // held elsewhere: H5Fopen below says the file is locked
    struct stat st {};
    if (::fstat(fd, &st) == 0 && static_cast<uint64_t>(st.st_size) < length)
      result = ::ftruncate(fd, static_cast<off_t>(length)) == 0 ? 1 : -1;
  }
  const int err = errno;
  ::close(fd);  // releases the lock
  errno = err;
  return result;
}

/// A file that ends before its recorded length: a write cut short (a full
/// disk, a file size limit) after libhdf5 had recorded the new length. The
/// gap of such a cut is the last rows' bytes; a larger one is damage.
constexpr uint64_t kMaxCutShortBytes = uint64_t{1} << 30;

hid_t create_group(hid_t file) {
  Handle gcpl(H5Pcreate(H5P_GROUP_CREATE), H5Pclose);
  H5Pset_link_creation_order(gcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED);
  return H5Gcreate2(file, kGroup, H5P_DEFAULT, gcpl, H5P_DEFAULT);
}

void write_string_attr(hid_t loc, const char* name, const std::vector<std::string>& values,
                       bool scalar) {
  if (H5Aexists(loc, name) > 0) H5Adelete(loc, name);
  Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(type, H5T_VARIABLE);
  H5Tset_cset(type, H5T_CSET_UTF8);
  const hsize_t n = values.size();
  Handle space(scalar ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &n, nullptr), H5Sclose);
  Handle attr(H5Acreate2(loc, name, type, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  std::vector<const char*> ptrs;
  for (const auto& v : values) ptrs.push_back(v.c_str());
  if (!attr.ok() || (!ptrs.empty() && H5Awrite(attr, type, ptrs.data()) < 0))
    throw std::runtime_error(std::string("cannot write attribute ") + name);
}

std::vector<std::string> read_string_attr(hid_t loc, const char* name) {
  Handle attr(H5Aopen(loc, name, H5P_DEFAULT), H5Aclose);
  if (!attr.ok()) throw std::runtime_error(std::string("missing attribute ") + name);
  Handle space(H5Aget_space(attr), H5Sclose);
  const hssize_t n = H5Sget_simple_extent_npoints(space);
  Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(type, H5T_VARIABLE);
  // HDF5 does not convert between character sets: match what was written.
  Handle file_type(H5Aget_type(attr), H5Tclose);
  H5Tset_cset(type, H5Tget_cset(file_type));
  std::vector<char*> ptrs(static_cast<size_t>(std::max<hssize_t>(n, 0)), nullptr);
  if (n > 0 && H5Aread(attr, type, ptrs.data()) < 0)
    throw std::runtime_error(std::string("cannot read attribute ") + name);
  std::vector<std::string> out;
  for (char* p : ptrs) out.emplace_back(p ? p : "");
  if (n > 0) H5Dvlen_reclaim(type, space, H5P_DEFAULT, ptrs.data());
  return out;
}

template <typename T>
void write_scalar_attr(hid_t loc, const char* name, hid_t type, T value) {
  if (H5Aexists(loc, name) > 0) H5Adelete(loc, name);
  Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  Handle attr(H5Acreate2(loc, name, type, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  if (!attr.ok() || H5Awrite(attr, type, &value) < 0)
    throw std::runtime_error(std::string("cannot write attribute ") + name);
}

template <typename T>
T read_scalar_attr(hid_t loc, const char* name, hid_t type) {
  Handle attr(H5Aopen(loc, name, H5P_DEFAULT), H5Aclose);
  T value{};
  if (!attr.ok() || H5Aread(attr, type, &value) < 0)
    throw std::runtime_error(std::string("missing or unreadable attribute ") + name);
  return value;
}

}  // namespace

std::string escape_id(const std::string& id) {
  if (id == ".") return "%2E";
  std::string out;
  for (char c : id) {
    if (c == '%') out += "%25";
    else if (c == '/') out += "%2F";
    else out += c;
  }
  return out;
}

std::string unescape_id(const std::string& name) {
  std::string out;
  for (size_t i = 0; i < name.size(); ++i) {
    if (name[i] == '%' && i + 2 < name.size() && std::isxdigit(static_cast<unsigned char>(name[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(name[i + 2]))) {
      out += static_cast<char>(std::stoi(name.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      out += name[i];
    }
  }
  return out;
}

FeatureStore::FeatureStore(std::string path, int64_t file, int64_t group, bool writable)
    : path_(std::move(path)), file_(file), group_(group), writable_(writable) {}

FeatureStore::FeatureStore(FeatureStore&& other) noexcept
    : path_(std::move(other.path_)),
      file_(other.file_),
      group_(other.group_),
      writable_(other.writable_),
      names_(std::move(other.names_)),
      unreadable_(std::move(other.unreadable_)),
      discarded_(std::move(other.discarded_)),
      damaged_(std::move(other.damaged_)) {
  other.file_ = other.group_ = -1;
}

FeatureStore& FeatureStore::operator=(FeatureStore&& other) noexcept {
  if (this != &other) {
    close();
    path_ = std::move(other.path_);
    file_ = other.file_;
    group_ = other.group_;
    writable_ = other.writable_;
    names_ = std::move(other.names_);
    unreadable_ = std::move(other.unreadable_);
    discarded_ = std::move(other.discarded_);
    damaged_ = std::move(other.damaged_);
    other.file_ = other.group_ = -1;
  }
  return *this;
}

FeatureStore::~FeatureStore() { close(); }

void FeatureStore::close() noexcept {
  silence_hdf5();
  if (group_ >= 0) H5Gclose(group_);
  if (file_ >= 0) {
    if (writable_) H5Fflush(file_, H5F_SCOPE_GLOBAL);
    H5Fclose(file_);
  }
  group_ = file_ = -1;
}

FeatureStore FeatureStore::open(const std::string& path, Mode mode) {
  silence_hdf5();
  std::error_code ec;
  const bool exists = fs::exists(path, ec);
  if (mode == Mode::Read && !exists) throw FeatureStoreError(path, "file not found");
  if (exists && fs::is_directory(path, ec)) throw FeatureStoreError(path, "is a directory, not an HDF5 file");
  if (exists && mode != Mode::Truncate && H5Fis_hdf5(path.c_str()) <= 0)
    throw FeatureStoreError(path, "not an HDF5 file (or unreadable/corrupt)");
  if (exists && mode != Mode::Truncate) {
    // libhdf5 refuses a file shorter than its recorded length, and with it
    // every finished row. A resume takes the missing bytes as zeros (the
    // file grows to its recorded length): the rows that lost bytes fail
    // their checks and are recomputed, the others are kept.
    const uint64_t recorded = recorded_length(path), actual = fs::file_size(path, ec);
    if (!ec && recorded > actual) {
      const uint64_t missing = recorded - actual;
      if (mode == Mode::Read || missing > kMaxCutShortBytes)
        throw FeatureStoreError(
            path, fmt::format("the file ends {} bytes before its recorded length of {} bytes: a write was cut short "
                              "(a full disk, a file size limit){}",
                              missing, recorded,
                              missing > kMaxCutShortBytes
                                  ? ", or it is damaged; delete it and run `crnn features` again"
                                  : "; run `crnn features` with its manifest and -o again to keep its complete rows "
                                    "and recompute the rest"));
      const int extended = extend_to(path, recorded);
      if (extended < 0)
        throw FeatureStoreError(path, fmt::format("the file ends {} bytes before its recorded length (a write cut "
                                                  "short) and cannot be extended to it: {}",
                                                  missing, std::strerror(errno)));
      if (extended > 0)
        fmt::print(stderr,
                 "features: {}: the file ended {} bytes before its recorded length (a write cut short: a full disk, "
                 "a file size limit); the missing bytes are taken as zeros and the rows they held are recomputed\n",
                 path, missing);
    }
  }
  ProbeResult probe;
  if (exists && mode != Mode::Truncate) probe = probe_rows(path, /*verify_rows=*/mode == Mode::Append);

  hid_t file = -1;
  if (mode == Mode::Truncate || (mode == Mode::Append && !exists)) {
    file = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (file < 0)
      throw FeatureStoreError(path, "cannot create HDF5 file (directory missing, no permission, "
                                    "or the file is open in another process)");
  } else {
    file = H5Fopen(path.c_str(), mode == Mode::Read ? H5F_ACC_RDONLY : H5F_ACC_RDWR, H5P_DEFAULT);
    if (file < 0)
      throw FeatureStoreError(path, "cannot open HDF5 file (corrupt, no permission, or locked "
                                    "by another process)");
  }
  const bool writable = mode != Mode::Read;
  hid_t group = -1;
  if (link_exists(file, kGroup)) {
    group = H5Gopen2(file, kGroup, H5P_DEFAULT);
  } else if (writable) {
    group = create_group(file);
    try {
      write_string_attr(file, "format", {kFormat}, true);
    } catch (const std::exception& e) {
      H5Fclose(file);
      throw FeatureStoreError(path, e.what());
    }
  } else {
    H5Fclose(file);
    throw FeatureStoreError(path, "not a crnn feature store (no /features group)");
  }
  if (group < 0) {
    H5Fclose(file);
    throw FeatureStoreError(path, "cannot open the /features group");
  }
  FeatureStore store(path, file, group, writable);
  // The link names: the probe child's (see probe_in_child), or, where no child
  // could run (no fork) or the file is new, this process's own walk.
  store.names_ = probe.ran ? std::move(probe.names) : link_names(group);
  store.unreadable_.insert(probe.unreadable.begin(), probe.unreadable.end());
  if (mode == Mode::Append) {
    // Datasets without the completion mark were being written when an
    // earlier run stopped: drop them so that they are computed again.
    // Rows marked complete whose bytes do not match their checksum: a write
    // that failed after the mark reached the disk (disk full, I/O error) or
    // damage since. Recomputed like incomplete ones.
    //
    // Damaged rows are not deleted in place: deleting frees their space, and
    // libhdf5 crashed in its free-space manager doing so in a damaged file
    // (FeatureStore.ByteFlippedFilesGiveErrorsNeverCrashesOrWrongRows, trial
    // 34); a row whose header is damaged cannot be deleted at all. A file with
    // any damage is rewritten instead (rewritten: the good rows copied into a
    // new file); incomplete rows of an undamaged file are deleted in place.
    const std::set<std::string> damaged(probe.damaged.begin(), probe.damaged.end());
    const bool any_damage = !damaged.empty() || !store.unreadable_.empty();
    std::vector<std::string> kept;
    bool stuck = false;  // a row libhdf5 could not delete
    for (const auto& name : store.names_) {
      if (store.unreadable_.count(name) || damaged.count(name)) {
        store.damaged_.push_back(unescape_id(name));
      } else if (!is_complete(group, name)) {
        if (!any_damage) stuck |= H5Ldelete(group, name.c_str(), H5P_DEFAULT) < 0;
        store.discarded_.push_back(unescape_id(name));
      } else {
        kept.push_back(name);
      }
    }
    store.names_ = std::move(kept);
    if (any_damage || stuck) return rewritten(std::move(store));
    if (!store.discarded_.empty()) store.flush();
  }
  return store;
}

FeatureStore FeatureStore::rewritten(FeatureStore&& old) {
  // Copy every good row (data, source, stamp) into a new file beside the old
  // one, make it durable, then put it in place: until the rename the old file
  // is untouched, so a failure here loses nothing.
  const std::string path = old.path_;
  // A fixed name, not util/file_io's per-process one: a rewrite killed part
  // way leaves one copy of the store, which the next rewrite truncates.
  const std::string tmp = path + ".rewrite.tmp";
  const std::vector<std::string> ids = old.ids();
  fmt::print(stderr, "features: {}: {} damaged row(s); copying the {} good row(s) into a new file\n", path,
             old.damaged_.size() + old.discarded_.size(), ids.size());
  std::vector<std::string> damaged = old.damaged_;
  try {
    FeatureStore fresh = open(tmp, Mode::Truncate);
    if (old.has_attributes()) fresh.set_attributes(old.attributes());
    for (const auto& id : ids) {
      torch::Tensor x;
      try {
        x = old.read(id);
      } catch (const FeatureStoreError&) {  // damaged too: recomputed with the others
        damaged.push_back(id);
        continue;
      }
      fresh.write(id, x, old.source(id), old.source_stamp(id));
    }
  } catch (...) {
    std::error_code ec;
    fs::remove(tmp, ec);
    throw;
  }
  if (!crnn::sync_file(tmp)) {
    const int err = errno;
    std::error_code ec;
    fs::remove(tmp, ec);
    throw FeatureStoreError(path, fmt::format("cannot flush its rewritten copy {} to disk: {}", tmp, std::strerror(err)));
  }
  const auto discarded = old.discarded_;
  old.close();
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    throw FeatureStoreError(path, "cannot replace it with its rewritten copy: " + ec.message());
  }
  FeatureStore store = open(path, Mode::Append);
  store.discarded_ = discarded;
  store.damaged_ = damaged;
  return store;
}

bool FeatureStore::complete(const std::string& name) const {
  return !unreadable_.count(name) && is_complete(group_, name);
}

std::string FeatureStore::no_features(const std::string& id) const {
  if (unreadable_.count(escape_id(id)))
    return "the stored row of '" + id + "' is damaged (libhdf5 cannot read its header): run `crnn features` on this "
           "file again to recompute it";
  return "no features for '" + id + "'";
}

bool FeatureStore::contains(const std::string& id) const {
  silence_hdf5();
  return complete(escape_id(id));
}

void FeatureStore::write(const std::string& id, const torch::Tensor& features, const std::string& source,
                         const FileStamp& stamp) {
  silence_hdf5();
  TORCH_CHECK(!id.empty(), "FeatureStore::write: empty id (", path_, ")");
  TORCH_CHECK(features.dim() == 2, "FeatureStore::write: expected frames x features, got shape ",
              features.sizes(), " for '", id, "' (", path_, ")");
  if (!writable_) throw FeatureStoreError(path_, "opened read-only; cannot write '" + id + "'");
  const std::string name = escape_id(id);
  if (link_exists(group_, name))
    throw FeatureStoreError(path_, "already contains '" + id + "'");
  const torch::Tensor data = features.detach().to(torch::kCPU, torch::kFloat).contiguous();
  const hsize_t dims[2] = {static_cast<hsize_t>(data.size(0)), static_cast<hsize_t>(data.size(1))};
  Handle space(H5Screate_simple(2, dims, nullptr), H5Sclose);
  Handle dset(H5Dcreate2(group_, name.c_str(), H5T_IEEE_F32LE, space, H5P_DEFAULT, H5P_DEFAULT,
                         H5P_DEFAULT),
              H5Dclose);
  if (!dset.ok()) throw FeatureStoreError(path_, "cannot create dataset for '" + id + "'");
  const uint32_t crc = crnn::crc32(data.data_ptr<float>(), static_cast<size_t>(data.numel()) * sizeof(float));
  // Testing seam (util/file_io.h): a disk that fills up while this row is
  // flushed — the completion mark reaches the file, half the frames do not.
  const bool fault = crnn::write_fault_injected(path_);
  torch::Tensor written = data;
  if (fault) {
    written = data.clone();
    written.narrow(0, data.size(0) / 2, data.size(0) - data.size(0) / 2).zero_();
  }
  if (data.numel() > 0 &&
      H5Dwrite(dset, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, written.data_ptr<float>()) < 0)
    throw FeatureStoreError(path_, "cannot write dataset for '" + id + "' (disk full?)");
  // The mark goes last: a dataset without it is known to be incomplete. The
  // checksum catches a marked row whose data did not all reach the disk.
  try {
    if (!source.empty()) write_string_attr(dset, kSource, {source}, true);
    if (stamp.known()) {
      write_scalar_attr<int64_t>(dset, kSourceBytes, H5T_NATIVE_INT64, stamp.bytes);
      write_scalar_attr<int64_t>(dset, kSourceMtime, H5T_NATIVE_INT64, stamp.mtime_ns);
      write_scalar_attr<uint32_t>(dset, kSourceCrc, H5T_NATIVE_UINT32, stamp.crc32);
    }
    write_scalar_attr<uint32_t>(dset, kCrc, H5T_NATIVE_UINT32, crc);
    write_scalar_attr<uint8_t>(dset, kComplete, H5T_NATIVE_UINT8, 1);
  } catch (const std::exception& e) {
    throw FeatureStoreError(path_, fmt::format("'{}': {}", id, e.what()));
  }
  names_.push_back(name);
  flush();
  if (fault) throw FeatureStoreError(path_, "flush failed (disk full?) [CRNN_FAULT_WRITE]");
}

std::string FeatureStore::source(const std::string& id) const {
  silence_hdf5();
  const std::string name = escape_id(id);
  if (!complete(name)) throw FeatureStoreError(path_, no_features(id));
  Handle dset(H5Dopen2(group_, name.c_str(), H5P_DEFAULT), H5Dclose);
  if (!dset.ok() || H5Aexists(dset, kSource) <= 0) return "";
  try {
    return read_string_attr(dset, kSource).at(0);
  } catch (const std::exception& e) {
    throw FeatureStoreError(path_, fmt::format("'{}': {}", id, e.what()));
  }
}

FileStamp FeatureStore::source_stamp(const std::string& id) const {
  silence_hdf5();
  const std::string name = escape_id(id);
  if (!complete(name)) throw FeatureStoreError(path_, no_features(id));
  Handle dset(H5Dopen2(group_, name.c_str(), H5P_DEFAULT), H5Dclose);
  FileStamp stamp;
  if (!dset.ok() || H5Aexists(dset, kSourceBytes) <= 0) return stamp;
  try {
    stamp.bytes = read_scalar_attr<int64_t>(dset, kSourceBytes, H5T_NATIVE_INT64);
    stamp.mtime_ns = read_scalar_attr<int64_t>(dset, kSourceMtime, H5T_NATIVE_INT64);
    stamp.crc32 = read_scalar_attr<uint32_t>(dset, kSourceCrc, H5T_NATIVE_UINT32);
  } catch (const std::exception& e) {
    throw FeatureStoreError(path_, fmt::format("'{}': {}", id, e.what()));
  }
  if (stamp.bytes < 0)
    throw FeatureStoreError(path_, fmt::format("'{}': attribute {} = {} is not a file size", id, kSourceBytes,
                                               stamp.bytes));
  return stamp;
}

void FeatureStore::remove(const std::string& id) {
  silence_hdf5();
  if (!writable_) throw FeatureStoreError(path_, "opened read-only; cannot remove '" + id + "'");
  const std::string name = escape_id(id);
  if (!link_exists(group_, name)) throw FeatureStoreError(path_, "no features for '" + id + "'");
  if (H5Ldelete(group_, name.c_str(), H5P_DEFAULT) < 0)
    throw FeatureStoreError(path_, "cannot delete the features of '" + id + "'");
  names_.erase(std::remove(names_.begin(), names_.end(), name), names_.end());
  flush();
}

torch::Tensor FeatureStore::read(const std::string& id) const {
  silence_hdf5();
  const std::string name = escape_id(id);
  if (!complete(name)) throw FeatureStoreError(path_, no_features(id));
  Handle dset(H5Dopen2(group_, name.c_str(), H5P_DEFAULT), H5Dclose);
  Handle space(H5Dget_space(dset), H5Sclose);
  if (!dset.ok() || !space.ok() || H5Sget_simple_extent_ndims(space) != 2)
    throw FeatureStoreError(path_, "dataset for '" + id + "' is not a 2-D matrix");
  hsize_t dims[2];
  H5Sget_simple_extent_dims(space, dims, nullptr);
  // A damaged or hand-made file can declare any size; allocating it blindly
  // ends in an allocator error that names neither the file nor the id.
  if (dims[0] > kMaxStoredFrames || dims[1] > kMaxStoredWidth ||
      (dims[1] > 0 && dims[0] > kMaxStoredValues / dims[1]))
    throw FeatureStoreError(path_, fmt::format("dataset for '{}' declares {} × {} values (at most {} frames, {} "
                                               "features and {} values are read)",
                                               id, dims[0], dims[1], kMaxStoredFrames, kMaxStoredWidth,
                                               kMaxStoredValues));
  if (const std::string why = storage_damage(dset, dims); !why.empty())
    throw FeatureStoreError(path_, fmt::format("dataset for '{}' {}: the file is damaged; delete it and run `crnn "
                                               "features` again",
                                               id, why));
  torch::Tensor out =
      torch::empty({static_cast<int64_t>(dims[0]), static_cast<int64_t>(dims[1])}, torch::kFloat);
  if (out.numel() > 0 &&
      H5Dread(dset, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data_ptr<float>()) < 0)
    throw FeatureStoreError(path_, "cannot read dataset for '" + id + "' (corrupt file?)");
  if (H5Aexists(dset, kCrc) > 0) {
    uint32_t stored = 0;
    try {
      stored = read_scalar_attr<uint32_t>(dset, kCrc, H5T_NATIVE_UINT32);
    } catch (const std::exception& e) {
      throw FeatureStoreError(path_, fmt::format("'{}': {}", id, e.what()));
    }
    const uint32_t actual = crnn::crc32(out.data_ptr<float>(), static_cast<size_t>(out.numel()) * sizeof(float));
    if (actual != stored)
      throw FeatureStoreError(path_, fmt::format("features of '{}' do not match their checksum (stored {:08x}, read "
                                                 "{:08x}): the file was damaged, or a write of it failed; run `crnn "
                                                 "features` on it again to recompute the damaged rows",
                                                 id, stored, actual));
  }
  // NaN or ±inf would pass into the speaker statistics and every loss computed
  // from them without an error; so would values no feature extractor makes.
  if (out.numel() > 0) {
    const double largest = out.abs().max().item<double>();
    if (std::isfinite(largest) && largest > kMaxFeatureMagnitude) {
      const auto at = torch::nonzero(out.abs() > kMaxFeatureMagnitude);
      throw FeatureStoreError(path_, fmt::format("features of '{}' hold an absurd value ({:g} at frame {}, feature {}; "
                                                 "features beyond ±{:g} are refused)",
                                                 id, out[at[0][0]][at[0][1]].item<double>(), at[0][0].item<int64_t>(),
                                                 at[0][1].item<int64_t>(), kMaxFeatureMagnitude));
    }
    const auto bad = torch::nonzero(~torch::isfinite(out));
    if (bad.size(0) > 0)
      throw FeatureStoreError(path_, fmt::format("features of '{}' hold {} non-finite value(s) (NaN or ±inf), the "
                                                 "first at frame {}, feature {}",
                                                 id, bad.size(0), bad[0][0].item<int64_t>(),
                                                 bad[0][1].item<int64_t>()));
  }
  return out;
}

std::vector<std::string> FeatureStore::set_aside() const {
  std::vector<std::string> out;
  for (const auto& name : names_)
    if (unreadable_.count(name)) out.push_back(unescape_id(name));
  return out;
}

std::vector<std::string> FeatureStore::ids() const {
  silence_hdf5();
  std::vector<std::string> out;
  for (const auto& name : names_)
    if (complete(name)) out.push_back(unescape_id(name));
  return out;
}

bool FeatureStore::has_attributes() const {
  silence_hdf5();
  return H5Aexists(file_, "extractor") > 0;
}

FeatureAttributes FeatureStore::attributes() const {
  silence_hdf5();
  if (!has_attributes()) throw FeatureStoreError(path_, "no feature attributes set");
  FeatureAttributes a;
  try {
    a.sample_rate = read_scalar_attr<int64_t>(file_, "sample_rate", H5T_NATIVE_INT64);
    a.frame_shift_ms = read_scalar_attr<double>(file_, "frame_shift_ms", H5T_NATIVE_DOUBLE);
    a.feature_names = read_string_attr(file_, "feature_names");
    a.extractor = read_string_attr(file_, "extractor").at(0);
  } catch (const std::exception& e) {
    throw FeatureStoreError(path_, e.what());
  }
  // Values no extractor writes: a damaged or hand-made file, not features to train on.
  if (a.sample_rate < 1 || a.sample_rate > audio::kMaxSampleRate)
    throw FeatureStoreError(path_, fmt::format("attribute sample_rate = {} is not a sample rate (1..{} Hz)",
                                               a.sample_rate, audio::kMaxSampleRate));
  if (!std::isfinite(a.frame_shift_ms) || a.frame_shift_ms <= 0.0)
    throw FeatureStoreError(path_, fmt::format("attribute frame_shift_ms = {} is not a frame shift (> 0 ms)",
                                               a.frame_shift_ms));
  return a;
}

void FeatureStore::set_attributes(const FeatureAttributes& a) {
  silence_hdf5();
  if (!writable_) throw FeatureStoreError(path_, "opened read-only; cannot set attributes");
  try {
    write_scalar_attr<int64_t>(file_, "sample_rate", H5T_NATIVE_INT64, a.sample_rate);
    write_scalar_attr<double>(file_, "frame_shift_ms", H5T_NATIVE_DOUBLE, a.frame_shift_ms);
    write_string_attr(file_, "feature_names", a.feature_names, false);
    // extractor last: has_attributes() keys on it.
    write_string_attr(file_, "extractor", {a.extractor}, true);
  } catch (const std::exception& e) {
    throw FeatureStoreError(path_, e.what());
  }
  flush();
}

void FeatureStore::flush() {
  silence_hdf5();
  if (writable_ && H5Fflush(file_, H5F_SCOPE_GLOBAL) < 0)
    throw FeatureStoreError(path_, "flush failed (disk full?)");
}

std::vector<std::string> changed_sources(const FeatureStore& store,
                                         const std::vector<std::pair<std::string, std::string>>& id_paths) {
  std::vector<std::string> changed;
  for (const auto& [id, path] : id_paths)
    if (store.contains(id) && !unchanged_since(store.source_stamp(id), path)) changed.push_back(id);
  return changed;
}

std::vector<std::string> moved_sources(const FeatureStore& store,
                                       const std::vector<std::pair<std::string, std::string>>& id_paths) {
  std::vector<std::string> moved;
  for (const auto& [id, path] : id_paths) {
    if (!store.contains(id)) continue;
    const std::string from = store.source(id);
    if (!from.empty() && fs::path(from).filename() != fs::path(path).filename())
      moved.push_back(fmt::format("'{}': stored from {}, the manifest now names {}", id, from, path));
  }
  return moved;
}

}  // namespace crnn::data
