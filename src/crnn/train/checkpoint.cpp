#include "crnn/train/checkpoint.h"

#include <fmt/core.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <malloc.h>

#include <caffe2/serialize/inline_container.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>

#include "crnn/audio/feature_extractor.h"
#include "crnn/data/error.h"
#include "crnn/train/config.h"
#include "crnn/util/checksum.h"
#include "crnn/util/json_text.h"

namespace crnn::train {
namespace {

/// 1: the first format. 2: adds the "splits" entry, which the checksum covers
/// (a crnn that reads only 1 would call such a file damaged, so it is told the
/// file is newer instead). Both are read.
constexpr int64_t kFormatVersion = 2;

std::string join_lines(const std::vector<std::string>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "\n" : "") + v[i];
  return s;
}

std::vector<std::string> split_lines(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string line; std::getline(ss, line);) out.push_back(line);
  return out;
}

/// Bytes a tensor's view reaches into its storage (0 for an empty tensor).
int64_t bytes_spanned(const torch::Tensor& t) {
  if (t.numel() == 0) return 0;
  int64_t last = t.storage_offset();
  for (int64_t d = 0; d < t.dim(); ++d) last += (t.size(d) - 1) * t.stride(d);
  return (last + 1) * static_cast<int64_t>(t.element_size());
}

/// A loaded tensor must lie inside its storage and hold finite values.
///
/// LibTorch 1.13 sizes a loaded storage by the element count its pickle declares,
/// not by the archive record it reads, so a truncated record gives a storage that
/// reads past its buffer. The buffer is LibTorch's CPU allocation of the record
/// (posix_memalign), whose usable size glibc reports: that is the real extent.
void check_loaded_tensor(const std::string& path, const std::string& name, const torch::Tensor& t) {
  auto have = static_cast<int64_t>(t.storage().nbytes());
  // No buffer at all: an empty record (a zip directory entry of size 0, CRC 0,
  // fuzzing found) under a storage the pickle declares non-empty.
  if (t.device().is_cpu())
    have = t.storage().data() == nullptr
               ? 0
               : std::min(have, static_cast<int64_t>(malloc_usable_size(const_cast<void*>(t.storage().data()))));
  const int64_t need = bytes_spanned(t);
  if (have < need)
    throw data::DataError(fmt::format("{}: corrupt model file ('{}' holds {} bytes, its shape [{}] needs {})", path,
                                      name, have, fmt::join(t.sizes(), ", "), need));
  if (t.is_floating_point() && !torch::isfinite(t).all().item<bool>())
    throw data::DataError(fmt::format("{}: corrupt model file (non-finite values in '{}')", path, name));
}

/// The "splits" entry: {"train": {"speaker": ["id", ...], ...}, ...}.
/// Never throws: bytes that are not UTF-8 (possible only in a manifest built in
/// code; Manifest::read refuses them) become U+FFFD.
std::string splits_json(const data::SplitMembers& splits) { return crnn::json_text(nlohmann::json(splits)); }

data::SplitMembers parse_splits_json(const std::string& text, const std::string& path) {
  try {
    auto j = nlohmann::json::parse(text);
    data::SplitMembers out = j.get<data::SplitMembers>();
    for (const auto& [split, speakers] : out)
      if (split != "train" && split != "valid" && split != "test")
        throw std::runtime_error("unknown split '" + split + "'");
    return out;
  } catch (const std::exception& e) {
    throw data::DataError(fmt::format("{}: corrupt model file (its 'splits' entry: {})", path, e.what()));
  }
}

/// CRC-32 over everything a model file says about the model: its description
/// and every parameter and buffer (name and bytes, in module order). Written
/// with the file and checked on load, so damaged bytes (a disk or copy error)
/// are an error instead of silently different predictions.
uint32_t model_checksum(const ModelBundle& b, const nn::SequenceClassifier& model) {
  uint32_t c = 0;
  for (const std::string& s : {b.config_toml, b.task, join_lines(b.labels), b.feature_extractor,
                               std::to_string(b.input_size), std::to_string(b.sample_rate)})
    c = crnn::crc32(s + '\n', c);
  auto add_tensor = [&](const std::string& name, const torch::Tensor& t) {
    c = crnn::crc32(name + '\n', c);
    if (!t.defined()) return;
    const torch::Tensor d = t.detach().to(torch::kCPU).contiguous();
    c = crnn::crc32(d.data_ptr(), static_cast<size_t>(d.numel()) * d.element_size(), c);
  };
  if (!b.splits.empty()) c = crnn::crc32(splits_json(b.splits) + '\n', c);
  if (b.global_stats.mean.defined()) {
    add_tensor("global_mean", b.global_stats.mean);
    add_tensor("global_std", b.global_stats.std);
    add_tensor("global_scale", b.global_stats.scale);
  }
  for (const auto& p : model->named_parameters()) add_tensor(p.key(), p.value());
  for (const auto& p : model->named_buffers()) add_tensor(p.key(), p.value());
  return c;
}

