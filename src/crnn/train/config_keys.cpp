#include "crnn/train/config_keys.h"

#include <fmt/core.h>

#include <cmath>
#include <set>
#include <type_traits>

#include "crnn/util/threads.h"

namespace crnn::train {
namespace {

using nn::FrontEndLayerOptions;

/// The defaults: a default-constructed config (the member initializers of config.h).
const RunConfig& defaults() {
  static const RunConfig d{};
  return d;
}

/// How a value of type T is stored in TOML (seeds are unsigned in C++, signed 64-bit in TOML).
template <typename T>
auto toml_value(const T& v) {
  if constexpr (std::is_same_v<T, uint64_t>) return static_cast<int64_t>(v);
  else return v;
}

template <typename T>
std::string value_text(const T& v) {
  if constexpr (std::is_same_v<T, std::string>) return v.empty() ? "—" : "`" + v + "`";
  else if constexpr (std::is_same_v<T, bool>) return v ? "true" : "false";
  else return fmt::format("{}", v);
}

template <typename T>
const char* type_text() {
  if constexpr (std::is_same_v<T, std::string>) return "string";
  else if constexpr (std::is_same_v<T, bool>) return "boolean";
  else if constexpr (std::is_floating_point_v<T>) return "number";
  else if constexpr (std::is_unsigned_v<T>) return "integer ≥ 0";
  else return "integer";
}

/// A scalar key stored in the config field that `field` (a generic lambda
/// `(auto& c) -> auto&`) selects.
template <typename Field>
ConfigKey scalar(std::string section, std::string name, Field field, std::string doc,
                 std::function<std::string(const RunConfig&)> check = {}) {
  using T = std::decay_t<decltype(field(std::declval<RunConfig&>()))>;
  ConfigKey k;
  k.section = std::move(section);
  k.name = std::move(name);
  k.type = type_text<T>();
  k.default_text = value_text(field(defaults()));
  k.doc = std::move(doc);
  k.read = [field, where = k.section, key = k.name](const TomlReader& r, const toml::table& t, RunConfig& c) {
    r.get(t, where, key, field(c));
  };
  k.write = [field, key = k.name](const RunConfig& c, toml::table& t) { t.insert_or_assign(key, toml_value(field(c))); };
  k.at_default = [field](const RunConfig& c) { return field(c) == field(defaults()); };
  k.check = check ? std::move(check) : [](const RunConfig&) { return std::string(); };
  return k;
}

/// `k`, a key added after the first experiment cells were named, whose field
/// (`field`) held `legacy` in every run before it existed.
template <typename Field, typename T>
ConfigKey added_later(ConfigKey k, Field field, T legacy) {
  k.at_legacy = [field, legacy](const RunConfig& c) { return field(c) == legacy; };
  return k;
}

std::vector<ConfigKey> make_config_keys() {
  using C = const RunConfig&;
  std::vector<ConfigKey> keys;
  // [data] -----------------------------------------------------------------
  keys.push_back(scalar("data", "manifest", [](auto& c) -> auto& { return c.data.manifest; },
                        "CSV manifest (docs/manifest.md); relative to the working directory"));
  keys.push_back(scalar("data", "features", [](auto& c) -> auto& { return c.data.features; },
                        "HDF5 feature file made by `crnn features`; relative to the working directory"));
  keys.push_back(scalar("data", "task", [](auto& c) -> auto& { return c.data.task; }, "the label column to classify"));
  keys.push_back(scalar("data", "split_column", [](auto& c) -> auto& { return c.data.split_column; },
                        "column with train / valid / test per row (used when `folds` = 0)"));
  keys.push_back(scalar("data", "folds", [](auto& c) -> auto& { return c.data.folds; },
                        "≥ 3: speaker-group cross-validation instead of the manifest's split column; 0: the split column, or 6-fold when the manifest has none (docs/splits.md)",
                        [](C c) { return c.data.folds < 0 || c.data.folds == 1 || c.data.folds == 2
                                             ? "must be 0 (use split_column) or >= 3" : ""; }));
  keys.push_back(scalar("data", "fold", [](auto& c) -> auto& { return c.data.fold; },
                        "with `folds`: the test fold; fold + 1 is the validation fold",
                        [](C c) { return c.data.folds > 0 && (c.data.fold < 0 || c.data.fold >= c.data.folds)
                                             ? fmt::format("must be in 0..{}", c.data.folds - 1) : ""; }));
  keys.push_back(scalar("data", "valid_speakers_per_class",
                        [](auto& c) -> auto& { return c.data.valid_speakers_per_class; },
                        "when the split has no valid rows: training speakers moved to validation per class",
                        [](C c) { return c.data.valid_speakers_per_class < 1 ? "must be >= 1" : ""; }));
  keys.push_back(scalar("data", "split_seed", [](auto& c) -> auto& { return c.data.split_seed; },
                        "seed of fold assignment and validation carving"));
  keys.push_back(scalar("data", "normalization", [](auto& c) -> auto& { return c.data.normalization; },
                        "`speaker`: each speaker standardized with its own frames (the paper's protocol); `global`: with the "
                        "training frames' mean and std (docs/normalization.md)",
                        [](C c) { return c.data.normalization != "speaker" && c.data.normalization != "global"
                                             ? "must be 'speaker' (the paper's protocol) or 'global', not '" + c.data.normalization + "'"
                                             : ""; }));
  // [model] ----------------------------------------------------------------
  {
    ConfigKey k;
    k.section = "model";
    k.name = "preset";
    k.type = "string";
    k.default_text = "—";
    k.doc = "expands to the preset's layers and sizes (`crnn config dump`); explicit keys override it";
    k.at_legacy = [](const RunConfig& c) { return c.model.preset.empty(); };  // recorded only when used
    k.dump_default = false;
    k.read = [](const TomlReader& r, const toml::table& t, RunConfig& c) {
      r.get(t, "model", "preset", c.model.preset);
      if (c.model.preset.empty()) return;
      try {
        apply_preset(c.model, c.model.preset);
      } catch (const c10::Error& e) {
        r.fail("model", "preset", e.what_without_backtrace());
      }
    };
    k.write = [](const RunConfig& c, toml::table& t) { t.insert_or_assign("preset", c.model.preset); };
    k.at_default = [](const RunConfig& c) { return c.model.preset.empty(); };
    k.check = [](const RunConfig&) { return std::string(); };
    keys.push_back(std::move(k));
  }
  {
    ConfigKey k;
    k.section = "model";
    k.name = "front_end";
    k.type = "array of tables";
    k.default_text = "[]";
    k.doc = "`[[model.front_end]]` layers in order (keys below); none: the baseline";
    k.read = [](const TomlReader& r, const toml::table& t, RunConfig& c) {
      const toml::node* fe = t.get("front_end");
      if (!fe) return;
      const auto* arr = fe->as_array();
      if (!arr) r.fail("model", "front_end", "expected an array of tables ([[model.front_end]])");
      c.model.front_end.clear();
      for (size_t i = 0; i < arr->size(); ++i) {
        const std::string where = "model.front_end." + std::to_string(i);
        const auto* layer = arr->get(i)->as_table();
        if (!layer) fail_key(r.source, where, "expected a table");
        c.model.front_end.push_back(read_layer(r, *layer, where));
      }
    };
    k.write = [](const RunConfig& c, toml::table& t) { t.insert_or_assign("front_end", layers_to_toml(c.model.front_end)); };
    k.at_default = [](const RunConfig& c) { return c.model.front_end.empty(); };
    k.check = [](const RunConfig&) { return std::string(); };
    keys.push_back(std::move(k));
  }
  keys.push_back(scalar("model", "recurrent_size", [](auto& c) -> auto& { return c.model.recurrent_size; },
                        "units per direction of the classifier's (B)LSTM"));
  keys.push_back(scalar("model", "bidirectional", [](auto& c) -> auto& { return c.model.bidirectional; },
                        "BLSTM classifier (both directions' hidden states fed on) instead of LSTM"));
  keys.push_back(scalar("model", "peepholes", [](auto& c) -> auto& { return c.model.peepholes; },
                        "peephole connections in the classifier's LSTM"));
  keys.push_back(scalar("model", "dense_size", [](auto& c) -> auto& { return c.model.dense_size; },
                        "units of the per-step Dense(ReLU) layer"));
  keys.push_back(scalar("model", "average_last", [](auto& c) -> auto& { return c.model.average_last; },
                        "average the softmax over the last N steps; 0 = all steps"));
  // [train] ----------------------------------------------------------------
  keys.push_back(scalar("train", "lr", [](auto& c) -> auto& { return c.train.lr; }, "Adam's learning rate",
                        [](C c) { return c.train.lr > 0 && std::isfinite(c.train.lr) ? "" : "must be finite and > 0"; }));
  {
    ConfigKey k;
    k.section = "train";
    k.name = "betas";
    k.type = "two numbers";
    k.default_text = fmt::format("[{}, {}]", defaults().train.beta1, defaults().train.beta2);
    k.doc = "Adam's β1, β2; the paper's \"0.1, 0.001\" are decay rates (1 − β), and both < 0.5 is rejected as that mistake";
    k.read = [](const TomlReader& r, const toml::table& t, RunConfig& c) {
      const toml::node* betas = t.get("betas");
      if (!betas) return;
      const auto* arr = betas->as_array();
      if (!arr || arr->size() != 2 || !arr->get(0)->value<double>() || !arr->get(1)->value<double>())
        r.fail("train", "betas", "expected two numbers, e.g. [0.9, 0.999]");
      c.train.beta1 = *arr->get(0)->value<double>();
      c.train.beta2 = *arr->get(1)->value<double>();
    };
    k.write = [](const RunConfig& c, toml::table& t) {
      t.insert_or_assign("betas", toml::array{c.train.beta1, c.train.beta2});
    };
    k.at_default = [](const RunConfig& c) {
      return c.train.beta1 == defaults().train.beta1 && c.train.beta2 == defaults().train.beta2;
    };
    k.check = [](C c) -> std::string {
      if (!(c.train.beta1 >= 0 && c.train.beta1 < 1 && c.train.beta2 >= 0 && c.train.beta2 < 1))
        return "each beta must be in [0, 1)";
      if (c.train.beta1 < 0.5 && c.train.beta2 < 0.5)
        return "β1 and β2 below 0.5 look like the paper's decay rates (0.1, 0.001); Adam's betas are 1 − those: "
               "[0.9, 0.999]";
      return "";
    };
    keys.push_back(std::move(k));
  }
  keys.push_back(scalar("train", "batch_size", [](auto& c) -> auto& { return c.train.batch_size; },
                        "utterances per Adam step",
                        [](C c) { return c.train.batch_size < 1 ? "must be >= 1" : ""; }));
  keys.push_back(scalar("train", "max_epochs", [](auto& c) -> auto& { return c.train.max_epochs; },
                        "epochs at most", [](C c) { return c.train.max_epochs < 1 ? "must be >= 1" : ""; }));
  keys.push_back(scalar("train", "patience", [](auto& c) -> auto& { return c.train.patience; },
                        "early stopping after this many epochs without a better validation score",
                        [](C c) { return c.train.patience < 1 ? "must be >= 1" : ""; }));
  keys.push_back(scalar("train", "selection_metric", [](auto& c) -> auto& { return c.train.selection_metric; },
                        "validation score for the best model and early stopping: `ua_recall`, `wa` or `loss`",
                        [](C c) {
                          const auto& m = c.train.selection_metric;
                          return m != "ua_recall" && m != "wa" && m != "loss"
                                     ? "unknown metric '" + m + "' (expected ua_recall | wa | loss)" : "";
                        }));
  keys.push_back(scalar("train", "seed", [](auto& c) -> auto& { return c.train.seed; },
                        "model initialization, class balancing and batch order"));
  keys.push_back(scalar("train", "threads", [](auto& c) -> auto& { return c.train.threads; },
                        "intra-op threads (LibTorch and OpenBLAS); 0 = all cores; `crnn --threads N` wins over it",
                        [](C c) { return c.train.threads < 0 || c.train.threads > kMaxThreads
                                             ? fmt::format("must be in 0..{} (0 = all cores)", kMaxThreads) : ""; }));
  keys.push_back(scalar("train", "clip_norm", [](auto& c) -> auto& { return c.train.clip_norm; },
                        "> 0: clip the gradient's global L2 norm before each step (the paper mentions no clipping)",
                        [](C c) { return c.train.clip_norm >= 0 && std::isfinite(c.train.clip_norm)
                                             ? "" : "must be finite and >= 0 (0 = off)"; }));
  // Keys added after the first experiment cells were named, with the value runs had before.
  {
    auto field = [](auto& c) -> auto& { return c.train.min_epochs; };
    keys.push_back(added_later(
        scalar("train", "min_epochs", field,
               "early stopping may end a run only from this epoch on (0: from the first); for runs that "
               "sit at chance longer than `patience` (docs/training.md, \"Slow start\")",
               [](C c) { return c.train.min_epochs < 0 ? "must be >= 0 (0 = early stopping from the first epoch)" : ""; }),
        field, int64_t{0}));
  }
  {
    auto field = [](auto& c) -> auto& { return c.train.precision; };
    keys.push_back(added_later(
        scalar("train", "precision", field,
               "matrix products in `fp32`, or `bf16` with fp32 accumulation on AVX512-BF16 CPUs (state, gate "
               "nonlinearities, loss, weights and Adam stay fp32; docs/performance.md)",
               [](C c) { return c.train.precision != "fp32" && c.train.precision != "bf16"
                                    ? "must be \"fp32\" or \"bf16\", got \"" + c.train.precision + "\"" : ""; }),
        field, std::string("fp32")));
  }
  {
    auto field = [](auto& c) -> auto& { return c.data.batches_per_bucket; };
    keys.push_back(added_later(
        scalar("data", "batches_per_bucket", field,
               "training batches per length bucket (docs/batching.md): 1 = neighbouring lengths per batch, batch "
               "order shuffled over the epoch; 8 = eight batches of a bucket in a row (the order of crnn 0.1.0 "
               "before issue 31, kept for comparisons); 0 = no length bucketing",
               [](C c) { return c.data.batches_per_bucket < 0 ? "must be >= 0 (0 = one bucket: no length bucketing)"
                                                             : ""; }),
        field, int64_t{8}));
  }
  {
    auto field = [](auto& c) -> auto& { return c.data.stratify_by; };
    keys.push_back(added_later(
        scalar("data", "stratify_by", field,
               "when validation speakers are carved and the task is not speaker-level: the speaker-level label "
               "column they are balanced by (\"\" = the first one whose name contains \"gender\"; docs/splits.md)"),
        field, std::string("")));
  }
  return keys;
}

template <typename Get, typename Set>
LayerKey layer_int(std::string name, Get get, Set set, std::string doc) {
  LayerKey k;
  k.name = name;
  k.type = "integer";
  k.default_text = fmt::format("{}", get(FrontEndLayerOptions{}));
  k.doc = std::move(doc);
  k.read = [name, get, set](const TomlReader& r, const toml::table& t, const std::string& where,
                            FrontEndLayerOptions& l) {
    int64_t v = get(l);
    r.get(t, where, name, v);
    set(l, v);
  };
  k.write = [name, get](const FrontEndLayerOptions& l, toml::table& t) { t.insert_or_assign(name, get(l)); };
  return k;
}

template <typename Get, typename Set>
LayerKey layer_bool(std::string name, Get get, Set set, std::string doc) {
  LayerKey k = layer_int(name, get, set, std::move(doc));
  k.type = "boolean";
  k.default_text = get(FrontEndLayerOptions{}) ? "true" : "false";
  k.read = [name, get, set](const TomlReader& r, const toml::table& t, const std::string& where,
                            FrontEndLayerOptions& l) {
    bool v = get(l);
    r.get(t, where, name, v);
    set(l, v);
  };
  return k;
}

/// An enum key read with `parse` (which throws std::invalid_argument) and written with nn::to_string.
template <typename Get, typename Set, typename Parse>
LayerKey layer_enum(std::string name, Get get, Set set, Parse parse, std::string values, std::string doc) {
  LayerKey k;
  k.name = name;
  k.type = values;
  k.default_text = "`" + nn::to_string(get(FrontEndLayerOptions{})) + "`";
  k.doc = std::move(doc);
  k.read = [name, set, parse](const TomlReader& r, const toml::table& t, const std::string& where,
                              FrontEndLayerOptions& l) {
    std::string s;
    r.get(t, where, name, s);
    if (s.empty()) return;
    try {
      set(l, parse(s));
    } catch (const std::invalid_argument& e) {
      r.fail(where, name, e.what());
    }
  };
  k.write = [name, get](const FrontEndLayerOptions& l, toml::table& t) { t.insert_or_assign(name, nn::to_string(get(l))); };
  return k;
}

#define CRNN_LAYER_GET(field) [](const FrontEndLayerOptions& l) { return l.field(); }
#define CRNN_LAYER_SET(field) [](FrontEndLayerOptions& l, auto v) { l.field(v); }

std::vector<LayerKey> make_layer_keys() {
  std::vector<LayerKey> keys;
  {
    LayerKey k;
    k.name = "type";
    k.type = "conv, rnn, lstm or blstm";
    k.default_text = "(required)";
    k.doc = "a standard convolutional layer, or a convolutional recurrent layer of that kind";
    k.read = [](const TomlReader& r, const toml::table& t, const std::string& where, FrontEndLayerOptions& l) {
      std::string type;
      r.get(t, where, "type", type);
      if (type.empty()) r.fail(where, "type", "missing (conv | rnn | lstm | blstm)");
      if (type == "conv") {
        l.convolutional(true);
        return;
      }
      try {
        l.kind(nn::parse_recurrent_kind(type));
      } catch (const std::invalid_argument&) {
        r.fail(where, "type", "unknown type '" + type + "' (expected conv | rnn | lstm | blstm)");
      }
    };
    k.write = [](const FrontEndLayerOptions& l, toml::table& t) { t.insert_or_assign("type", l.type_name()); };
    keys.push_back(std::move(k));
  }
  keys.push_back(layer_int("features", CRNN_LAYER_GET(features), CRNN_LAYER_SET(features),
                           "output features per window (the paper's n)"));
  keys.push_back(layer_int("hidden_size", CRNN_LAYER_GET(hidden_size), CRNN_LAYER_SET(hidden_size),
                           "recurrent units per direction; 0 = derived (docs/layers.md); free only with source = output"));
  keys.push_back(layer_bool("extended", CRNN_LAYER_GET(extended), CRNN_LAYER_SET(extended),
                            "Extended CLSTM (docs/layers.md)"));
  keys.push_back(layer_enum("source", CRNN_LAYER_GET(source), CRNN_LAYER_SET(source), nn::parse_feature_source,
                            "hidden, cell or output", "the per-step sequence that becomes the features: h, c, or y = an affine map of the states"));
  keys.push_back(layer_enum("combine", CRNN_LAYER_GET(combine), CRNN_LAYER_SET(combine), nn::parse_feature_source,
                            "hidden or cell", "with source = output: the states the map reads (eq. 2 / 8: hidden; eq. 9: cell)"));
  keys.push_back(layer_enum("reduce", CRNN_LAYER_GET(reduce), CRNN_LAYER_SET(reduce), nn::parse_window_reduce,
                            "last, mean or max", "how a window's steps become one vector"));
  keys.push_back(layer_enum("activation", CRNN_LAYER_GET(activation), CRNN_LAYER_SET(activation),
                            nn::parse_activation, "sigmoid, relu or tanh",
                            "the standard convolutional layer's activation"));
  keys.push_back(layer_int("window", CRNN_LAYER_GET(window), CRNN_LAYER_SET(window), "frames per window (r1)"));
  keys.push_back(layer_int("shift", CRNN_LAYER_GET(shift), CRNN_LAYER_SET(shift), "frames between windows (r2)"));
  keys.push_back(layer_int("pool", CRNN_LAYER_GET(pool), CRNN_LAYER_SET(pool), "max-pooling size over windows (1: none)"));
  keys.push_back(layer_int("pool_shift", CRNN_LAYER_GET(pool_shift), CRNN_LAYER_SET(pool_shift), "max-pooling shift"));
  keys.push_back(layer_bool("peepholes", CRNN_LAYER_GET(peepholes), CRNN_LAYER_SET(peepholes),
                            "peephole connections in the layer's LSTM"));
  return keys;
}

#undef CRNN_LAYER_GET
#undef CRNN_LAYER_SET

}  // namespace

void apply_preset(ModelConfig& m, const std::string& preset) {
  auto o = nn::SequenceClassifierOptions::preset(preset, 2);
  m.front_end = o.front_end();
  m.recurrent_size = o.recurrent_size();
  m.bidirectional = o.bidirectional();
  m.peepholes = o.peepholes();
  m.dense_size = o.dense_size();
  m.average_last = o.average_last();
}

FrontEndLayerOptions read_layer(const TomlReader& r, const toml::table& t, const std::string& where) {
  std::set<std::string> known;
  for (const auto& k : layer_keys()) known.insert(k.name);
  r.check_keys(t, where, known);
  FrontEndLayerOptions l;
  for (const auto& k : layer_keys()) k.read(r, t, where, l);
  return l;
}

toml::array layers_to_toml(const std::vector<FrontEndLayerOptions>& front_end) {
  toml::array layers;
  for (const auto& l : front_end) {
    toml::table t;
    for (const auto& k : layer_keys()) k.write(l, t);
    layers.push_back(std::move(t));
  }
  return layers;
}

const std::vector<ConfigKey>& config_keys() {
  static const std::vector<ConfigKey> keys = make_config_keys();
  return keys;
}

const std::vector<LayerKey>& layer_keys() {
  static const std::vector<LayerKey> keys = make_layer_keys();
  return keys;
}

std::string config_keys_markdown() {
  std::string md = "| key | type | default | meaning |\n|---|---|---|---|\n";
  for (const auto& k : config_keys())
    md += fmt::format("| `{}.{}` | {} | {} | {} |\n", k.section, k.name, k.type, k.default_text, k.doc);
  for (const auto& k : layer_keys())
    md += fmt::format("| `model.front_end.N.{}` | {} | {} | {} |\n", k.name, k.type, k.default_text, k.doc);
  return md;
}

}  // namespace crnn::train
