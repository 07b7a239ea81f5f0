#include "crnn/ops/torch_ops.h"

#include <torch/custom_class.h>
#include <torch/library.h>

#include <signal.h>

#include <atomic>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <optional>
#include <nlohmann/json.hpp>

#include "crnn/audio/audio_files.h"
#include "crnn/audio/egemaps.h"
#include "crnn/audio/fbank.h"
#include "crnn/audio/read_audio.h"
#include "crnn/data/error.h"
#include "crnn/data/extract_features.h"
#include "crnn/data/feature_store.h"
#include "crnn/data/normalization.h"
#include "crnn/infer/classifier.h"
#include "crnn/infer/predictions.h"
#include "crnn/kernels/precision.h"
#include "crnn/nn/sequence_classifier.h"
#include "crnn/ops/module_spec.h"
#include "crnn/train/checkpoint.h"
#include "crnn/train/config.h"
#include "crnn/train/evaluate_run.h"
#include "crnn/train/experiment_runner.h"
#include "crnn/train/repeat.h"
#include "crnn/train/run_files.h"
#include "crnn/train/trainer.h"
#include "crnn/util/file_io.h"
#include "crnn/util/interrupt.h"
#include "crnn/util/progress.h"
#include "crnn/util/threads.h"

namespace crnn::ops {

namespace {

using torch::Tensor;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

/// Builds a module without disturbing the caller's random numbers: its
/// initial values are overwritten by the caller's parameters anyway.
BuiltModule build_quietly(const std::string& kind, const std::string& options) {
  auto generator = at::detail::getDefaultCPUGenerator();
  const auto state = generator.get_state();
  torch::NoGradGuard no_grad;
  auto built = build_module(kind, options);
  generator.set_state(state);
  return built;
}

/// The checks every input of module_forward gets, worded for a Python user.
void check_inputs(const std::string& who, int64_t input_size, const Tensor& x, const Tensor& lengths) {
  TORCH_CHECK(x.defined() && lengths.defined(), who, ": x and lengths must be tensors");
  TORCH_CHECK(x.device().is_cpu(), who, ": x is on ", x.device(),
              "; this crnn build runs on the CPU only (use x.cpu())");
  TORCH_CHECK(lengths.device().is_cpu(), who, ": lengths is on ", lengths.device(),
              "; lengths must be a CPU tensor");
  TORCH_CHECK(x.scalar_type() == torch::kFloat || x.scalar_type() == torch::kDouble, who,
              ": x must be float32 or float64, got ", x.scalar_type());
  TORCH_CHECK(x.dim() == 3, who, ": x must be batch × time × features (3-D), got shape ", x.sizes());
  TORCH_CHECK(x.size(2) == input_size, who, ": x has ", x.size(2), " features per frame, the module expects ",
              input_size, " (input_size)");
  TORCH_CHECK(x.size(0) >= 1 && x.size(1) >= 1, who, ": x is empty (shape ", x.sizes(), ")");
  TORCH_CHECK(!at::isFloatingType(lengths.scalar_type()) && !at::isComplexType(lengths.scalar_type()) &&
                  lengths.scalar_type() != torch::kBool,
              who, ": lengths must be an integer tensor, got ", lengths.scalar_type());
  TORCH_CHECK(lengths.dim() == 1 && lengths.size(0) == x.size(0), who,
              ": lengths must have one entry per sequence (", x.size(0), "), got shape ", lengths.sizes());
  const auto l = lengths.to(torch::kLong);
  const int64_t lo = l.min().item<int64_t>(), hi = l.max().item<int64_t>();
  TORCH_CHECK(lo >= 1 && hi <= x.size(1), who, ": lengths must be in 1..", x.size(1),
              " (the padded length of x), got values from ", lo, " to ", hi);
  TORCH_CHECK(torch::isfinite(x).all().item<bool>(), who, ": x contains NaN or infinite values");
}

/// Points the module's parameters at the caller's tensors (detached: the
/// module's graph ends at its own leaves); returns those leaves.
std::vector<Tensor> bind_parameters(const std::string& who, torch::nn::Module& module,
                                    const std::vector<Tensor>& params, const Tensor& x) {
  auto named = module.named_parameters(/*recurse=*/true);
  TORCH_CHECK(named.size() == params.size(), who, ": expected ", named.size(), " parameter tensors, got ",
              params.size());
  std::vector<Tensor> leaves;
  leaves.reserve(params.size());
  for (size_t i = 0; i < params.size(); ++i) {
    const auto& name = named[i].key();
    const Tensor& p = params[i];
    TORCH_CHECK(p.defined(), who, ": parameter ", parameter_attribute_name(name), " is undefined");
    TORCH_CHECK(p.device().is_cpu(), who, ": parameter ", parameter_attribute_name(name), " is on ", p.device(),
                "; this crnn build runs on the CPU only");
    TORCH_CHECK(p.scalar_type() == x.scalar_type(), who, ": parameter ", parameter_attribute_name(name), " is ",
                p.scalar_type(), " but x is ", x.scalar_type(), " (convert one: module.double() or x.float())");
    TORCH_CHECK(p.sizes() == named[i].value().sizes(), who, ": parameter ", parameter_attribute_name(name),
                " has shape ", p.sizes(), ", the module's options give ", named[i].value().sizes());
    Tensor leaf = named[i].value();
    leaf.set_data(p.detach().contiguous());
    leaves.push_back(leaf);
  }
  return leaves;
}

/// One autograd node around a whole crnn module: its forward records the
/// module's own graph (fused kernels included) on private leaves, and its
/// backward runs that graph and hands the leaves' gradients to the caller's
/// parameters. First derivatives only.
class ModuleFunction : public torch::autograd::Function<ModuleFunction> {
 public:
  /// `built`: the module module_forward already built (and checked the input against).
  static variable_list forward(AutogradContext* ctx, BuiltModule built, std::string kind, std::string options, bool training,
                               Tensor x, Tensor lengths, at::TensorList params) {
    torch::AutoGradMode grad(true);
    const std::string who = python_name(kind);
    built.module->train(training);
    auto leaves = bind_parameters(who, *built.module, params.vec(), x);
    Tensor xin = x.detach().contiguous().requires_grad_(x.requires_grad());
    auto y = built.forward({xin, lengths.to(torch::kLong).contiguous()});
    // Saved as SavedVariables, not saved_data: the engine releases them after
    // a backward that does not retain the graph, and with them the module's
    // own graph and its buffers.
    std::vector<Tensor> saved{y.data, xin};
    saved.insert(saved.end(), leaves.begin(), leaves.end());
    ctx->save_for_backward(saved);
    ctx->saved_data["kind"] = kind;
    ctx->saved_data["options"] = options;
    ctx->saved_data["training"] = training;
    ctx->saved_data["lengths"] = lengths;
    ctx->saved_data["backward_count"] = static_cast<int64_t>(0);
    Tensor y_lengths = y.lengths.clone();
    ctx->mark_non_differentiable({y_lengths});
    // A copy, so that in-place changes of the output do not touch the saved graph.
    return {y.data.detach().clone(), y_lengths};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_out) {
    const auto saved = ctx->get_saved_variables();
    const Tensor& y = saved[0];
    const Tensor& x = saved[1];
    const std::vector<Tensor> leaves(saved.begin() + 2, saved.end());
    std::vector<Tensor> inputs;
    if (x.requires_grad()) inputs.push_back(x);
    inputs.insert(inputs.end(), leaves.begin(), leaves.end());
    Tensor g = grad_out[0].defined() ? grad_out[0] : torch::zeros_like(y);
    // The fused kernels consume their saved activations in the backward, so
    // the module's graph runs once; a second backward through the same node
    // (retain_graph=True, gradcheck) recomputes the module's forward first.
    const int64_t count = ctx->saved_data["backward_count"].toInt();
    ctx->saved_data["backward_count"] = count + 1;
    std::vector<Tensor> grads;
    if (count == 0) {
      grads = torch::autograd::grad({y}, inputs, {g}, /*retain_graph=*/false, /*create_graph=*/false,
                                    /*allow_unused=*/true);
    } else {
      torch::AutoGradMode grad_mode(true);
      const std::string kind = ctx->saved_data["kind"].toStringRef();
      auto built = build_quietly(kind, ctx->saved_data["options"].toStringRef());
      built.module->train(ctx->saved_data["training"].toBool());
      std::vector<Tensor> values;
      for (const auto& leaf : leaves) values.push_back(leaf.detach());
      auto again_leaves = bind_parameters(python_name(kind), *built.module, values, x);
      Tensor again_x = x.detach().requires_grad_(x.requires_grad());
      auto again = built.forward({again_x, ctx->saved_data["lengths"].toTensor().to(torch::kLong).contiguous()});
      std::vector<Tensor> again_inputs;
      if (x.requires_grad()) again_inputs.push_back(again_x);
      again_inputs.insert(again_inputs.end(), again_leaves.begin(), again_leaves.end());
      grads = torch::autograd::grad({again.data}, again_inputs, {g}, /*retain_graph=*/false,
                                    /*create_graph=*/false, /*allow_unused=*/true);
    }
    // built, kind, options, training, x, lengths, then one per parameter.
    variable_list out(6 + leaves.size());
    size_t next = 0;
    if (x.requires_grad()) out[4] = grads[next++];
    for (size_t i = 0; i < leaves.size(); ++i) out[6 + i] = grads[next++];
    return out;
  }
};

/// `torch.classes.crnn.Classifier`: infer::Classifier for Python and TorchScript.
struct ClassifierHolder : torch::CustomClassHolder {
  explicit ClassifierHolder(const std::string& path) : classifier(path) {}
  infer::Classifier classifier;
};

/// path, label, probabilities, frames, error, no_signal, start and end seconds (-1, -1: the whole file).
using PredictionTuple =
    std::tuple<std::string, std::string, std::vector<double>, int64_t, std::string, bool, double, double>;

std::vector<PredictionTuple> predict(const c10::intrusive_ptr<ClassifierHolder>& self, std::vector<std::string> paths,
                                     std::string normalization, int64_t batch_size,
                                     std::vector<std::string> speakers, double segment, double hop) {
  TORCH_CHECK(speakers.empty() || speakers.size() == paths.size(), "crnn.Classifier.predict: speakers must give one "
              "speaker per path (", paths.size(), "), got ", speakers.size());
  std::vector<infer::Input> inputs;
  for (size_t i = 0; i < paths.size(); ++i)
    inputs.push_back({paths[i], paths[i], speakers.empty() ? "" : speakers[i], "", {}, {}, 0});
  infer::PredictOptions o;
  try {
    o.normalization = infer::parse_normalization(normalization);
  } catch (const std::invalid_argument& e) {
    TORCH_CHECK_VALUE(false, "crnn.Classifier.predict: normalization: ", e.what());
  }
  TORCH_CHECK(batch_size >= 1, "crnn.Classifier.predict: batch_size must be at least 1, got ", batch_size);
  o.batch_size = batch_size;
  o.segment_seconds = segment;
  o.hop_seconds = hop;
  std::vector<infer::Prediction> predictions;
  try {
    predictions = self->classifier.predict(std::move(inputs), o);
  } catch (const c10::ValueError& e) {  // segment / hop
    TORCH_CHECK_VALUE(false, "crnn.Classifier.predict: ", e.what_without_backtrace());
  }
  std::vector<PredictionTuple> out;
  for (auto& p : predictions)
    out.emplace_back(p.path, p.label, std::vector<double>(p.probabilities.begin(), p.probabilities.end()),
                     p.frames, p.error, p.no_signal, p.segment < 0 ? -1.0 : p.start_seconds,
                     p.segment < 0 ? -1.0 : p.end_seconds);
  return out;
}

}  // namespace

std::string parameter_attribute_name(const std::string& cpp_name) {
  std::string s = cpp_name;
  for (char& c : s)
    if (c == '.') c = '_';
  return s;
}

std::tuple<std::vector<std::string>, std::vector<Tensor>> module_init(const std::string& kind,
                                                                      const std::string& options) {
  torch::NoGradGuard no_grad;
  auto built = build_module(kind, options);
  std::vector<std::string> names;
  std::vector<Tensor> params;
  for (const auto& item : built.module->named_parameters(/*recurse=*/true)) {
    names.push_back(parameter_attribute_name(item.key()));
    params.push_back(item.value().detach().clone());
  }
  return {names, params};
}

std::tuple<Tensor, Tensor> module_forward(const std::string& kind, const std::string& options,
                                          const std::vector<Tensor>& params, const Tensor& x, const Tensor& lengths,
                                          bool training) {
  const std::string who = python_name(kind);
  // Under torch.inference_mode() the module built here would hold inference
  // tensors, which bind_parameters cannot re-point ("Inference tensors do not
  // track version counter"). Inference mode implies no grad: run the forward
  // as under torch.no_grad(); the inputs may still be inference tensors.
  const bool inference = c10::InferenceMode::is_enabled();
  c10::InferenceMode inference_off(false);
  std::optional<torch::NoGradGuard> no_grad_for_inference;
  if (inference) no_grad_for_inference.emplace();
  // Options first (their errors name the option), then the inputs.
  auto probe = build_quietly(kind, options);
  check_inputs(who, probe.input_size, x, lengths);
  bool needs_grad = torch::GradMode::is_enabled() && x.requires_grad();
  for (const auto& p : params) needs_grad = needs_grad || (torch::GradMode::is_enabled() && p.requires_grad());
  if (needs_grad) {
    auto out = ModuleFunction::apply(probe, kind, options, training, x, lengths, at::TensorList(params));
    return {out[0], out[1]};
  }
  torch::NoGradGuard no_grad;
  probe.module->train(training);
  bind_parameters(who, *probe.module, params, x);
  auto y = probe.forward({x.contiguous(), lengths.to(torch::kLong).contiguous()});
  return {y.data, y.lengths.clone()};
}

std::tuple<std::string, std::vector<std::string>, std::vector<Tensor>> load_model(const std::string& path) {
  auto loaded = train::load_model(path);
  const auto& b = loaded.bundle;
  const auto config = train::RunConfig::parse(b.config_toml, {}, path);
  nlohmann::json info;
  info["options"] = {{"config", b.config_toml},
                     {"classes", static_cast<int64_t>(b.labels.size())},
                     {"input_size", b.input_size}};
  info["labels"] = b.labels;
  info["task"] = b.task;
  info["feature_extractor"] = b.feature_extractor;
  info["sample_rate"] = b.sample_rate;
  info["normalization"] = config.data.normalization;
  // The training frames' statistics (float32 values, exact through JSON's doubles),
  // for data.normalization = "global" models and unseen-speaker fallbacks.
  for (const auto& [key, t] : {std::pair<const char*, const Tensor*>{"global_mean", &b.global_stats.mean},
                               {"global_std", &b.global_stats.std}}) {
    if (!t->defined()) continue;
    const Tensor v = t->to(torch::kFloat).contiguous().view(-1);
    info[key] = std::vector<float>(v.data_ptr<float>(), v.data_ptr<float>() + v.numel());
  }
  std::vector<std::string> names;
  std::vector<Tensor> params;
  for (const auto& item : loaded.model->named_parameters(/*recurse=*/true)) {
    names.push_back(parameter_attribute_name(item.key()));
    params.push_back(item.value().detach());
  }
  return {info.dump(), names, params};
}

/// `crnn.Model.save`: the model file `source` with its parameters replaced by
/// `params` (attribute names as load_model gives them), written atomically to
/// `out`. Everything else — config, labels, extractor, global statistics — is
/// the source's; the split record is dropped, since the new weights were
/// trained on data the file does not know.
void save_model(const std::string& source, const std::vector<std::string>& names, const std::vector<Tensor>& params,
                const std::string& out) {
  TORCH_CHECK_VALUE(names.size() == params.size(), "crnn.Model.save: ", names.size(), " names for ", params.size(),
                    " parameters");
  auto loaded = train::load_model(source);
  std::map<std::string, Tensor> given;
  for (size_t i = 0; i < names.size(); ++i) given[names[i]] = params[i];
  torch::NoGradGuard no_grad;
  for (auto& item : loaded.model->named_parameters(/*recurse=*/true)) {
    const std::string name = parameter_attribute_name(item.key());
    auto it = given.find(name);
    TORCH_CHECK_VALUE(it != given.end(), "crnn.Model.save: parameter '", name, "' is missing");
    const Tensor& t = it->second;
    TORCH_CHECK_VALUE(t.sizes() == item.value().sizes(), "crnn.Model.save: parameter '", name, "' has shape ",
                      t.sizes(), ", the model's is ", item.value().sizes());
    TORCH_CHECK_VALUE(t.is_floating_point(), "crnn.Model.save: parameter '", name, "' is not floating point (",
                      t.scalar_type(), ")");
    TORCH_CHECK_VALUE(torch::isfinite(t).all().item<bool>(), "crnn.Model.save: parameter '", name,
                      "' holds NaN or infinite values");
    item.value().copy_(t.detach().to(torch::kCPU, item.value().scalar_type()));
    given.erase(it);
  }
  TORCH_CHECK_VALUE(given.empty(), "crnn.Model.save: '", given.empty() ? "" : given.begin()->first,
                    "' is not a parameter of this model");
  auto bundle = loaded.bundle;
  bundle.splits.clear();
  train::save_checkpoint(out, loaded.model, nullptr, bundle, nullptr);
}

/// What every feature operator requires of its waveform; `op` names the
/// operator in the messages ("crnn.features.fbank").
void check_waveform(const char* op, const Tensor& waveform) {
  const std::string problem = audio::waveform_problem(waveform);
  TORCH_CHECK(problem.empty(), op, ": ", problem);
}

Tensor fbank(const Tensor& waveform, int64_t sample_rate, int64_t num_bins) {
  check_waveform("crnn.features.fbank", waveform);
  TORCH_CHECK(sample_rate >= 1 && sample_rate <= audio::kMaxSampleRate,
              "crnn.features.fbank: sample_rate must be in 1..", audio::kMaxSampleRate, ", got ", sample_rate);
  TORCH_CHECK(num_bins >= 1 && num_bins <= 1024, "crnn.features.fbank: num_bins must be in 1..1024, got ",
              num_bins);
  return audio::compute_fbank(waveform.detach().to(torch::kFloat).contiguous(),
                              audio::FbankOptions().sample_rate(sample_rate).num_bins(num_bins));
}

/// The eGeMAPS LLDs `crnn features --kind egemaps` stores: the waveform is
/// resampled to 16 kHz first (as read_audio does for files), since the
/// descriptors' bands and frame lengths are defined at the analysis rate.
Tensor egemaps(const Tensor& waveform, int64_t sample_rate, bool smooth) {
  check_waveform("crnn.features.egemaps", waveform);
  TORCH_CHECK(sample_rate >= audio::kMinFileSampleRate && sample_rate <= audio::kMaxFileSampleRate,
              "crnn.features.egemaps: sample_rate must be in ", audio::kMinFileSampleRate, "..",
              audio::kMaxFileSampleRate, " Hz, got ", sample_rate);
  const auto options = audio::EgemapsOptions().smooth(smooth);
  auto wave = waveform.detach().to(torch::kFloat).contiguous();
  if (sample_rate != options.sample_rate())
    wave = audio::resample(wave, static_cast<int>(sample_rate), static_cast<int>(options.sample_rate()));
  // check_waveform's bounds (finite, |x| <= kMaxWaveformPeak) keep compute_egemaps' powers finite.
  return audio::compute_egemaps(wave, options);
}

void register_ops() {
  static std::once_flag once;
  std::call_once(once, [] {
    static torch::Library lib(torch::Library::DEF, "crnn", c10::nullopt, __FILE__, __LINE__);
    lib.def("module_init(str kind, str options) -> (str[], Tensor[])", &module_init);
    lib.def(
        "module_forward(str kind, str options, Tensor[] params, Tensor x, Tensor lengths, bool training) -> "
        "(Tensor, Tensor)",
        &module_forward);
    lib.def("load_model(str path) -> (str, str[], Tensor[])", &load_model);
    lib.def("save_model(str source, str[] names, Tensor[] params, str out) -> ()", &save_model);
    lib.def("model_file(str model_or_run) -> str", [](std::string path) { return train::model_file(path); });
    // crnn.train and crnn.evaluate: what `crnn train` and `crnn eval` run, the
    // results as the JSON text of summary.json / eval_<split>.json.
    lib.def("train(str config, str[] overrides, str output, str resume, bool progress) -> str",
            [](std::string config, std::vector<std::string> overrides, std::string output, std::string resume,
               bool progress) {
              const auto start = train::start_run(config, overrides, output, resume);
              // As `crnn train` does: a config's train.threads, unless crnn.set_num_threads(N > 0) was called.
              crnn::set_num_threads_from_config(start.config.train.threads);
              train::TrainOptions o;
              o.resume = start.resume;
              o.progress = progress;
              InterruptScope interrupt_scope;
              o.stop = interrupt_scope.flag();
              try {
                return train::run_summary_json_text(train::train_run(start.config, start.run_dir, o, std::cerr));
              } catch (const train::TrainInterrupted& e) {
                TORCH_CHECK(false, "crnn.train: interrupted: ", e.what());
              }
            });
    // crnn.repeat: what `crnn repeat` runs; the result as repeat.json's text.
    lib.def("repeat(str config, str[] overrides, str output, int seeds, int first_seed, bool progress) -> str",
            [](std::string config, std::vector<std::string> overrides, std::string output, int64_t seeds,
               int64_t first_seed, bool progress) {
              TORCH_CHECK_VALUE(seeds >= 1 && seeds <= 1000, "crnn.repeat: seeds must be in 1..1000, got ", seeds);
              TORCH_CHECK_VALUE(first_seed >= 0, "crnn.repeat: first_seed must be >= 0, got ", first_seed);
              TORCH_CHECK(!output.empty(), "crnn.repeat: no output directory given");
              const auto cfg = train::RunConfig::from_file(config, overrides);
              crnn::set_num_threads_from_config(cfg.train.threads);
              train::TrainOptions o;
              o.progress = progress;
              InterruptScope interrupt_scope;
              o.stop = interrupt_scope.flag();
              try {
                train::repeat_runs(cfg, output, seeds, static_cast<uint64_t>(first_seed), std::cerr, o);
              } catch (const train::TrainInterrupted& e) {
                TORCH_CHECK(false, "crnn.repeat: interrupted: ", e.what());
              }
              return crnn::read_text_file((std::filesystem::path(output) / "repeat.json").string());
            });
    // crnn.experiment: what `crnn experiment` runs. `worker` is the program
    // (python's sys.executable) and the arguments that make it train one job
    // of the plan (crnn.experiment's own worker): the job's index is appended.
    lib.def("experiment(str file, str output, str[] overrides, str[] tables, int jobs, int threads_per_job, "
            "str time_limit, bool train, bool progress, str[] worker) -> (str, str[], str[], bool, int, int, int)",
            [](std::string file, std::string output, std::vector<std::string> overrides,
               std::vector<std::string> tables, int64_t jobs, int64_t threads_per_job, std::string time_limit,
               bool train, bool progress, std::vector<std::string> worker)
                -> std::tuple<std::string, std::vector<std::string>, std::vector<std::string>, bool, int64_t,
                              int64_t, int64_t> {
              TORCH_CHECK(!output.empty(), "crnn.experiment: no output directory given");
              TORCH_CHECK_VALUE(jobs >= 1 && jobs <= 1024, "crnn.experiment: jobs must be in 1..1024, got ", jobs);
              train::ExperimentOptions o;
              o.overrides = overrides;
              o.tables = tables;
              o.train = train;
              o.command = train::experiment_command(file, output, overrides);
              if (!time_limit.empty()) {
                const auto limit = parse_duration(time_limit);
                TORCH_CHECK_VALUE(limit && *limit > 0, "crnn.experiment: time_limit ", time_limit,
                                  ": expected a positive duration, e.g. 2h30m, 90m or 3600 (seconds)");
                o.time_limit_seconds = *limit;
              }
              const auto e = train::Experiment::from_file(file);
              const auto warnings = train::same_settings_warnings(e, train::plan_experiment(e, o));
              train::TrainOptions t;
              t.progress = progress;
              InterruptScope interrupt_scope;
              t.stop = interrupt_scope.flag();
              train::ExperimentOutcome r;
              try {
                if (jobs > 1 && train) {
                  TORCH_CHECK(worker.size() >= 2, "crnn.experiment: jobs > 1 needs a worker command");
                  train::ParallelRunOptions p;
                  p.processes = jobs;
                  p.threads_per_process = std::max<int64_t>(1, threads_per_job);
                  p.program = worker.front();
                  p.worker_args = [&worker](size_t job) {
                    std::vector<std::string> args(worker.begin() + 1, worker.end());
                    args.push_back(std::to_string(job));
                    return args;
                  };
                  r = train::run_experiment_parallel(e, output, o, p, std::cerr, interrupt_scope.flag());
                } else {
                  r = train::run_experiment(e, output, o, std::cerr, t);
                }
              } catch (const train::TrainInterrupted& err) {
                TORCH_CHECK(false, "crnn.experiment: interrupted: ", err.what());
              }
              return {crnn::read_text_file((std::filesystem::path(output) / "results.json").string()), warnings,
                      r.failed, r.stopped, r.trained, r.skipped, r.not_started};
            });
    // One job of crnn.experiment's plan, in a worker process: its exit code,
    // as `crnn experiment --run-job`'s (2: an error every run would hit, which
    // stops the experiment; other errors are raised: that run failed).
    lib.def("experiment_job(str file, str output, str[] overrides, str[] tables, int job) -> int",
            [](std::string file, std::string output, std::vector<std::string> overrides,
               std::vector<std::string> tables, int64_t job) -> int64_t {
              train::ExperimentOptions o;
              o.overrides = overrides;
              o.tables = tables;
              train::TrainOptions t;
              InterruptScope interrupt_scope;
              t.stop = interrupt_scope.flag();
              const auto usage_error = [](const std::exception& err) {
                std::cerr << "crnn.experiment: " << err.what() << std::endl;
                return int64_t{2};
              };
              try {
                train::train_experiment_job(train::Experiment::from_file(file), o, job, output, std::cerr, t);
              } catch (const train::TrainInterrupted& err) {
                TORCH_CHECK(false, "crnn.experiment: interrupted: ", err.what());
              } catch (const train::ConfigError& err) {
                return usage_error(err);
              } catch (const data::DataError& err) {
                return usage_error(err);
              } catch (const data::FeatureStoreError& err) {
                return usage_error(err);
              }
              return 0;
            });
    lib.def("config(str preset, str[] overrides) -> str", [](std::string preset, std::vector<std::string> overrides) {
      return train::RunConfig::for_preset(preset, overrides).to_toml();
    });
    lib.def("no_signal_text() -> str", []() { return std::string(data::kNoSignal); });
    lib.def("presets() -> str[]", []() { return nn::SequenceClassifierOptions::preset_names(); });
    // crnn.extract_features: what `crnn features` runs (resumable; per-file
    // failures are reported, not thrown).
    lib.def("extract_features(str manifest, str output, str kind, int sample_rate, int num_bins, str window, "
            "str covered_manifest) -> (int, int, int, str[], str[], str[], str, int)",
            [](std::string manifest, std::string output, std::string kind, int64_t sample_rate, int64_t num_bins,
               std::string window, std::string covered_manifest)
                -> std::tuple<int64_t, int64_t, int64_t, std::vector<std::string>, std::vector<std::string>,
                              std::vector<std::string>, std::string, int64_t> {
              data::ExtractOptions eo;
              eo.kind = kind;
              eo.covered_manifest = covered_manifest;
              try {
                eo.fbank.num_bins(num_bins).sample_rate(sample_rate).window(audio::parse_window_type(window));
              } catch (const c10::Error& e) {
                TORCH_CHECK_VALUE(false, "crnn.extract_features: ", e.what_without_backtrace());
              }
              eo.egemaps.sample_rate(sample_rate);
              const auto r = data::extract_features(manifest, output, eo);
              return {static_cast<int64_t>(r.total), static_cast<int64_t>(r.extracted), static_cast<int64_t>(r.present),
                      r.skipped, r.failed, r.no_signal, r.missing_note, static_cast<int64_t>(r.covered)};
            });
    lib.def("evaluate(str model, str split, str manifest, str features, int batch_size, str predictions) -> "
            "(str, str, str[])",
            [](std::string model, std::string split, std::string manifest, std::string features, int64_t batch_size,
               std::string predictions) -> std::tuple<std::string, std::string, std::vector<std::string>> {
              TORCH_CHECK_VALUE(split == "train" || split == "valid" || split == "test" || split == "all",
                                "crnn.evaluate: split must be train, valid, test or all, got '", split, "'");
              TORCH_CHECK_VALUE(batch_size >= 1, "crnn.evaluate: batch_size must be at least 1, got ", batch_size);
              train::EvalRequest r;
              r.model = model;
              r.split = split;
              r.manifest = manifest;
              r.features = features;
              r.batch_size = batch_size;
              r.manifest_hint = "manifest=...";
              r.features_hint = "features=...";
              r.keep_probabilities = !predictions.empty();
              // Before the evaluation: a predictions path that cannot be written.
              if (!predictions.empty()) crnn::check_output_file_path(predictions);
              auto run = train::evaluate_run(r);
              if (!predictions.empty()) infer::write_predictions_csv(predictions, run);
              return {train::eval_json_text(run.result), run.training_speakers, run.skipped};
            });
    lib.def("fbank(Tensor waveform, int sample_rate, int num_bins=26) -> Tensor", &fbank);
    lib.def("egemaps(Tensor waveform, int sample_rate, bool smooth=True) -> Tensor", &egemaps);
    lib.def("find_audio_files(str folder) -> (str[], str[])",
            [](std::string folder) -> std::tuple<std::vector<std::string>, std::vector<std::string>> {
              audio::AudioFileSearch found;
              try {
                found = audio::find_audio_files(folder);
              } catch (const std::runtime_error& e) {
                TORCH_CHECK_VALUE(false, e.what());
              }
              return {found.files, found.notes};
            });
    lib.def("egemaps_names(bool smooth=True) -> str[]",
            [](bool smooth) { return audio::egemaps_feature_names(smooth); });
    lib.def("set_num_threads(int n) -> int", [](int64_t n) -> int64_t {
      TORCH_CHECK(n >= 0 && n <= kMaxThreads, "crnn.set_num_threads: n must be in 0..", kMaxThreads, ", got ", n);
      return crnn::set_num_threads_explicitly(static_cast<int>(n));
    });
    lib.def("set_precision(str precision) -> str", [](std::string precision) -> std::string {
      kernels::Precision p;
      try {
        p = kernels::parse_precision(precision);
      } catch (const std::invalid_argument& e) {
        TORCH_CHECK_VALUE(false, "crnn.set_precision: ", e.what());
      }
      TORCH_CHECK(p != kernels::Precision::bf16 || kernels::bf16_available(),
                  "crnn.set_precision(\"bf16\"): ", kernels::bf16_unavailable_reason());
      return kernels::to_string(kernels::set_matmul_precision(p));
    });
    lib.def("bf16_available() -> (bool, str)", []() -> std::tuple<bool, std::string> {
      return {kernels::bf16_available(), kernels::bf16_unavailable_reason()};
    });
    static auto classifier =
        torch::class_<ClassifierHolder>("crnn", "Classifier")
            .def(torch::init<std::string>())
            .def("labels", [](const c10::intrusive_ptr<ClassifierHolder>& self) { return self->classifier.labels(); })
            .def("task", [](const c10::intrusive_ptr<ClassifierHolder>& self) { return self->classifier.task(); })
            .def("feature_extractor",
                 [](const c10::intrusive_ptr<ClassifierHolder>& self) { return self->classifier.feature_extractor(); })
            .def("features_of_file",
                 [](const c10::intrusive_ptr<ClassifierHolder>& self, std::string path) {
                   return self->classifier.features_of_file(path);
                 })
            .def("features_of_waveform",
                 [](const c10::intrusive_ptr<ClassifierHolder>& self, Tensor samples, int64_t sample_rate) {
                   return self->classifier.features_of_waveform(samples.detach(), sample_rate);
                 })
            .def("predict", &predict);
  });
}

}  // namespace crnn::ops