/// load_model rebuilds the model from the bundle (config, labels, input size):
/// a bundle that implies other shapes would be written fine and refused on
/// every load, so it is refused here, where the mistake is made.
void check_bundle_describes(const ModelBundle& b, const nn::SequenceClassifier& model) {
  auto fail = [](const std::string& why) {
    throw std::invalid_argument("save_checkpoint: the ModelBundle does not describe this model: " + why +
                                " (bundle.config_toml must be RunConfig::to_toml() of the config the model was built "
                                "from, with bundle.labels its classes and bundle.input_size its features per frame)");
  };
  if (b.labels.size() < 2) fail(fmt::format("{} label(s); a classifier has at least 2", b.labels.size()));
  if (b.input_size < 1) fail(fmt::format("input_size {}", b.input_size));
  // Classifier and `crnn predict` compute features from audio with it.
  try {
    audio::FeatureExtractor::parse(b.feature_extractor);
  } catch (const std::exception& e) {
    fail(fmt::format("feature_extractor: {} (audio::describe(options) of the features the model was trained on)",
                     e.what()));
  }
  RunConfig cfg;
  try {
    cfg = RunConfig::parse(b.config_toml, {}, "bundle.config_toml");
  } catch (const ConfigError& e) {
    fail(e.what());
  }
  // Building the implied model initializes its weights from LibTorch's default
  // generator: keep the caller's random stream as it was (a save has no side effects).
  auto gen = at::detail::getDefaultCPUGenerator();
  torch::Tensor rng;
  {
    std::lock_guard<std::mutex> lock(gen.mutex());
    rng = gen.get_state();
  }
  nn::SequenceClassifier implied(cfg.model_options(static_cast<int64_t>(b.labels.size()), b.input_size));
  {
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(rng);
  }
  const auto want = implied->named_parameters(), have = model->named_parameters();
  for (const auto& p : have) {
    const auto* w = want.find(p.key());
    if (!w) fail(fmt::format("the model has '{}', the bundle's config does not", p.key()));
    if (w->sizes() != p.value().sizes())
      fail(fmt::format("'{}' has shape [{}], the bundle's config and {} labels imply [{}]", p.key(),
                       fmt::join(p.value().sizes(), ", "), b.labels.size(), fmt::join(w->sizes(), ", ")));
  }
  if (want.size() != have.size())
    fail(fmt::format("the bundle's config implies {} parameters, the model has {}", want.size(), have.size()));
}

}  // namespace

std::string checkpoint_bytes(nn::SequenceClassifier& model, torch::optim::Optimizer* optimizer, const ModelBundle& b,
                             const TrainingState* state) {
  check_bundle_describes(b, model);
  torch::serialize::OutputArchive root;
  root.write("crnn_format", c10::IValue(kFormatVersion));
  root.write("config", c10::IValue(b.config_toml));
  root.write("task", c10::IValue(b.task));
  root.write("labels", c10::IValue(join_lines(b.labels)));
  root.write("input_size", c10::IValue(b.input_size));
  root.write("sample_rate", c10::IValue(b.sample_rate));
  root.write("feature_extractor", c10::IValue(b.feature_extractor));
  if (!b.splits.empty()) root.write("splits", c10::IValue(splits_json(b.splits)));
  if (b.global_stats.mean.defined()) {
    root.write("global_mean", b.global_stats.mean);
    root.write("global_std", b.global_stats.std);
    root.write("global_scale", b.global_stats.scale);
  }
  torch::serialize::OutputArchive weights;
  model->save(weights);
  root.write("model", weights);
  root.write("checksum", c10::IValue(static_cast<int64_t>(model_checksum(b, model))));
  if (optimizer) {
    torch::serialize::OutputArchive opt;
    optimizer->save(opt);
    root.write("optimizer", opt);
  }
  if (state) {
    root.write("epoch", c10::IValue(state->epoch));
    root.write("best_epoch", c10::IValue(state->best_epoch));
    root.write("best_metric", c10::IValue(state->best_metric));
    root.write("bad_epochs", c10::IValue(state->bad_epochs));
    root.write("wall_seconds", c10::IValue(state->wall_seconds));
    if (state->rng_state.defined()) root.write("rng_state", state->rng_state);
  }
  // Serialized in memory, written by util/file_io: a failed write (disk full)
  // is an error naming the file, never an abort inside LibTorch's writer.
  std::ostringstream bytes;
  root.save_to(bytes);
  return bytes.str();
}

