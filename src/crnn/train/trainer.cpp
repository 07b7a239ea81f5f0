#include "crnn/train/trainer.h"

#include <fmt/core.h>
#include <fmt/format.h>

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <mutex>
#include <optional>
#include <sstream>

#include <unistd.h>

#include "crnn/data/balance.h"
#include "crnn/data/manifest.h"
#include "crnn/kernels/precision.h"
#include "crnn/nn/flops.h"
#include "crnn/nn/options.h"
#include "crnn/train/distributed.h"
#include "crnn/util/checksum.h"
#include "crnn/util/file_lock.h"
#include "crnn/train/checkpoint.h"
#include "crnn/train/run_data.h"
#include "crnn/util/progress.h"

namespace fs = std::filesystem;

namespace crnn::train {

Scheduler::Scheduler(std::string metric, int64_t patience, int64_t min_epochs)
    : metric_(std::move(metric)), patience_(patience), min_epochs_(min_epochs) {}

double Scheduler::score(double ua_recall, double wa, double loss) const {
  if (metric_ == "wa") return wa;
  if (metric_ == "loss") return -loss;
  return ua_recall;
}

bool Scheduler::update(int64_t epoch, double s) {
  last_epoch = epoch;
  if (s > best_score) {
    best_score = s;
    best_epoch = epoch;
    bad_epochs_ = 0;
    return true;
  }
  ++bad_epochs_;
  return false;
}

Evaluation evaluate(nn::SequenceClassifier& model, const std::vector<data::Example>& examples,
                    int64_t num_classes, int64_t batch_size, bool keep_probabilities) {
  Evaluation e;
  e.confusion = ConfusionMatrix(num_classes);
  if (examples.empty()) return e;
  torch::NoGradGuard no_grad;
  const bool was_training = model->is_training();
  model->eval();
  data::BatcherOptions bo;
  bo.batch_size = batch_size;
  bo.shuffle = false;
  bo.prefetch = 1;
  data::Batcher batcher(examples, bo);
  auto stream = batcher.epoch(0);
  double loss_sum = 0;
  while (auto b = stream.next()) {
    auto log_p = model(nn::PaddedSequence{b->features, b->lengths});
    loss_sum += torch::nll_loss(log_p, b->labels, {}, at::Reduction::Sum).item<double>();
    e.confusion.add(b->labels, log_p.argmax(1));
    e.count += b->labels.size(0);
    if (keep_probabilities) {
      auto p = log_p.exp().contiguous();
      for (int64_t i = 0; i < p.size(0); ++i) {
        e.probabilities.emplace_back(p[i].data_ptr<float>(), p[i].data_ptr<float>() + num_classes);
        e.ids.push_back(b->ids[i]);
      }
    }
  }
  e.loss = loss_sum / std::max<int64_t>(1, e.count);
  model->train(was_training);
  return e;
}

EvalResult eval_result(const Evaluation& e, const std::string& split, const std::string& task,
                       const std::vector<std::string>& labels) {
  EvalResult r;
  r.split = split;
  r.task = task;
  r.labels = labels;
  r.count = e.count;
  r.loss = e.loss;
  r.ua_recall = e.confusion.ua_recall();
  r.wa = e.confusion.wa();
  r.per_class_recall = e.confusion.per_class_recall();
  r.confusion = e.confusion.counts();
  return r;
}

std::string evaluation_table(const Evaluation& e, const std::string& split,
                             const std::vector<std::string>& labels) {
  std::string out = fmt::format("{}: {} utterances, UA recall {:.2f}%, WA {:.2f}%, loss {:.4f}\n", split,
                                e.count, 100 * e.confusion.ua_recall(), 100 * e.confusion.wa(), e.loss);
  // Count columns as wide as the longest label (6 to 12 characters): "neutral"
  // and "nuetral" must not both print as "neutra". Labels longer than that
  // (cut, they could read as one another or run into their neighbour) number
  // the columns instead: "#2" is the row "#2 very angry indeed".
  constexpr size_t kMaxColumn = 12;
  bool numbered = false;
  for (auto& l : labels) numbered |= l.size() > kMaxColumn;
  const auto name_of = [&](size_t i) { return numbered ? fmt::format("#{} {}", i + 1, labels[i]) : labels[i]; };
  size_t w = 10;
  for (size_t i = 0; i < labels.size(); ++i) w = std::max(w, name_of(i).size() + 1);
  out += fmt::format("{:<{}} {:>8}  confusion (rows: truth, columns: predicted)\n", "class", w, "recall");
  size_t cw = 6;
  for (size_t i = 0; i < labels.size(); ++i)
    cw = std::max(cw, numbered ? fmt::format("#{}", i + 1).size() : labels[i].size());
  out += fmt::format("{:<{}} {:>8} ", "", w, "");
  for (size_t c = 0; c < labels.size(); ++c)
    out += fmt::format(" {:>{}}", numbered ? fmt::format("#{}", c + 1) : labels[c], cw);
  out += "\n";
  auto rec = e.confusion.per_class_recall();
  std::vector<std::string> absent;
  for (size_t r = 0; r < labels.size(); ++r) {
    // A class without utterances in this split has no recall (not 0 %); UA
    // recall is the mean over the classes present.
    if (std::isnan(rec[r])) absent.push_back(labels[r]);
    out += std::isnan(rec[r]) ? fmt::format("{:<{}} {:>8} ", name_of(r), w, "n/a")
                              : fmt::format("{:<{}} {:>7.2f}% ", name_of(r), w, 100 * rec[r]);
    for (size_t c = 0; c < labels.size(); ++c) out += fmt::format(" {:>{}}", e.confusion.counts()[r][c], cw);
    out += "\n";
  }
  if (!absent.empty())
    out += fmt::format("({} class(es) without utterances in this split, recall n/a, left out of UA recall: {})\n",
                       absent.size(), fmt::join(absent, ", "));
  return out;
}

namespace {

/// A resumed run may change its training schedule ([train]) and where its data
/// lives (data.manifest, data.features), nothing that changes the model or
/// which utterances it sees: the checkpoint's weights would not fit, or the
/// metrics before and after would measure different things.
void check_resumable(const RunConfig& saved, const RunConfig& resumed, const std::string& checkpoint) {
  RunConfig comparable = resumed;
  comparable.train = saved.train;
  comparable.data.manifest = saved.data.manifest;
  comparable.data.features = saved.data.features;
  const auto changed = saved.changed_lines(comparable);
  if (changed.empty()) return;
  throw ConfigError(fmt::format("{}: cannot resume with a different model or data setup (only [train] keys, "
                                "data.manifest and data.features may change); changed:\n  {}",
                                checkpoint, fmt::join(changed, "\n  ")));
}

/// A resumed run may read its data from elsewhere (check_resumable), but the
/// data must be what the checkpoint was trained on: features made with the
/// same extractor, as many values per frame, the same classes. Otherwise the
/// weights would be trained on (or fail on) features they were not made for.
void check_resumed_data(const ModelBundle& saved, const RunData& d, const DataConfig& data,
                        const std::string& checkpoint) {
  check_features_match(d.features.extractor, saved.feature_extractor, data.features, checkpoint);
  if (d.input_size != saved.input_size)
    throw data::DataError(fmt::format("{}: features have {} values per frame, the checkpoint {} has {}", data.features,
                                      d.input_size, checkpoint, saved.input_size));
  if (d.labels.names() != saved.labels)
    throw data::DataError(fmt::format("{}: task '{}' has the classes {}, the checkpoint {} was trained on {}",
                                      data.manifest, data.task, fmt::join(d.labels.names(), ", "), checkpoint,
                                      fmt::join(saved.labels, ", ")));
  // The same utterances in the same splits: a speaker moved from test to train
  // would be trained on and then scored as unseen.
  if (!saved.splits.empty()) {
    const auto changes = data::split_changes(saved.splits, d.members);
    if (!changes.empty())
      throw data::DataError(fmt::format("{}: the split is not the one {} was trained with; resuming would mix "
                                        "training and evaluation speakers. Changed:\n  {}\nRestore the manifest's "
                                        "split, or train a new run",
                                        data.manifest, checkpoint, fmt::join(changes, "\n  ")));
  }
}

/// Refuses a model whose weights, gradients and Adam state alone (16 bytes
/// per parameter), or those plus one training step's activations for a batch
/// of `batch` × `frames` (nn::activation_parts), exceed this machine's memory,
/// naming the config key that sizes the largest part — instead of LibTorch's
/// "can't allocate N bytes" (or the kernel's OOM killer) later.
void check_model_fits(const nn::SequenceClassifierOptions& options, int64_t batch, int64_t frames) {
  const auto parts = nn::parameter_parts(options);
  double total = 0;
  const nn::ParameterPart* largest = &parts.front();
  for (const auto& p : parts) {
    total += p.count;
    if (p.count > largest->count) largest = &p;
  }
  const double memory = static_cast<double>(sysconf(_SC_PHYS_PAGES)) * static_cast<double>(sysconf(_SC_PAGE_SIZE));
  const double need = 16.0 * total;
  if (memory > 0 && need > memory)
    throw ConfigError(fmt::format("{}: the model would have {:.3g} parameters ({:.3g} of them in this part), {:.3g} GB "
                                  "with gradients and Adam's state; this machine has {:.3g} GB of memory",
                                  largest->key, total, largest->count, need / 1e9, memory / 1e9));
  const auto acts = nn::activation_parts(options, batch, frames);
  double act_total = 0;
  const nn::MemoryPart* act_largest = &acts.front();
  for (const auto& p : acts) {
    act_total += p.bytes;
    if (p.bytes > act_largest->bytes) act_largest = &p;
  }
  if (memory > 0 && need + act_total > memory)
    throw ConfigError(fmt::format(
        "{}: one training step would need about {:.3g} GB of activations ({:.3g} GB in this part) for a batch of "
        "{} x {} frames (train.batch_size; the longest training utterance), plus {:.3g} GB for the model; this "
        "machine has {:.3g} GB of memory",
        act_largest->key, act_total / 1e9, act_largest->bytes / 1e9, batch, frames, need / 1e9, memory / 1e9));
}

/// The validation of a distributed run: rank r evaluates examples r, r + W, …
/// and the confusion counts and loss sums are added over the ranks, so every
/// rank sees the evaluation of the whole set (and stops at the same epoch).
Evaluation evaluate_sharded(ProcessGroup& group, nn::SequenceClassifier& model, const std::vector<data::Example>& all,
                            int64_t classes, int64_t batch_size) {
  std::vector<data::Example> mine;
  for (size_t i = static_cast<size_t>(group.rank()); i < all.size(); i += static_cast<size_t>(group.world_size()))
    mine.push_back(all[i]);
  Evaluation local = mine.empty() ? Evaluation{ConfusionMatrix(classes)} : evaluate(model, mine, classes, batch_size);
  auto counts = torch::zeros({classes * classes + 2}, torch::kDouble);
  for (int64_t t = 0; t < classes; ++t)
    for (int64_t p = 0; p < classes; ++p) counts[t * classes + p] = static_cast<double>(local.confusion.counts()[t][p]);
  counts[classes * classes] = local.loss * static_cast<double>(local.count);
  counts[classes * classes + 1] = static_cast<double>(local.count);
  std::vector<torch::Tensor> reduce{counts};
  group.allreduce_sum(reduce);
  Evaluation e{ConfusionMatrix(classes)};
  for (int64_t t = 0; t < classes; ++t)
    for (int64_t p = 0; p < classes; ++p)
      for (int64_t k = static_cast<int64_t>(reduce[0][t * classes + p].item<double>()); k > 0; --k) e.confusion.add(t, p);
  e.count = static_cast<int64_t>(reduce[0][classes * classes + 1].item<double>());
  e.loss = e.count > 0 ? reduce[0][classes * classes].item<double>() / static_cast<double>(e.count) : 0;
  return e;
}

}  // namespace

std::unique_ptr<kernels::PrecisionGuard> precision_guard(const std::string& precision, const std::string& setting) {
  const auto p = kernels::parse_precision(precision);
  if (p == kernels::Precision::bf16 && !kernels::bf16_available())
    throw ConfigError(setting + ": " + kernels::bf16_unavailable_reason());
  return std::make_unique<kernels::PrecisionGuard>(p);
}

void resolve_data_paths(RunConfig& config) {
  for (const auto& [key, path] : {std::pair<const char*, std::string*>{"data.manifest", &config.data.manifest},
                                  {"data.features", &config.data.features}}) {
    if (path->empty()) continue;
    // Say which key named a missing file, and from where a relative path was taken.
    if (!fs::exists(*path))
      throw ConfigError(fmt::format("{}: {}: file not found{}", key, *path,
                                    fs::path(*path).is_relative()
                                        ? fmt::format(" (a relative path is taken from the working directory, {})",
                                                      fs::current_path().string())
                                        : ""));
    *path = fs::absolute(*path).lexically_normal().string();
  }
}

namespace {

RunSummary train_run_in(const RunConfig& config_in, const std::string& run_dir, const TrainOptions& options,
                        std::ostream& log);

}  // namespace

RunSummary train_run(const RunConfig& config_in, const std::string& run_dir, const TrainOptions& options,
                     std::ostream& log) {
  try {
    return train_run_in(config_in, run_dir, options, log);
  } catch (const WriteError& e) {
    // A failed write (a full disk) keeps the files of the epochs finished
    // before it; running the same command again would be refused (the
    // directory holds a run), so say how to go on from there.
    throw WriteError(fmt::format("{}; the run keeps the epochs it finished, if any: resume it once the cause is fixed (crnn "
                                 "train --resume {}; Python: crnn.train(resume=...); crnn repeat and crnn experiment "
                                 "resume their runs when run again)",
                                 e.what(), run_dir));
  }
}

namespace {

RunSummary train_run_in(const RunConfig& config_in, const std::string& run_dir, const TrainOptions& options,
                        std::ostream& log) {
  // The run's config.toml and model file record absolute data paths: relative
  // ones would be resolved against whatever directory a later eval, replay or
  // resume runs in, and could silently read other data.
  // A config built in code has not been through parse()'s checks: an invalid
  // value would otherwise surface only after training, when best.pt is read back.
  config_in.validate();
  for (const auto& note : config_in.notes()) log << "train: note: " << note << "\n";
  RunConfig config = config_in;
  resolve_data_paths(config);
  // Training, validation and the test evaluation all run in the run's precision.
  const auto precision = precision_guard(config.train.precision, "train.precision = \"bf16\"");
  // Several processes (distributed.h): every rank trains its share of each
  // batch; rank 0 alone writes the run directory.
  std::unique_ptr<ProcessGroup> group;
  if (auto env = distributed_from_environment()) {
    group = std::make_unique<ProcessGroup>(*env);
    log << fmt::format("distributed: rank {} of {} ({}:{})\n", env->rank, env->world_size, env->master_addr,
                       env->master_port);
  }
  const bool writer = !group || group->rank() == 0;
  const fs::path dir(run_dir);
  const fs::path last_path = dir / "last.pt", best_path = dir / "best.pt", metrics_path = dir / "metrics.csv";
  // A run killed before its first checkpoint has nothing to resume from: it
  // starts from the beginning, which is what resuming it means.
  // A finished run (summary.json) whose checkpoints were not kept (results
  // committed without *.pt) is not "stopped before its first epoch": starting
  // it again would overwrite its results.
  std::error_code unreadable;  // an unreadable directory is refused below, on every rank
  const bool finished = fs::exists(dir / "summary.json", unreadable);
  const bool resume = options.resume && fs::exists(last_path, unreadable);
  // One process trains into a run directory at a time: a second one (a resume
  // of a run that is still going, the same -o twice) would mix two runs' files.
  // The writer holds the directory's lock from here (or from creating it) on.
  std::unique_ptr<FileLock> run_dir_lock;
  const auto lock_the_run_directory = [&] {
    run_dir_lock = FileLock::try_directory(run_dir);
    if (!run_dir_lock)
      throw ConfigError(run_dir + ": another process is training into this run directory (it holds the "
                        "directory's lock); wait for it to end or stop it" +
                        (fs::exists(last_path) ? ", then resume the run" : ""));
  };
  const auto refuse_the_run_directory = [&] {
    if (writer && fs::is_directory(dir, unreadable)) lock_the_run_directory();  // first: a run still going
    if (fs::exists(dir) && !fs::is_directory(dir))
      throw ConfigError(run_dir + ": exists and is not a directory (the run directory to create)");
    if (options.resume && !resume && finished)
      throw ConfigError(run_dir + ": this run has finished (summary.json) and has no last.pt to resume from, so "
                        "there is nothing to resume; to train it again, choose another output directory");
    if (writer && !options.resume && (fs::exists(last_path) || finished))
      throw ConfigError(run_dir + ": already holds a run (" + (finished ? "summary.json" : "last.pt") +
                        "); resume it (crnn train --resume; Python: crnn.train(resume=...); TrainOptions::resume) "
                        "or choose another output directory");
  };
  if (!group) {
    refuse_the_run_directory();
  } else {
    // Every rank hears why the run does not start (rank 0 alone writes the
    // directory, so it alone may refuse it), instead of a broken connection.
    std::exception_ptr mine;
    std::string why;
    try {
      refuse_the_run_directory();
    } catch (const std::exception& e) {
      mine = std::current_exception();
      why = e.what();
    }
    std::string first;
    try {
      first = group->first_refusal(why);
    } catch (...) {  // another rank is gone: this rank's own reason, if any, says more
      if (mine) std::rethrow_exception(mine);
      throw;
    }
    if (mine) std::rethrow_exception(mine);
    if (!first.empty()) throw ConfigError("distributed training: the run does not start: " + first);
  }
  if (options.resume && !resume)
    log << run_dir << ": no checkpoint yet (stopped before the first epoch ended); starting the run from the beginning\n";
  std::optional<LoadedModel> resumed;
  if (resume) {
    // Load and compare before touching the run directory: a rejected resume
    // must leave config.toml and the checkpoint as they were.
    resumed = load_model(last_path.string());
    const auto saved = RunConfig::parse(resumed->bundle.config_toml, {}, last_path.string() + " (embedded config)");
    check_resumable(saved, config, last_path.string());
    if (config.train.max_epochs < resumed->state.epoch)
      throw ConfigError(fmt::format("{}: train.max_epochs = {} is below the {} epochs this run has trained: there is "
                                    "nothing to resume (raise it to train on; the run is left as it is)",
                                    run_dir, config.train.max_epochs, resumed->state.epoch));
    // Settings changed for the rest of the run (--set on resume) are said, and
    // config.toml records them from now on: a replay of it trains the whole run with them.
    if (const auto changed = saved.changed_lines(config); !changed.empty())
      log << fmt::format("{}: resuming after epoch {} with settings changed since (config.toml records them from "
                         "now on): {}\n",
                         run_dir, resumed->state.epoch, fmt::join(changed, "; "));
  }
  torch::manual_seed(config.train.seed);
  RunData d = load_run_data(config.data, log, /*new_run=*/!resumed);
  if (resumed) check_resumed_data(resumed->bundle, d, config.data, last_path.string());
  if (group) {
    // Ranks with other configs, data or checkpoints would silently train different things.
    uint32_t data_sum = 0;
    for (const auto* split : {&d.train, &d.valid})
      for (const auto& e : *split) {
        data_sum = crnn::crc32(e.features.data_ptr(), static_cast<size_t>(e.features.numel()) * sizeof(float), data_sum);
        data_sum = crnn::crc32(&e.label, sizeof e.label, data_sum);
      }
    group->check_same("config", config.identity_toml());
    group->check_same("training data", fmt::format("{} {} {:08x}", d.train.size(), d.valid.size(), data_sum));
    group->check_same("checkpoint", resumed ? fmt::format("epoch {}", resumed->state.epoch) : "none");
    group->check_same("layer implementation (--impl)", crnn::nn::to_string(crnn::nn::default_implementation()));
  }
  const int64_t classes = d.labels.size();
  const auto model_options = config.model_options(classes, d.input_size);
  int64_t longest = 1;
  for (const auto& e : d.train) longest = std::max<int64_t>(longest, e.features.size(0));
  check_model_fits(model_options, std::min<int64_t>(config.train.batch_size, std::max<size_t>(d.train.size(), 1)),
                   longest);
  // Only now, with the config, data and model accepted: a run refused for them
  // leaves no directory behind, and a rejected resume leaves it as it was.
  if (writer) {
    fs::create_directories(dir);
    if (!run_dir_lock) lock_the_run_directory();  // created just now (or by a process that started alongside)
    crnn::remove_stale_temporaries(dir.string());  // of a writer killed during a write (kill -9)
    crnn::write_text_file_atomic((dir / "config.toml").string(), config.to_toml());
  }
  nn::SequenceClassifier model(model_options);
  torch::optim::Adam optimizer(
      model->parameters(),
      torch::optim::AdamOptions(config.train.lr).betas({config.train.beta1, config.train.beta2}));

  ModelBundle bundle;
  bundle.config_toml = config.to_toml();
  bundle.task = config.data.task;
  bundle.labels = d.labels.names();
  bundle.input_size = d.input_size;
  bundle.sample_rate = d.features.sample_rate;
  bundle.feature_extractor = d.features.extractor;
  bundle.global_stats = d.global_stats;
  bundle.splits = d.members;

  Scheduler scheduler(config.train.selection_metric, config.train.patience, config.train.min_epochs);
  TrainingState state;
  std::vector<EpochMetrics> metrics;  // metrics.csv, rewritten (atomically) after every epoch
  if (resumed) {
    auto& loaded = *resumed;
    torch::NoGradGuard g;
    auto src = loaded.model->named_parameters();
    for (auto& p : model->named_parameters()) p.value().copy_(src[p.key()]);
    load_optimizer(last_path.string(), optimizer);
    state = loaded.state;
    scheduler.best_epoch = state.best_epoch;
    scheduler.best_score = state.best_metric;
    scheduler.bad_epochs() = state.bad_epochs;
    scheduler.last_epoch = state.epoch;
    if (state.rng_state.defined()) {
      auto gen = at::detail::getDefaultCPUGenerator();
      std::lock_guard<std::mutex> lock(gen.mutex());
      gen.set_state(state.rng_state);
    }
    // Keep exactly the metric rows of the epochs the checkpoint holds.
    for (const auto& row : read_metrics_csv(metrics_path.string()))
      if (row.epoch <= state.epoch) metrics.push_back(row);
    if (static_cast<int64_t>(metrics.size()) != state.epoch)
      log << fmt::format("warning: {} holds {} rows for the checkpoint's {} epochs (the missing ones are lost)\n",
                         metrics_path.string(), metrics.size(), state.epoch);
    if (writer) write_metrics_csv(metrics_path.string(), metrics);
    log << fmt::format("resuming {} after epoch {} (best epoch {})\n", run_dir, state.epoch, state.best_epoch);
  } else if (writer) {
    write_metrics_csv(metrics_path.string(), metrics);
  }

  // Class balancing by oversampling, once, seeded (SPEC §3).
  std::vector<int64_t> labels;
  for (auto& e : d.train) labels.push_back(e.label);
  data::OversampleOptions oo;
  oo.seed = config.train.seed;
  std::vector<data::Example> balanced;
  for (int64_t i : data::oversample_indices(labels, oo)) balanced.push_back(d.train[i]);
  log << fmt::format("train: {} utterances after class balancing ({} before)\n", balanced.size(), d.train.size());
  data::BatcherOptions bo;
  bo.batch_size = config.train.batch_size;
  bo.batches_per_bucket = config.data.batches_per_bucket;
  bo.seed = config.train.seed;
  data::Batcher batcher(std::move(balanced), bo);

  int64_t batches_this_process = 0;
  const bool stopped_before = scheduler.should_stop();
  for (int64_t epoch = state.epoch + 1; epoch <= config.train.max_epochs && !stopped_before; ++epoch) {
    const auto t0 = std::chrono::steady_clock::now();
    model->train();
    Progress progress(fmt::format("epoch {}/{}", epoch, config.train.max_epochs), batcher.batches_per_epoch(),
                      "batches", 10.0, options.progress);
    auto stream = batcher.epoch(epoch);
    double loss_sum = 0;
    int64_t n = 0, frames = 0;
    while (auto b = stream.next()) {
      optimizer.zero_grad();
      const int64_t bs = b->labels.size(0);
      int64_t batch_frames = 0;
      double loss_value = 0;
      if (!group) {
        auto loss = torch::nll_loss(model(nn::PaddedSequence{b->features, b->lengths}), b->labels);
        loss_value = loss.item<double>();
        if (std::isfinite(loss_value)) loss.backward();
        batch_frames = b->lengths.sum().item<int64_t>();
      } else {
        // This rank's rows of the global batch; the loss is their share of the
        // global mean, so that summed gradients are the one-process gradient.
        const auto [begin, end] = shard_rows(bs, group->rank(), group->world_size());
        double local[2] = {0, 0};  // loss sum, frames
        if (end > begin) {
          auto lengths = b->lengths.slice(0, begin, end);
          auto x = b->features.slice(0, begin, end).narrow(1, 0, lengths.max().item<int64_t>());
          auto loss = torch::nll_loss(model(nn::PaddedSequence{x, lengths}), b->labels.slice(0, begin, end),
                                      /*weight=*/{}, torch::Reduction::Sum) /
                      static_cast<double>(bs);
          loss.backward();
          local[0] = loss.item<double>();
          local[1] = static_cast<double>(lengths.sum().item<int64_t>());
        }
        std::vector<torch::Tensor> reduce;
        for (auto& p : model->parameters()) {
          if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
          reduce.push_back(p.grad());
        }
        reduce.push_back(torch::tensor({local[0], local[1]}, torch::kFloat));
        group->allreduce_sum(reduce);
        loss_value = reduce.back()[0].item<double>();
        batch_frames = static_cast<int64_t>(reduce.back()[1].item<double>());
      }
      // A diverged run must stop loudly, not train on NaN for the rest of its epochs.
      if (!std::isfinite(loss_value))
        throw std::runtime_error(fmt::format(
            "training diverged: loss is {} at epoch {}, batch {} (last good checkpoint: {}); try a "
            "lower train.lr",
            loss_value, epoch, progress.done() + 1, fs::exists(last_path) ? last_path.string() : "none"));
      if (config.train.clip_norm > 0) torch::nn::utils::clip_grad_norm_(model->parameters(), config.train.clip_norm);
      optimizer.step();
      loss_sum += loss_value * bs;
      n += bs;
      frames += batch_frames;
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      progress.advance(1, fmt::format("loss {:.4f}, {:.0f} frames/s", loss_sum / n, frames / secs));
      if (options.stop && options.stop->load())
        throw TrainInterrupted(fmt::format("{}: interrupted in epoch {}; {}", run_dir, epoch,
                                           fs::exists(last_path)
                                               ? "its last.pt holds the last finished epoch: resume the run to go on"
                                               : "no epoch had finished: start it again"));
      if (options.crash_after_batches > 0 && ++batches_this_process >= options.crash_after_batches) {
        log << "crash_after_batches reached: exiting abruptly (testing aid)\n";
        log.flush();
        std::_Exit(137);
      }
    }
    const double train_secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    progress.finish(fmt::format("loss {:.4f}", loss_sum / std::max<int64_t>(1, n)));
    auto val = group ? evaluate_sharded(*group, model, d.valid, classes, config.train.batch_size)
                     : evaluate(model, d.valid, classes, config.train.batch_size);
    const double epoch_secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double ua = val.confusion.ua_recall(), wa = val.confusion.wa();
    const bool improved = scheduler.update(epoch, scheduler.score(ua, wa, val.loss));
    metrics.push_back({epoch, loss_sum / std::max<int64_t>(1, n), val.loss, ua, wa, epoch_secs, frames / train_secs});
    if (writer) write_metrics_csv(metrics_path.string(), metrics);
    state.epoch = epoch;
    state.best_epoch = scheduler.best_epoch;
    state.best_metric = scheduler.best_score;
    state.bad_epochs = scheduler.bad_epochs();
    state.wall_seconds += epoch_secs;
    {
      auto gen = at::detail::getDefaultCPUGenerator();
      std::lock_guard<std::mutex> lock(gen.mutex());
      state.rng_state = gen.get_state();
    }
    // best.pt and last.pt as one step: both written, then both renamed, so a
    // failed write (disk full) leaves the pair of the previous epoch, which agree.
    std::vector<std::pair<std::string, std::string>> files;
    if (improved) files.emplace_back(best_path.string(), checkpoint_bytes(model, nullptr, bundle, &state));
    files.emplace_back(last_path.string(), checkpoint_bytes(model, &optimizer, bundle, &state));
    if (writer) write_files_atomic(files);
    log << fmt::format("epoch {:>3}: train loss {:.4f} | val loss {:.4f}, UA {:.2f}%, WA {:.2f}% | {:.1f} s, {:.0f} frames/s{}\n",
                       epoch, loss_sum / std::max<int64_t>(1, n), val.loss, 100 * ua, 100 * wa, epoch_secs,
                       frames / train_secs, improved ? " | best" : "");
    if (group && group->allreduce_calls() > 0)
      log << fmt::format("distributed: {} allreduces so far, {:.2f} ms and {:.0f} kB each on average\n",
                         group->allreduce_calls(), 1e3 * group->allreduce_seconds() / group->allreduce_calls(),
                         group->allreduce_bytes() / 1e3 / group->allreduce_calls());
    if (scheduler.should_stop()) {
      log << fmt::format("early stopping: {} epochs without improvement (best epoch {})\n",
                         scheduler.bad_epochs(), scheduler.best_epoch);
      break;
    }
  }

  RunSummary s;
  if (!writer) {
    // The other ranks are done: rank 0 evaluates the best model and writes the files.
    s.best_epoch = scheduler.best_epoch;
    s.epochs_run = state.epoch;
    return s;
  }
  // Final evaluation with the best model.
  auto best = load_model(best_path.string());
  s.best_epoch = scheduler.best_epoch;
  s.epochs_run = state.epoch;
  auto val = evaluate(best.model, d.valid, classes, config.train.batch_size);
  write_eval_json((dir / "eval_valid.json").string(), eval_result(val, "valid", config.data.task, d.labels.names()));
  s.val_ua_recall = val.confusion.ua_recall();
  s.val_wa = val.confusion.wa();
  if (!d.test.empty()) {
    auto test = evaluate(best.model, d.test, classes, config.train.batch_size);
    write_eval_json((dir / "eval_test.json").string(), eval_result(test, "test", config.data.task, d.labels.names()));
    s.test_ua_recall = test.confusion.ua_recall();
    s.test_wa = test.confusion.wa();
    log << evaluation_table(test, "test (best model)", d.labels.names());
  }
  s.wall_seconds = state.wall_seconds;
  s.task = config.data.task;
  s.labels = d.labels.names();
  s.train_utterances = static_cast<int64_t>(d.train.size());
  s.valid_utterances = static_cast<int64_t>(d.valid.size());
  s.test_utterances = static_cast<int64_t>(d.test.size());
  s.train_speakers = d.train_speakers;
  s.valid_speakers = d.valid_speakers;
  s.test_speakers = d.test_speakers;
  s.seed = config.train.seed;
  s.split = d.split_source;
  s.feature_extractor = d.features.extractor;
  s.manifest_crc32 = d.manifest_crc32;
  write_run_summary((dir / "summary.json").string(), s);
  return s;
}

}  // namespace

RunStart start_run(const std::string& config_path, const std::vector<std::string>& overrides, const std::string& output,
                   const std::string& resume_dir) {
  RunStart start;
  if (!resume_dir.empty()) {
    if (!config_path.empty() || !output.empty())
      throw ConfigError(fmt::format("{}: a resumed run keeps its own config and directory; give either a config and an "
                                    "output directory, or the run to resume",
                                    resume_dir));
    const auto path = fs::path(resume_dir) / "config.toml";
    if (!fs::exists(path))
      throw ConfigError(fmt::format("{}: not a run directory (no config.toml); start a new run there instead of "
                                    "resuming",
                                    resume_dir));
    start.config = RunConfig::from_file(path.string(), overrides);
    start.run_dir = resume_dir;
    start.resume = true;
    return start;
  }
  if (config_path.empty()) throw ConfigError("no run config given (a CONFIG.toml, or a run directory to resume)");
  if (output.empty()) throw ConfigError(config_path + ": no run directory given to train into");
  start.config = RunConfig::from_file(config_path, overrides);
  start.run_dir = output;
  return start;
}

}  // namespace crnn::train
