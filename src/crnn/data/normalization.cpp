#include "crnn/data/normalization.h"

#include <fmt/core.h>

#include "crnn/data/error.h"

namespace crnn::data {
namespace {

struct Accumulator {
  torch::Tensor sum, sumsq;  // float64 [features]
  int64_t frames = 0;
  int64_t features = -1;

  void add(const torch::Tensor& x, const std::string& who) {
    if (x.dim() != 2)
      throw DataError(fmt::format("normalization: {}: expected a frames × features tensor, got {} dims",
                                  who, x.dim()));
    if (features < 0) {
      features = x.size(1);
      sum = torch::zeros({features}, torch::kFloat64);
      sumsq = torch::zeros({features}, torch::kFloat64);
    } else if (x.size(1) != features) {
      throw DataError(fmt::format("normalization: {}: {} features, expected {}", who, x.size(1), features));
    }
    // float64: sums of squares of ~10^5 frames lose digits in float32.
    auto d = x.to(torch::kFloat64);
    sum += d.sum(0);
    sumsq += (d * d).sum(0);
    frames += x.size(0);
  }

  FeatureStats finish(double min_std, const std::string& who) const {
    if (frames == 0) throw DataError(fmt::format("normalization: {}: no frames", who));
    FeatureStats s;
    auto mean = sum / static_cast<double>(frames);
    // E[x²] − E[x]² can dip just below 0 by rounding for a constant feature.
    auto var = (sumsq / static_cast<double>(frames) - mean * mean).clamp_min(0.0);
    auto sd = var.sqrt();
    s.mean = mean.to(torch::kFloat32);
    s.std = sd.to(torch::kFloat32);
    s.scale = torch::where(sd > min_std, 1.0 / sd, torch::zeros_like(sd)).to(torch::kFloat32);
    s.frames = frames;
    return s;
  }
};

}  // namespace

bool holds_no_signal(const torch::Tensor& features) {
  if (features.dim() != 2 || features.size(0) < 2) return false;
  const auto x = features.to(torch::kDouble);
  const auto range = std::get<0>(x.max(0)) - std::get<0>(x.min(0));
  const auto tolerance = 1e-5 * torch::clamp_min(x.abs().amax(0), 1.0);
  return (range <= tolerance).all().item<bool>();
}

FeatureStats compute_stats(const std::vector<torch::Tensor>& utterances, double min_std) {
  Accumulator acc;
  for (size_t i = 0; i < utterances.size(); ++i) acc.add(utterances[i], fmt::format("tensor {}", i));
  return acc.finish(min_std, "compute_stats");
}

torch::Tensor apply(const torch::Tensor& x, const FeatureStats& stats) {
  if (!stats.mean.defined()) throw DataError("normalization: statistics are empty");
  if (x.size(-1) != stats.mean.size(0))
    throw DataError(fmt::format("normalization: input has {} features, statistics have {}", x.size(-1),
                                stats.mean.size(0)));
  return (x.to(torch::kFloat32) - stats.mean) * stats.scale;
}

const FeatureStats& SpeakerStats::for_speaker(const std::string& speaker) const {
  auto it = speakers.find(speaker);
  if (it != speakers.end()) return it->second;
  if (!global.mean.defined())
    throw DataError(fmt::format("normalization: no statistics for speaker '{}' and no global ones", speaker));
  return global;
}

torch::Tensor SpeakerStats::apply(const torch::Tensor& x, const std::string& speaker) const {
  return crnn::data::apply(x, for_speaker(speaker));
}

SpeakerStats compute_speaker_stats(const std::map<std::string, std::vector<torch::Tensor>>& by_speaker,
                                   const NormalizationOptions& options) {
  SpeakerStats out;
  Accumulator global;
  std::map<std::string, bool> in_global;
  for (const auto& s : options.global_speakers) {
    if (!by_speaker.count(s))
      throw DataError(fmt::format("normalization: global speaker '{}' has no frames", s));
    in_global[s] = true;
  }
  for (const auto& [spk, utts] : by_speaker) {
    Accumulator acc;
    for (size_t i = 0; i < utts.size(); ++i) {
      const auto who = fmt::format("speaker '{}' utterance {}", spk, i);
      acc.add(utts[i], who);
      if (options.global_speakers.empty() || in_global.count(spk)) global.add(utts[i], who);
    }
    out.speakers.emplace(spk, acc.finish(options.min_std, fmt::format("speaker '{}'", spk)));
  }
  if (global.frames > 0) out.global = global.finish(options.min_std, "global");
  return out;
}

}  // namespace crnn::data
