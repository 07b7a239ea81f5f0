#include "crnn/train/checkpoint.h"

#include <fmt/core.h>

#include <filesystem>
#include <sstream>
#include <stdexcept>

#include "crnn/data/error.h"
#include "crnn/train/config.h"

namespace crnn::train {
namespace {

constexpr int64_t kFormatVersion = 1;

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

}  // namespace

void save_checkpoint(const std::string& path, nn::SequenceClassifier& model,
                     torch::optim::Optimizer* optimizer, const ModelBundle& b,
                     const TrainingState* state) {
  torch::serialize::OutputArchive root;
  root.write("crnn_format", c10::IValue(kFormatVersion));
  root.write("config", c10::IValue(b.config_toml));
  root.write("task", c10::IValue(b.task));
  root.write("labels", c10::IValue(join_lines(b.labels)));
  root.write("input_size", c10::IValue(b.input_size));
  root.write("sample_rate", c10::IValue(b.sample_rate));
  root.write("feature_extractor", c10::IValue(b.feature_extractor));
  if (b.global_stats.mean.defined()) {
    root.write("global_mean", b.global_stats.mean);
    root.write("global_std", b.global_stats.std);
    root.write("global_scale", b.global_stats.scale);
  }
  torch::serialize::OutputArchive weights;
  model->save(weights);
  root.write("model", weights);
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
  const std::string tmp = path + ".tmp";
  root.save_to(tmp);
  std::filesystem::rename(tmp, path);  // atomic on POSIX within one directory
}

LoadedModel load_model(const std::string& path) {
  if (!std::filesystem::exists(path)) throw data::DataError(path + ": model file not found");
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
  b.input_size = read_int("input_size");
  b.sample_rate = read_int("sample_rate");
  b.feature_extractor = read_string("feature_extractor");
  torch::Tensor t;
  if (root.try_read("global_mean", t)) {
    b.global_stats.mean = t;
    root.read("global_std", b.global_stats.std);
    root.read("global_scale", b.global_stats.scale);
  }
  auto cfg = RunConfig::parse(b.config_toml, {}, path + " (embedded config)");
  out.model = nn::SequenceClassifier(cfg.model_options(static_cast<int64_t>(b.labels.size()), b.input_size));
  torch::serialize::InputArchive weights;
  root.read("model", weights);
  out.model->load(weights);
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

void load_optimizer(const std::string& path, torch::optim::Optimizer& optimizer) {
  torch::serialize::InputArchive root;
  root.load_from(path);
  torch::serialize::InputArchive opt;
  if (!root.try_read("optimizer", opt))
    throw std::runtime_error(path + ": checkpoint has no optimizer state");
  optimizer.load(opt);
}

}  // namespace crnn::train
