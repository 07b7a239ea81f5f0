#include "crnn/audio/read_audio.h"

#include <fmt/core.h>
#include <fmt/ranges.h>
#include <sndfile.h>
#include <soxr.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <system_error>
#include <vector>

namespace crnn::audio {
namespace fs = std::filesystem;

AudioError::AudioError(std::string path, const std::string& problem)
    : std::runtime_error(fmt::format("{}: {}", path, problem)), path_(std::move(path)) {}

namespace {

struct SndfileCloser {
  void operator()(SNDFILE* f) const { sf_close(f); }
};
using SndfilePtr = std::unique_ptr<SNDFILE, SndfileCloser>;

std::string format_name(int format) {
  SF_FORMAT_INFO major{}, sub{};
  major.format = format & SF_FORMAT_TYPEMASK;
  sub.format = format & SF_FORMAT_SUBMASK;
  std::string name;
  name += sf_command(nullptr, SFC_GET_FORMAT_INFO, &major, sizeof(major)) == 0 && major.name
              ? major.name
              : "?";
  name += " / ";
  name += sf_command(nullptr, SFC_GET_FORMAT_INFO, &sub, sizeof(sub)) == 0 && sub.name
              ? sub.name
              : "?";
  return name;
}

// Opens `path` for reading, turning every failure into an AudioError that says
// what is wrong in words a user can act on (libsndfile's own messages are terse).
SndfilePtr open_sndfile(const std::string& path, SF_INFO& info) {
  std::error_code ec;
  const auto status = fs::status(path, ec);
  if (ec || !fs::exists(status)) {
    // The usual causes a user cannot see in the message: Windows separators, and
    // spaces around the name (a spreadsheet cell "a.wav ").
    std::string hint;
    if (path.find('\\') != std::string::npos) {
      hint = " (the path contains '\\'; write paths with '/', as on Linux)";
    } else {
      for (const auto& part : fs::path(path)) {  // " /data/a.wav" read as relative: the part " "
        const std::string name = part.string();
        if (!name.empty() && (std::isspace(static_cast<unsigned char>(name.back())) ||
                              std::isspace(static_cast<unsigned char>(name.front())))) {
          hint = fmt::format(" ('{}' in the path begins or ends with a space: a stray space in the manifest?)", name);
          break;
        }
      }
    }
    throw AudioError(path, "file not found" + hint);
  }
  if (!fs::is_regular_file(status)) throw AudioError(path, "not a regular file");
  if (fs::file_size(path, ec) == 0 && !ec)
    throw AudioError(path, "zero-length file (0 bytes, no audio header)");

  info = SF_INFO{};
  SNDFILE* raw = sf_open(path.c_str(), SFM_READ, &info);
  if (!raw) {
    const int code = sf_error(nullptr);
    const std::string detail = sf_strerror(nullptr);
    switch (code) {
      case SF_ERR_UNRECOGNISED_FORMAT:
        throw AudioError(path, "unsupported or unrecognised audio format (libsndfile: " + detail +
                                   ")");
      case SF_ERR_SYSTEM:
        throw AudioError(path, "cannot open for reading (" + detail + ")");
      case SF_ERR_MALFORMED_FILE:
      case SF_ERR_UNSUPPORTED_ENCODING:
        throw AudioError(path, "corrupt or unsupported audio file (libsndfile: " + detail + ")");
      default:
        // libsndfile reports header problems of specific containers with
        // codes beyond the public ones (e.g. a WAV whose header is cut off).
        throw AudioError(path, "unreadable or corrupt audio file (libsndfile: " + detail + ")");
    }
  }
  return SndfilePtr(raw);
}

// libsndfile opens a WAV whose data chunk is cut off and silently shortens
// it to what is there; its header log then holds "data : 16000 (should be
// 8956)". A declared size of 0xFFFFFFFF is a streaming writer's placeholder,
// not truncation, and is accepted (libsndfile reads to the end of the file);
// so is 0, which libsndfile either repairs (a WAV that "wasn't closed
// properly": RIFF size 8) or reads as no samples: refused as a header never
// finalized when bytes that are not another chunk follow, else as zero-length.
// AIFF is read the same way: its log says "SSND : 82850 (should be 41403)".
struct DataChunkSize {
  unsigned long long declared = 0, actual = 0;
};

/// The audio data chunk's size as the header declares it and as the file
/// holds it, from libsndfile's header log (WAV, WAVEX, AIFF); nullopt when the
/// log does not say (the sizes agree, or another format).
std::optional<DataChunkSize> data_chunk_size(SNDFILE* file, const SF_INFO& info) {
  const int type = info.format & SF_FORMAT_TYPEMASK;
  const bool aiff = type == SF_FORMAT_AIFF;
  if (type != SF_FORMAT_WAV && type != SF_FORMAT_WAVEX && !aiff) return std::nullopt;
  std::vector<char> log(16384, '\0');
  sf_command(file, SFC_GET_LOG_INFO, log.data(), static_cast<int>(log.size()) - 1);
  const std::string text(log.data());
  const std::string chunk = aiff ? "SSND : " : "data : ";
  auto pos = text.find("\n" + chunk);
  if (pos == std::string::npos) pos = text.find("\n " + chunk);  // AIFF indents its chunks
  if (pos == std::string::npos) return std::nullopt;
  pos = text.find(chunk, pos);
  DataChunkSize s;
  if (std::sscanf(text.c_str() + pos + chunk.size(), "%llu (should be %llu)", &s.declared, &s.actual) != 2)
    return std::nullopt;
  return s;
}

/// The bytes after a RIFF WAV's data chunk header, found by walking the
/// chunks from the start of the file (the RIFF size is not trusted: a writer
/// that never finalized the header leaves it 0, 36 or 0xFFFFFFFF); 0 when the
/// file has no data chunk or is not RIFF.
uint64_t bytes_after_wav_data_header(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  char id[4];
  auto read_u32 = [&f]() {
    unsigned char b[4] = {0, 0, 0, 0};
    f.read(reinterpret_cast<char*>(b), 4);
    return static_cast<uint64_t>(b[0]) | static_cast<uint64_t>(b[1]) << 8 | static_cast<uint64_t>(b[2]) << 16 |
           static_cast<uint64_t>(b[3]) << 24;
  };
  if (!f.read(id, 4) || std::string(id, 4) != "RIFF") return 0;
  (void)read_u32();
  if (!f.read(id, 4) || std::string(id, 4) != "WAVE") return 0;
  std::error_code ec;
  const uint64_t size = fs::file_size(path, ec);
  if (ec) return 0;
  uint64_t at = 12;
  while (at + 8 <= size && f.seekg(static_cast<std::streamoff>(at)) && f.read(id, 4)) {
    const uint64_t chunk = read_u32();
    if (std::string(id, 4) == "data") {
      const uint64_t after = size - (at + 8);
      if (chunk > 0 || after < 8) return after;
      // An empty data chunk followed by another chunk (LIST, cue …) is an
      // empty recording, not an unfinalized one.
      char next[4];
      f.seekg(static_cast<std::streamoff>(at + 8));
      if (!f.read(next, 4)) return after;
      const bool chunk_id = std::all_of(next, next + 4, [](char c) { return c >= 0x20 && c < 0x7f; });
      const uint64_t next_size = read_u32();
      return chunk_id && 8 + next_size <= after ? 0 : after;
    }
    at += 8 + chunk + (chunk & 1);  // chunks are padded to even sizes
  }
  return 0;
}

const char* container_name(const SF_INFO& info) {
  return (info.format & SF_FORMAT_TYPEMASK) == SF_FORMAT_AIFF ? "AIFF" : "WAV";
}

void check_data_chunk_size(SNDFILE* file, const SF_INFO& info, const std::string& path) {
  const auto size = data_chunk_size(file, info);
  if (!size) return;
  const auto [declared, actual] = *size;
  if (declared == 0 || declared >= 0xFFFFFFF0ULL) return;
  if (declared > actual)
    throw AudioError(path, fmt::format("truncated or corrupt: the {} header announces {} bytes "
                                       "of audio data, the file holds {}",
                                       container_name(info), declared, actual));
}

}  // namespace

AudioInfo audio_info(const std::string& path) {
  SF_INFO info;
  SndfilePtr file = open_sndfile(path, info);
  return AudioInfo{info.samplerate, info.channels, info.frames == SF_COUNT_MAX ? int64_t{-1} : static_cast<int64_t>(info.frames),
                   format_name(info.format)};
}

torch::Tensor read_audio(const std::string& path, int target_rate) {
  TORCH_CHECK(target_rate > 0 && target_rate <= kMaxSampleRate, "read_audio: target_rate must be in 1..",
              kMaxSampleRate, " Hz, got ", target_rate);
  SF_INFO info;
  SndfilePtr file = open_sndfile(path, info);
  if (info.channels <= 0 || info.samplerate <= 0)
    throw AudioError(path, fmt::format("corrupt header ({} channels, {} Hz)", info.channels,
                                       info.samplerate));
  if (info.frames <= 0) {
    // A recorder killed before it wrote the header's sizes leaves a data size
    // of 0 in front of the samples it did write.
    const int type = info.format & SF_FORMAT_TYPEMASK;
    if (const uint64_t bytes = type == SF_FORMAT_WAV ? bytes_after_wav_data_header(path) : 0; bytes > 0)
      throw AudioError(path, fmt::format("the WAV header's audio data size is 0, but {} bytes of data follow it (a "
                                         "recording whose header was never finalized?); rewrite the header, e.g. "
                                         "with sox or ffmpeg",
                                         bytes));
    throw AudioError(path, "zero-length: the file contains no audio samples");
  }
  // A header rate far outside recording rates is a damaged or mislabelled file;
  // resampling it would multiply the samples by up to target_rate (a 16 KB file
  // at "1 Hz" becomes gigabytes), so refuse it up front.
  if (info.samplerate < kMinFileSampleRate || info.samplerate > kMaxFileSampleRate)
    throw AudioError(path, fmt::format("sample rate {} Hz in the header is not an audio recording rate ({}..{} Hz)",
                                       info.samplerate, kMinFileSampleRate, kMaxFileSampleRate));
  check_data_chunk_size(file.get(), info, path);

  // libsndfile normalises integer PCM to float by 1/2^(bits-1) (its default),
  // which for 16-bit data is exactly int16/32768, matching torchaudio.load.
  const int channels = info.channels;
  // A FLAC header may leave the length unknown (total samples 0: libsndfile
  // reports SF_COUNT_MAX) — a legal file, decoded to its end. A known length
  // is checked against what decodes, but never trusted for memory up front:
  // a damaged header can announce 2^36 samples.
  const bool length_known = info.frames != SF_COUNT_MAX;
  const int64_t expected = info.frames;
  std::vector<float> interleaved;
  if (length_known)
    interleaved.reserve(static_cast<size_t>(std::min<int64_t>(expected * channels, int64_t{1} << 22)));
  constexpr sf_count_t kChunk = 1 << 15;
  std::vector<float> buf(static_cast<size_t>(kChunk) * channels);
  int64_t got = 0;
  while (true) {
    const sf_count_t n = sf_readf_float(file.get(), buf.data(), kChunk);
    if (n <= 0) break;
    interleaved.insert(interleaved.end(), buf.begin(), buf.begin() + n * channels);
    got += n;
  }
  // A decoder error (FLAC CRC / lost sync) or fewer samples than the header
  // promises both mean the file was cut off or damaged; returning the partial
  // audio silently would give features for a different utterance.
  if (sf_error(file.get()) != SF_ERR_NO_ERROR)
    throw AudioError(path, fmt::format("truncated or corrupt: decoding failed after {} of {} "
                                       "samples (libsndfile: {})",
                                       got, length_known ? std::to_string(expected) : "an unknown number of",
                                       sf_strerror(file.get())));
  if (!length_known && got == 0) throw AudioError(path, "zero-length: the file contains no audio samples");
  if (length_known && got < expected)
    throw AudioError(path, fmt::format("truncated or corrupt: decoded {} of {} samples the "
                                       "header announces",
                                       got, expected));

  // Float WAV/FLAC can hold NaN or ±inf; they would turn every feature of the
  // utterance into NaN (and the training loss with it) without an error.
  // Float files can also hold integer PCM values unscaled (a common export
  // mistake): every log mel energy would shift by 2 ln 32768 with no error, so
  // files meet the same peak limit as in-memory waveforms (waveform_problem).
  size_t peak_at = 0;
  for (size_t i = 0; i < interleaved.size(); ++i) {
    if (!std::isfinite(interleaved[i]))
      throw AudioError(path, fmt::format("non-finite samples ({} at sample {} of channel {})", interleaved[i],
                                         i / channels, i % channels));
    if (std::fabs(interleaved[i]) > std::fabs(interleaved[peak_at])) peak_at = i;
  }
  if (const std::string problem = peak_problem(interleaved.empty() ? 0.0 : std::fabs(interleaved[peak_at]));
      !problem.empty())
    throw AudioError(path, fmt::format("{} (at sample {} of channel {})", problem, peak_at / channels,
                                       peak_at % channels));

  torch::Tensor mono = torch::empty({got}, torch::kFloat);
  float* out = mono.data_ptr<float>();
  if (channels == 1) {
    std::copy(interleaved.begin(), interleaved.begin() + got, out);
  } else {
    const float inv = 1.0f / static_cast<float>(channels);
    for (int64_t i = 0; i < got; ++i) {
      float sum = 0.0f;
      for (int c = 0; c < channels; ++c) sum += interleaved[static_cast<size_t>(i) * channels + c];
      out[i] = sum * inv;
    }
  }
  return resample(mono, info.samplerate, target_rate);
}

std::string waveform_problem(const torch::Tensor& waveform) {
  if (!waveform.defined()) return "no waveform (an undefined tensor)";
  if (!waveform.device().is_cpu())
    return fmt::format("the waveform is on {}; this crnn build runs on the CPU only", waveform.device().str());
  if (waveform.dim() != 1)
    return fmt::format("expected a 1-D (mono) waveform, got shape [{}]", fmt::join(waveform.sizes(), ", "));
  if (!at::isFloatingType(waveform.scalar_type()))
    return fmt::format("the waveform must be floating point with samples in [-1, 1), got {} (integer PCM: divide "
                       "by 32768 for 16-bit)",
                       c10::toString(waveform.scalar_type()));
  if (waveform.numel() == 0) return "";
  const auto bad = torch::nonzero(~torch::isfinite(waveform));
  if (bad.size(0) > 0)
    return fmt::format("the waveform holds {} NaN or infinite sample(s), the first at sample {}", bad.size(0),
                       bad[0][0].item<int64_t>());
  return peak_problem(waveform.abs().max().item<double>());
}

std::string peak_problem(double peak) {
  if (peak <= kMaxWaveformPeak) return "";
  return fmt::format("samples reach |x| = {:g}, but audio is in [-1, 1) (up to |x| = {:g} is accepted, for "
                     "clipped or boosted float audio): integer PCM stored as floats? (divide 16-bit samples by 32768)",
                     peak, kMaxWaveformPeak);
}

torch::Tensor resample(const torch::Tensor& waveform, int from_rate, int to_rate) {
  TORCH_CHECK(waveform.dim() == 1, "resample: expected a 1-D waveform, got shape ",
              waveform.sizes());
  TORCH_CHECK(from_rate > 0 && to_rate > 0 && from_rate <= kMaxSampleRate && to_rate <= kMaxSampleRate,
              "resample: rates must be in 1..", kMaxSampleRate, " Hz, got ", from_rate, " -> ", to_rate);
  if (from_rate == to_rate) return waveform;
  torch::Tensor in = waveform.to(torch::kFloat).contiguous();
  const auto n = static_cast<size_t>(in.size(0));
  const auto olen = static_cast<size_t>(
      std::llround(static_cast<double>(n) * to_rate / static_cast<double>(from_rate)));
  torch::Tensor out = torch::zeros({static_cast<int64_t>(olen)}, torch::kFloat);
  if (n == 0 || olen == 0) return out;

  const soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
  const soxr_quality_spec_t quality = soxr_quality_spec(SOXR_HQ, 0);
  // One thread: files are already processed in parallel by the caller.
  const soxr_runtime_spec_t runtime = soxr_runtime_spec(1);
  size_t done = 0;
  const soxr_error_t err =
      soxr_oneshot(from_rate, to_rate, 1, in.data_ptr<float>(), n, nullptr,
                   out.data_ptr<float>(), olen, &done, &io, &quality, &runtime);
  TORCH_CHECK(!err, "resample: libsoxr failed (", from_rate, " -> ", to_rate, " Hz): ", err);
  // soxr_oneshot flushes its filter, so `done == olen` in practice; any
  // shortfall stays zero-padded so the length is always the documented one.
  return out;
}

}  // namespace crnn::audio