void save_checkpoint(const std::string& path, nn::SequenceClassifier& model, torch::optim::Optimizer* optimizer,
                     const ModelBundle& b, const TrainingState* state) {
  crnn::write_text_file_atomic(path, checkpoint_bytes(model, optimizer, b, state));
}

namespace {

uint64_t le(const std::string& b, size_t at, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(b[at + i]);
  return v;
}

/// Checks every record of the model archive (a zip) against the CRC-32 its
/// central directory holds, before LibTorch parses any of it. LibTorch's zip
/// reader skips those checks (miniz built without them), and its unpickler and
/// TorchScript importer are not hardened: one damaged byte in data.pkl (an
/// opcode turned into GLOBAL) made the type parser crash with SIGSEGV
/// (fuzzing, tests/fixtures/fuzz-regressions/model/). Throws DataError.
void check_archive_crcs(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  const std::string b((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto corrupt = [&](const std::string& why) {
    return data::DataError(path + ": not a readable crnn model file (" + why + ")");
  };
  // End of central directory: the last "PK\5\6" within the final 64 KiB + 22 bytes.
  if (b.size() < 22) throw corrupt("too short for a zip archive");
  size_t eocd = std::string::npos;
  for (size_t i = b.size() - 22, stop = b.size() > 65557 ? b.size() - 65557 : 0;; --i) {
    if (b.compare(i, 4, "PK\x05\x06") == 0) {
      eocd = i;
      break;
    }
    if (i == stop) break;
  }
  if (eocd == std::string::npos) throw corrupt("no zip directory");
  uint64_t entries = le(b, eocd + 10, 2), cd = le(b, eocd + 16, 4);
  // A zip64 locator right before the end record wins whenever it is there, as
  // in LibTorch's reader (miniz): reading the 16-bit fields instead would let a
  // damaged end record (0 entries) skip every check while LibTorch still reads
  // all the records (fuzzing, finding 5).
  if (eocd >= 20 && b.compare(eocd - 20, 4, "PK\x06\x07") == 0) {
    const uint64_t z64 = le(b, eocd - 20 + 8, 8);  // zip64 end of central directory
    if (b.size() < 56 || z64 > b.size() - 56 || b.compare(z64, 4, "PK\x06\x06") != 0) throw corrupt("damaged zip64 directory");
    entries = le(b, z64 + 32, 8);
    cd = le(b, z64 + 48, 8);
  }
  caffe2::serialize::PyTorchStreamReader reader(path);
  std::set<std::string> checked;
  for (uint64_t e = 0, at = cd; e < entries; ++e) {
    if (at > b.size() || b.size() - at < 46 || b.compare(at, 4, "PK\x01\x02") != 0)
      throw corrupt("damaged zip directory");
    const uint32_t crc = static_cast<uint32_t>(le(b, at + 16, 4));
    const size_t name_len = le(b, at + 28, 2), extra = le(b, at + 30, 2), comment = le(b, at + 32, 2);
    if (b.size() - at - 46 < name_len + extra + comment) throw corrupt("damaged zip directory");
    const std::string name = b.substr(at + 46, name_len);
    at += 46 + name_len + extra + comment;
    // Record names are "<archive>/<record>"; the reader takes the part after the first '/'.
    const size_t slash = name.find('/');
    if (slash == std::string::npos) throw corrupt("unexpected zip entry '" + name + "'");
    auto [data, size] = reader.getRecord(name.substr(slash + 1));
    if (crnn::crc32(data.get(), size) != crc) throw corrupt("zip entry '" + name + "' fails its CRC-32 check");
    checked.insert(name.substr(slash + 1));
  }
  // Whatever this parse and LibTorch's disagree on, LibTorch must read nothing unchecked.
  for (const std::string& record : reader.getAllRecords())
    if (!checked.count(record)) throw corrupt("damaged zip directory (record '" + record + "' not listed where expected)");
}

/// load_model without the translation of LibTorch errors.
LoadedModel load_model_unchecked(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw data::DataError(path + ": a directory, not a model file (a run directory's model file is " +
                          model_file(path) + ": train::model_file(dir))");
  try {
    check_archive_crcs(path);
  } catch (const c10::Error& e) {
    throw data::DataError(path + ": not a readable crnn model file (" +
                             split_lines(e.what_without_backtrace()).front() + ")");
  }
  torch::serialize::InputArchive root;
  try {
    root.load_from(path);
  } catch (const c10::Error& e) {
    throw data::DataError(path + ": not a readable crnn model file (" +
                             split_lines(e.what_without_backtrace()).front() + ")");
  }
  c10::IValue v;
  if (!root.try_read("crnn_format", v) || !v.isInt())
    throw data::DataError(path + ": not a crnn model file (no crnn_format entry)");
  if (v.toInt() > kFormatVersion)
    throw data::DataError(fmt::format("{}: model format {} is newer than this crnn reads ({})", path,
                                         v.toInt(), kFormatVersion));
  LoadedModel out;
  auto read_string = [&](const char* key) {
    c10::IValue s;
    if (!root.try_read(key, s) || !s.isString())
      throw data::DataError(path + ": corrupt model file (missing '" + key + "')");
    return s.toStringRef();
  };
  auto read_int = [&](const char* key) {
    c10::IValue s;
    if (!root.try_read(key, s) || !s.isInt())
      throw data::DataError(path + ": corrupt model file (missing '" + key + "')");
    return s.toInt();
  };
  auto& b = out.bundle;
  b.config_toml = read_string("config");
  b.task = read_string("task");
  b.labels = split_lines(read_string("labels"));
  if (b.labels.size() < 2)
    throw data::DataError(fmt::format("{}: corrupt model file ({} class label(s); a classifier needs at least 2)", path,
                                      b.labels.size()));
  for (size_t i = 0; i < b.labels.size(); ++i) {
    // Training never writes one (an empty manifest cell means "no label"), and
    // `crnn predict` would print "" as a class.
    if (b.labels[i].empty())
      throw data::DataError(fmt::format("{}: corrupt model file (class label {} of {} is empty)", path, i + 1,
                                        b.labels.size()));
    for (size_t j = 0; j < i; ++j)
      if (b.labels[i] == b.labels[j])
        throw data::DataError(fmt::format("{}: corrupt model file (class label '{}' twice)", path, b.labels[i]));
  }
  b.input_size = read_int("input_size");
  if (b.input_size < 1)
    throw data::DataError(fmt::format("{}: corrupt model file (input_size {})", path, b.input_size));
  b.sample_rate = read_int("sample_rate");
  b.feature_extractor = read_string("feature_extractor");
  if (c10::IValue s; root.try_read("splits", s)) {  // model files from before it have none
    if (!s.isString()) throw data::DataError(path + ": corrupt model file ('splits' is not text)");
    b.splits = parse_splits_json(s.toStringRef(), path);
  }
  torch::Tensor t;
  if (root.try_read("global_mean", t)) {
    b.global_stats.mean = t;
    root.read("global_std", b.global_stats.std);
    root.read("global_scale", b.global_stats.scale);
    for (auto [name, g] : {std::pair{"global_mean", &b.global_stats.mean}, {"global_std", &b.global_stats.std},
                           {"global_scale", &b.global_stats.scale}}) {
      check_loaded_tensor(path, name, *g);
      if (g->numel() != b.input_size)
        throw data::DataError(fmt::format("{}: corrupt model file ('{}' has {} values for input_size {})", path, name,
                                          g->numel(), b.input_size));
    }
  }
  RunConfig cfg;
  try {
    cfg = RunConfig::parse(b.config_toml, {}, path + " (embedded config)");
  } catch (const ConfigError& e) {
    // A key this build does not declare: most likely a model from a newer crnn, not damage.
    const std::string what = e.what();
    if (e.unknown_key())
      throw data::DataError(fmt::format("{}: the model's config has a key this crnn ({}) does not know, so it was "
                                        "probably written by a newer crnn: {}",
                                        path, CRNN_VERSION, what));
    throw data::DataError(path + ": corrupt model file (" + what + ")");
  }
  out.model = nn::SequenceClassifier(cfg.model_options(static_cast<int64_t>(b.labels.size()), b.input_size));
  // Module::load adopts the archive's tensors whatever their shape: remember what the
  // config implies, and check shape, storage and values of everything loaded.
  std::map<std::string, std::vector<int64_t>> expected;
  for (const auto& p : out.model->named_parameters()) expected[p.key()] = p.value().sizes().vec();
  for (const auto& p : out.model->named_buffers()) expected[p.key()] = p.value().sizes().vec();
  torch::serialize::InputArchive weights;
  root.read("model", weights);
  out.model->load(weights);
  auto check = [&](const std::string& name, const torch::Tensor& t) {
    if (t.sizes().vec() != expected.at(name))
      throw data::DataError(fmt::format("{}: corrupt model file ('{}' has shape [{}], its config and {} labels imply [{}])",
                                        path, name, fmt::join(t.sizes(), ", "), b.labels.size(),
                                        fmt::join(expected.at(name), ", ")));
    check_loaded_tensor(path, name, t);
  };
  for (const auto& p : out.model->named_parameters()) check(p.key(), p.value());
  for (const auto& p : out.model->named_buffers()) check(p.key(), p.value());
  c10::IValue sum;
  if (root.try_read("checksum", sum)) {  // files from before checksums load unchecked
    const uint32_t actual = model_checksum(b, out.model);
    if (!sum.isInt() || static_cast<uint32_t>(sum.toInt()) != actual)
      throw data::DataError(fmt::format("{}: model file damaged: its contents do not match the checksum written with "
                                        "it (stored {}, computed {:08x}); use an intact copy or train again",
                                        path, sum.isInt() ? fmt::format("{:08x}", static_cast<uint32_t>(sum.toInt())) : "?",
                                        actual));
  }
  c10::IValue e;
  if (root.try_read("epoch", e)) {
    out.has_state = true;
    auto& s = out.state;
    s.epoch = e.toInt();
    s.best_epoch = read_int("best_epoch");
    c10::IValue d;
    root.read("best_metric", d);
    s.best_metric = d.toDouble();
    s.bad_epochs = read_int("bad_epochs");
    root.read("wall_seconds", d);
    s.wall_seconds = d.toDouble();
    torch::Tensor rng;
    if (root.try_read("rng_state", rng)) s.rng_state = rng;
  }
  return out;
}

}  // namespace

std::string model_file(const std::string& model_or_run) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(model_or_run, ec)) return model_or_run;
  const fs::path dir(model_or_run), best = dir / "best.pt";
  if (fs::exists(best, ec)) return best.string();
  if (fs::exists(dir / "config.toml", ec))
    throw data::DataError(fmt::format("{}: no model yet (no best.pt): the run has not finished its first epoch; "
                                      "continue it with `crnn train --resume {}`",
                                      model_or_run, model_or_run));
  throw data::DataError(fmt::format("{}: not a run directory (no best.pt or config.toml); give a run directory "
                                    "made by `crnn train` or a model file",
                                    model_or_run));
}

