#include "crnn/infer/classifier.h"

#include <ATen/Parallel.h>
#include <fmt/core.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <map>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "crnn/audio/fbank.h"
#include "crnn/audio/feature_extractor.h"
#include "crnn/audio/read_audio.h"
#include "crnn/data/batcher.h"
#include "crnn/data/error.h"
#include "crnn/data/normalization.h"
#include "crnn/train/config.h"
#include "crnn/train/trainer.h"
#include "crnn/util/error_text.h"
#include "crnn/util/threads.h"

namespace fs = std::filesystem;

namespace crnn::infer {

Normalization parse_normalization(const std::string& name) {
  if (name == "auto") return Normalization::automatic;
  if (name == "speaker") return Normalization::speaker;
  if (name == "utterance") return Normalization::utterance;
  if (name == "global") return Normalization::global;
  throw std::invalid_argument("unknown normalization '" + name + "' (expected auto, speaker, utterance or global)");
}

std::vector<std::pair<int64_t, int64_t>> segment_frames(int64_t frames, int64_t window, int64_t hop) {
  TORCH_CHECK(window >= 1 && hop >= 1 && hop <= window, "segment_frames: needs 1 <= hop <= window, got window ",
              window, ", hop ", hop);
  TORCH_CHECK(frames >= 0, "segment_frames: frames must be >= 0, got ", frames);
  std::vector<std::pair<int64_t, int64_t>> out;
  if (frames == 0) return out;
  if (frames <= window) return {{0, frames}};
  int64_t begin = 0;
  for (; begin + window < frames; begin += hop) out.emplace_back(begin, begin + window);
  out.emplace_back(frames - window, frames);  // the last window ends with the input
  return out;
}

double frame_shift_seconds(const audio::FeatureExtractor& extractor) {
  // fbank's shift is a whole number of samples (Kaldi truncates): 12.3 ms at
  // 16 kHz is 196 samples, 12.25 ms, which over an hour is 15 s.
  if (extractor.kind() == audio::FeatureExtractor::Kind::Fbank)
    return static_cast<double>(audio::frame_shift_samples(extractor.fbank_options())) /
           static_cast<double>(extractor.sample_rate());
  return extractor.frame_shift_ms() / 1000.0;
}

size_t most_probable(const std::vector<float>& probabilities) {
  return static_cast<size_t>(std::max_element(probabilities.begin(), probabilities.end()) - probabilities.begin());
}

std::vector<Prediction> predictions_of(const train::Evaluation& e, const std::vector<data::Example>& examples,
                                       const data::Manifest& rows, const std::string& task,
                                       const std::vector<std::string>& labels) {
  std::map<std::string, size_t> evaluated, row;
  for (size_t n = 0; n < e.ids.size(); ++n) evaluated[e.ids[n]] = n;
  for (size_t i = 0; i < rows.size(); ++i) row[rows.utterances()[i].id] = i;
  std::vector<Prediction> out;
  for (const auto& ex : examples) {
    const data::Utterance& u = rows.utterances().at(row.at(ex.id));
    Prediction p;
    p.id = u.id;
    p.path = u.path;
    p.speaker = u.speaker;
    p.truth = u.label(task);
    p.probabilities = e.probabilities.at(evaluated.at(ex.id));
    p.label = labels.at(most_probable(p.probabilities));
    p.frames = ex.features.size(0);
    p.no_signal = data::holds_no_signal(ex.features);  // as predict flags it
    out.push_back(std::move(p));
  }
  return out;
}

Classifier::Classifier(const std::string& model_or_run_dir) : path_(train::model_file(model_or_run_dir)) {
  model_ = train::load_model(path_);  // not a crnn model: an error naming the file
  try {
    extractor_ = audio::FeatureExtractor::parse(model_.bundle.feature_extractor);  // fbank or eGeMAPS
  } catch (const std::invalid_argument& e) {
    throw data::DataError(path_ + ": corrupt model file (" + e.what() + ")");
  }
  const auto cfg = train::RunConfig::parse(model_.bundle.config_toml, {}, path_ + " (embedded config)");
  trained_ = cfg.data.normalization == "global" ? Normalization::global : Normalization::speaker;
  model_.model->eval();
}

torch::Tensor Classifier::features_of_file(const std::string& path) const { return extractor_.of_file(path); }

torch::Tensor Classifier::features_of_waveform(const torch::Tensor& samples, int64_t sample_rate) const {
  const std::string problem = audio::waveform_problem(samples);
  TORCH_CHECK(problem.empty(), "features_of_waveform: ", problem);
  TORCH_CHECK(sample_rate >= 1 && sample_rate <= audio::kMaxSampleRate, "features_of_waveform: sample_rate must be in 1..",
              audio::kMaxSampleRate, " Hz, got ", sample_rate, sample_rate == 0 ? " (not set)" : "");
  auto wave = samples.to(torch::kFloat).contiguous();
  const int64_t rate = extractor_.sample_rate();
  if (sample_rate != rate) wave = audio::resample(wave, static_cast<int>(sample_rate), static_cast<int>(rate));
  return extractor_.kind() == audio::FeatureExtractor::Kind::Egemaps
             ? audio::compute_egemaps(wave, extractor_.egemaps_options())
             : audio::compute_fbank(wave, extractor_.fbank_options());
}

namespace {

/// Features of every input without them, `workers` files at a time, each
/// worker single-threaded (parallelism over files, as `crnn features`).
void compute_features(const Classifier& c, std::vector<Input>& inputs, std::vector<Prediction>& out,
                      const PredictOptions& o) {
  TORCH_CHECK(o.threads >= 0, "PredictOptions::threads must be >= 0 (0 = the intra-op threads), got ", o.threads);
  std::vector<size_t> todo;
  for (size_t i = 0; i < inputs.size(); ++i)
    if (!inputs[i].features.defined()) todo.push_back(i);
  if (todo.empty()) return;
  const int threads = o.threads > 0 ? o.threads : at::get_num_threads();
  const int workers = static_cast<int>(std::max<size_t>(1, std::min<size_t>(static_cast<size_t>(threads), todo.size())));
  const int caller_threads = at::get_num_threads();
  std::atomic<size_t> next{0}, done{0};
  std::mutex progress;
  auto work = [&] {
    crnn::set_num_threads(1);
    for (size_t k; (k = next.fetch_add(1)) < todo.size();) {
      const size_t i = todo[k];
      try {
        if (inputs[i].waveform.defined()) {
          if (inputs[i].sample_rate <= 0)
            throw std::invalid_argument(fmt::format("{}: a waveform without its sample_rate ({})", inputs[i].id,
                                                    inputs[i].sample_rate));
          inputs[i].features = c.features_of_waveform(inputs[i].waveform, inputs[i].sample_rate);
          out[i].audio_seconds = static_cast<double>(inputs[i].waveform.numel()) / inputs[i].sample_rate;
        } else if (inputs[i].path.empty()) {
          throw std::invalid_argument(fmt::format("{}: no features, waveform or audio path given", inputs[i].id));
        } else {
          double seconds = 0;
          inputs[i].features = c.extractor().of_file(inputs[i].path, &seconds);
          out[i].audio_seconds = seconds;
        }
      } catch (const std::exception& e) {
        out[i].error = crnn::error_text(e);
      }
      const size_t d = ++done;
      if (o.on_features) {
        std::lock_guard<std::mutex> lock(progress);
        o.on_features(d, todo.size());
      }
    }
  };
  std::vector<std::thread> pool;
  for (int w = 1; w < workers; ++w) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  crnn::set_num_threads(caller_threads);  // workers set the process-wide OpenBLAS count to 1
}

}  // namespace

std::vector<Prediction> Classifier::predict(std::vector<Input> inputs, const PredictOptions& o) {
  TORCH_CHECK(o.batch_size >= 1, "predict: batch_size must be >= 1");
  // Windows in frames of the features (checked before any work is done).
  // Seconds become whole frames (nearest); times are frames × the exact shift.
  const double shift = frame_shift_seconds(extractor_);
  int64_t window = 0, hop = 0;
  if (o.segment_seconds != 0 || o.hop_seconds != 0) {
    const double hop_seconds = o.hop_seconds == 0 ? o.segment_seconds : o.hop_seconds;
    TORCH_CHECK_VALUE(o.segment_seconds != 0, "a hop (", o.hop_seconds, " s) needs a segment length");
    for (const auto& [what, v] : {std::pair{"segment", o.segment_seconds}, std::pair{"hop", hop_seconds}}) {
      TORCH_CHECK_VALUE(std::isfinite(v) && v > 0 && v <= kMaxSegmentSeconds, "the ", what,
                        " must be a number of seconds > 0 and at most ", kMaxSegmentSeconds, ", got ", v);
      TORCH_CHECK_VALUE(v >= shift, "a ", what, " of ", v, " s is shorter than one frame shift (", shift, " s)");
    }
    TORCH_CHECK_VALUE(hop_seconds <= o.segment_seconds, "a hop of ", hop_seconds, " s is longer than the segment (",
                      o.segment_seconds, " s): the audio between windows would go unclassified");
    window = static_cast<int64_t>(std::llround(o.segment_seconds / shift));
    hop = std::min(window, static_cast<int64_t>(std::llround(hop_seconds / shift)));
  }
  std::vector<Prediction> out(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    out[i].id = inputs[i].id;
    out[i].path = inputs[i].path;
    out[i].speaker = inputs[i].speaker;
    out[i].truth = inputs[i].truth;
  }
  compute_features(*this, inputs, out, o);
  const int64_t k = model_.bundle.input_size;
  std::vector<size_t> ok;  // inputs with usable frames, in input order
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!out[i].error.empty()) continue;
    const auto& x = inputs[i].features;
    // Defined here: inputs without features had them computed, or an error set above.
    if (x.dim() != 2) {
      out[i].error = fmt::format("{}: features must be frames × features (2-D), got shape [{}]",
                                 inputs[i].id, fmt::join(x.sizes(), ", "));
    } else if (x.size(0) == 0) {
      // Audio read here: the reason `crnn features` gives; stored features: none to give.
      out[i].error = out[i].audio_seconds > 0.0
                         ? inputs[i].path + ": " + extractor().too_short_reason(out[i].audio_seconds)
                         : (inputs[i].path.empty() ? inputs[i].id : inputs[i].path) + ": no feature frames";
    } else if (x.size(1) != k) {
      out[i].error = fmt::format("{}: {} features per frame, the model expects {}", inputs[i].id, x.size(1), k);
    } else if (const auto bad = torch::nonzero(~torch::isfinite(x)); bad.size(0) > 0) {
      // Normalized and scored, they would give an ordinary-looking label.
      out[i].error = fmt::format("{}: features hold {} NaN or infinite value(s), the first at frame {}, feature {}",
                                 inputs[i].id, bad.size(0), bad[0][0].item<int64_t>(), bad[0][1].item<int64_t>());
    } else {
      out[i].frames = x.size(0);
      out[i].no_signal = data::holds_no_signal(x);
      ok.push_back(i);
    }
  }
  if (ok.empty()) return out;

  // Normalization: the same statistics and grouping as training and `crnn eval`.
  Normalization mode = o.normalization == Normalization::automatic ? trained_ : o.normalization;
  if (mode == Normalization::global && !model_.bundle.global_stats.mean.defined())
    throw data::DataError(path_ + ": the model file has no global statistics (normalization 'global')");
  auto group_of = [&](size_t i) {
    return mode == Normalization::utterance || inputs[i].speaker.empty() ? "\x01" + std::to_string(i)
                                                                         : inputs[i].speaker;
  };
  data::SpeakerStats stats;
  if (mode != Normalization::global) {
    std::map<std::string, std::vector<torch::Tensor>> by_group;
    for (size_t i : ok) by_group[group_of(i)].push_back(inputs[i].features);
    stats = data::compute_speaker_stats(by_group);
  }
  // What is classified: each input whole, or its windows, cut from the input
  // normalized as a whole.
  struct Piece {
    size_t input;
    int64_t segment, begin, end;  // segment -1: the whole input
  };
  std::vector<Piece> pieces;
  std::vector<data::Example> examples;
  for (size_t i : ok) {
    const auto& x = inputs[i].features;
    const torch::Tensor normalized = mode == Normalization::global ? data::apply(x, model_.bundle.global_stats)
                                                                   : stats.apply(x, group_of(i));
    const auto spans = window == 0 ? std::vector<std::pair<int64_t, int64_t>>{{0, x.size(0)}}
                                   : segment_frames(x.size(0), window, hop);
    for (size_t s = 0; s < spans.size(); ++s) {
      const auto [begin, end] = spans[s];
      pieces.push_back({i, window == 0 ? -1 : static_cast<int64_t>(s), begin, end});
      data::Example e;
      e.features = normalized.slice(0, begin, end).contiguous();
      e.label = 0;  // unused: only the probabilities are read
      e.id = std::to_string(pieces.size() - 1);
      examples.push_back(std::move(e));
    }
  }
  const auto ev = train::evaluate(model_.model, examples, static_cast<int64_t>(labels().size()), o.batch_size,
                                  /*keep_probabilities=*/true);
  std::vector<std::vector<float>> probabilities(pieces.size());
  for (size_t n = 0; n < ev.ids.size(); ++n) probabilities[std::stoul(ev.ids[n])] = ev.probabilities[n];
  if (window == 0) {
    for (size_t n = 0; n < pieces.size(); ++n) {
      auto& p = out[pieces[n].input];
      p.probabilities = std::move(probabilities[n]);
      p.label = labels().at(most_probable(p.probabilities));
    }
    return out;
  }
  // Segments: each input's windows in time order where the input was, a
  // failed input as its one error.
  std::vector<Prediction> segmented;
  size_t n = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (n == pieces.size() || pieces[n].input != i) {
      segmented.push_back(std::move(out[i]));
      continue;
    }
    for (; n < pieces.size() && pieces[n].input == i; ++n) {
      Prediction p = out[i];
      p.segment = pieces[n].segment;
      p.start_seconds = static_cast<double>(pieces[n].begin) * shift;
      p.end_seconds = static_cast<double>(pieces[n].end) * shift;
      p.frames = pieces[n].end - pieces[n].begin;
      p.no_signal = data::holds_no_signal(inputs[i].features.slice(0, pieces[n].begin, pieces[n].end));
      p.probabilities = std::move(probabilities[n]);
      p.label = labels().at(most_probable(p.probabilities));
      segmented.push_back(std::move(p));
    }
  }
  return segmented;
}

}  // namespace crnn::infer