LoadedModel load_model(const std::string& path) {
  if (!std::filesystem::exists(path)) throw data::DataError(path + ": model file not found");
  try {
    return load_model_unchecked(path);
  } catch (const c10::Error& e) {
    // A missing entry or a tensor LibTorch cannot read: name the file, not a backtrace.
    throw data::DataError(path + ": corrupt model file (" + split_lines(e.what_without_backtrace()).front() + ")");
  } catch (const data::DataError&) {
    throw;
  } catch (const std::exception& e) {
    // Damaged bytes can also reach LibTorch's TorchScript importer (torch::jit::ErrorReport)
    // or its pickler, whose errors are not c10::Errors.
    const auto lines = split_lines(e.what());
    std::string first;
    for (const auto& l : lines)
      if (l.find_first_not_of(" \t") != std::string::npos) {
        first = l;
        break;
      }
    // `crnn export`'s TorchScript file, whose code calls crnn's operators.
    if (first.find("Unknown builtin op: crnn::") != std::string::npos)
      throw data::DataError(path + ": a TorchScript export (`crnn export`), for PyTorch's torch.jit.load with crnn's "
                                   "ops library loaded (docs/python.md); crnn reads the run's model file (best.pt)");
    throw data::DataError(path + ": corrupt model file (" + first + ")");
  }
}

void load_optimizer(const std::string& path, torch::optim::Optimizer& optimizer) {
  torch::serialize::InputArchive root;
  root.load_from(path);
  torch::serialize::InputArchive opt;
  if (!root.try_read("optimizer", opt))
    throw std::runtime_error(path + ": checkpoint has no optimizer state");
  optimizer.load(opt);
}

}  // namespace crnn::train
