// read_audio: formats, down-mixing, resampling, and every kind of bad input.
#include <gtest/gtest.h>

#include <fmt/core.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "crnn/audio/fbank.h"
#include "crnn/audio/read_audio.h"
#include "support/test_support.h"

namespace fs = std::filesystem;
using crnn::audio::AudioError;
using crnn::audio::read_audio;
using crnn::test::TempDir;

namespace {

// Expects read_audio(path) to throw an AudioError whose message names the
// file and contains `fragment`.
void expect_audio_error(const std::string& path, const std::string& fragment) {
  try {
    read_audio(path);
    ADD_FAILURE() << "no error for " << path;
  } catch (const AudioError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find(fragment), std::string::npos) << msg;
    EXPECT_EQ(e.path(), path);
  }
}

// Frequency of a sine estimated from its positive-going zero crossings.
double zero_crossing_hz(const torch::Tensor& x, int rate) {
  auto a = x.accessor<float, 1>();
  int64_t first = -1, last = -1, count = 0;
  for (int64_t i = 1; i < x.size(0); ++i) {
    if (a[i - 1] < 0.0f && a[i] >= 0.0f) {
      if (first < 0) first = i;
      last = i;
      ++count;
    }
  }
  return (count - 1) * static_cast<double>(rate) / static_cast<double>(last - first);
}

}  // namespace

TEST(ReadAudio, Pcm16IsScaledByOneOver32768) {
  TempDir dir;
  const std::string path = dir.file("levels.wav");
  // Raw int16 levels 16384, -32768, 1, 32767 must read as level / 32768.
  crnn::test::write_pcm16(path, {16384, -32768, 1, 32767}, 16000, 1);
  const auto x = read_audio(path);
  ASSERT_EQ(x.size(0), 4);
  EXPECT_EQ(x[0].item<float>(), 0.5f);
  EXPECT_EQ(x[1].item<float>(), -1.0f);
  EXPECT_EQ(x[2].item<float>(), 1.0f / 32768.0f);
  EXPECT_EQ(x[3].item<float>(), 32767.0f / 32768.0f);
}

// A target rate no extractor computes at (a typo of 16000000) would resample a
// second of audio into gigabytes: refused before the file is read.
TEST(ReadAudio, TargetRateBeyondTheExtractorsLimitIsRefused) {
  TempDir dir;
  const std::string path = dir.file("short.wav");
  crnn::test::write_pcm16(path, {1, 2, 3, 4}, 16000, 1);
  for (int rate : {0, -16000, 1000001, 1000000000}) {
    try {
      read_audio(path, rate);
      ADD_FAILURE() << rate << " accepted";
    } catch (const c10::Error& e) {
      EXPECT_TRUE(crnn::test::contains(e.what_without_backtrace(), "target_rate must be in 1..1000000 Hz")) << e.what();
    }
  }
  EXPECT_EQ(read_audio(path, 1000000).size(0), 250);  // 4 samples at 16 kHz → 1 MHz
}

TEST(ReadAudio, FlacAnd24BitDecodeLikeWav) {
  TempDir dir;
  const auto s = crnn::test::sine(440.0, 16000, 0.1, 0.25);
  crnn::test::write_audio(dir.file("a.flac"), s, 16000, 1, SF_FORMAT_FLAC | SF_FORMAT_PCM_16);
  crnn::test::write_audio(dir.file("a.wav"), s, 16000, 1, SF_FORMAT_WAV | SF_FORMAT_PCM_24);
  const auto flac = read_audio(dir.file("a.flac"));
  const auto wav24 = read_audio(dir.file("a.wav"));
  ASSERT_EQ(flac.size(0), 1600);
  ASSERT_EQ(wav24.size(0), 1600);
  const auto ref = torch::tensor(s);
  EXPECT_LE((flac - ref).abs().max().item<float>(), 1.0f / 32768.0f);   // 16-bit quantisation
  EXPECT_LE((wav24 - ref).abs().max().item<float>(), 1.0f / 8388608.0f);  // 24-bit
}

TEST(ReadAudio, StereoIsAveragedToMono) {
  TempDir dir;
  const std::string path = dir.file("stereo.wav");
  // Left 0.5, right -0.25 (exact in 16 bit): mono = 0.125.
  std::vector<float> inter;
  for (int i = 0; i < 100; ++i) inter.insert(inter.end(), {0.5f, -0.25f});
  crnn::test::write_audio(path, inter, 16000, 2);
  const auto x = read_audio(path);
  ASSERT_EQ(x.size(0), 100);
  EXPECT_EQ(x.min().item<float>(), 0.125f);
  EXPECT_EQ(x.max().item<float>(), 0.125f);
}

TEST(ReadAudio, Resamples48kStereoTo16kMono) {
  TempDir dir;
  const std::string path = dir.file("48k.wav");
  // 1 s of a 1 kHz sine in both channels (right at half amplitude).
  const auto s = crnn::test::sine(1000.0, 48000, 1.0, 0.6);
  std::vector<float> inter;
  for (float v : s) inter.insert(inter.end(), {v, 0.5f * v});
  crnn::test::write_audio(path, inter, 48000, 2);
  const auto info = crnn::audio::audio_info(path);
  EXPECT_EQ(info.sample_rate, 48000);
  EXPECT_EQ(info.channels, 2);
  EXPECT_EQ(info.frames, 48000);

  const auto x = read_audio(path, 16000);
  EXPECT_EQ(x.size(0), 16000);  // 48000 * 16000 / 48000
  EXPECT_NEAR(zero_crossing_hz(x, 16000), 1000.0, 1.0);
  // Mono amplitude (0.6 + 0.3) / 2 = 0.45, unchanged by resampling (the
  // filter's passband is flat at 1 kHz); look away from the edges.
  const auto mid = x.slice(0, 1000, 15000);
  EXPECT_NEAR(mid.abs().max().item<float>(), 0.45f, 0.005f);
  // 44.1 kHz -> 16 kHz keeps duration: round(44100 * 16000 / 44100).
  crnn::test::write_audio(dir.file("44k.flac"), crnn::test::sine(440.0, 44100, 0.5), 44100, 1,
                          SF_FORMAT_FLAC | SF_FORMAT_PCM_16);
  const auto y = read_audio(dir.file("44k.flac"));
  EXPECT_EQ(y.size(0), 8000);
  EXPECT_NEAR(zero_crossing_hz(y, 16000), 440.0, 1.0);
}

TEST(ReadAudio, MissingFile) {
  TempDir dir;
  expect_audio_error(dir.file("nope.wav"), "file not found");
  // A Windows path from a CSV made elsewhere: the likely cause is said.
  expect_audio_error(dir.file("wav\\s1_0.wav"), "file not found (the path contains '\\'; write paths with '/'");
  // A stray space from a spreadsheet cell: said, and only then.
  expect_audio_error(dir.file("s1_0.wav "), "file not found ('s1_0.wav ' in the path begins or ends with a space");
  expect_audio_error(dir.file(" ") + dir.file("s1_0.wav"), "file not found (' ' in the path begins or ends");
  EXPECT_FALSE(crnn::test::contains(crnn::test::error_of([&] { read_audio(dir.file("nope.wav")); }), "space"));
}

TEST(ReadAudio, DirectoryIsNotAFile) { 
  TempDir dir;
  expect_audio_error(dir.path().string(), "not a regular file");
}

TEST(ReadAudio, TextFileNamedWav) {
  TempDir dir;
  const std::string path = dir.file("notes.wav");
  std::ofstream(path) << "this is not audio, just some text in a file called .wav\n";
  expect_audio_error(path, "unsupported or unrecognised audio format");
}

TEST(ReadAudio, ZeroByteFile) {
  TempDir dir;
  const std::string path = dir.file("empty.flac");
  std::ofstream{path};
  expect_audio_error(path, "zero-length");
}

// A header rate no recording has (a damaged or mislabelled file) is refused before
// resampling: 1 Hz to 16 kHz would turn 16k samples into 256M.
TEST(ReadAudio, HeaderRateOutsideRecordingRates) {
  TempDir dir;
  for (int rate : {1, 3999, 1000000}) {
    const std::string path = dir.file("rate" + std::to_string(rate) + ".wav");
    crnn::test::write_audio(path, std::vector<float>(16000, 0.1f), rate, 1);
    expect_audio_error(path, "sample rate " + std::to_string(rate) +
                                 " Hz in the header is not an audio recording rate (4000..768000 Hz)");
  }
  const std::string ok = dir.file("rate4000.wav");
  crnn::test::write_audio(ok, std::vector<float>(400, 0.1f), 4000, 1);
  EXPECT_EQ(read_audio(ok).size(0), 1600);  // 4 kHz is accepted and resampled 4x
}

TEST(ReadAudio, WavWithZeroSamples) {
  TempDir dir;
  const std::string path = dir.file("nosamples.wav");
  crnn::test::write_audio(path, {}, 16000, 1);
  ASSERT_GT(fs::file_size(path), 0u);  // a valid header, no data
  expect_audio_error(path, "zero-length");
}

// A recorder killed before it finalized the header: the data chunk says 0
// bytes (and RIFF covers only the header), but the samples follow. libsndfile
// reads no samples; the error says what the file is, not "no audio".
TEST(ReadAudio, WavWithAnUnfinalizedHeaderSaysSo) {
  TempDir dir;
  const std::string path = dir.file("unfinalized.wav");
  crnn::test::write_audio(path, crnn::test::sine(300.0, 16000, 0.1, 0.5), 16000, 1);
  ASSERT_EQ(fs::file_size(path), 44u + 3200u);
  auto patch = [&path](std::streamoff at, uint32_t v) {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    const char b[4] = {static_cast<char>(v & 0xff), static_cast<char>(v >> 8 & 0xff), static_cast<char>(v >> 16 & 0xff),
                       static_cast<char>(v >> 24 & 0xff)};
    f.seekp(at);
    f.write(b, 4);
  };
  patch(40, 0);  // data size 0
  // Whatever the RIFF size says: the header only, nothing, or a streaming placeholder.
  for (uint32_t riff : {36u, 0u, 0xFFFFFFFFu}) {
    patch(4, riff);
    expect_audio_error(path, "the WAV header's audio data size is 0, but 3200 bytes of data follow it");
  }
  // An empty data chunk followed by another chunk is an empty recording.
  crnn::test::write_audio(path, {}, 16000, 1);
  {
    std::ofstream f(path, std::ios::binary | std::ios::app);
    f.write("LIST\4\0\0\0INFO", 12);
  }
  patch(4, 36 + 12);
  expect_audio_error(path, "zero-length: the file contains no audio samples");
}

TEST(ReadAudio, TruncatedFlac) {
  TempDir dir;
  const std::string path = dir.file("cut.flac");
  crnn::test::write_audio(path, crnn::test::sine(300.0, 16000, 2.0, 0.5), 16000, 1,
                          SF_FORMAT_FLAC | SF_FORMAT_PCM_16);
  fs::resize_file(path, fs::file_size(path) / 2);
  expect_audio_error(path, "truncated or corrupt");
}

// FLAC's STREAMINFO (the first metadata block, bytes 8..41) holds the total
// sample count in 36 bits: the low nibble of byte 21 and bytes 22..25. 0 means
// "unknown" — a legal file, decoded to its end; a count the stream does not
// hold is a damaged header, refused without allocating for it.
TEST(ReadAudio, FlacTotalSamplesUnknownOrFalse) {
  TempDir dir;
  const auto samples = crnn::test::sine(300.0, 16000, 0.5, 0.5);  // 8000 samples
  const std::string path = dir.file("a.flac");
  crnn::test::write_audio(path, samples, 16000, 1, SF_FORMAT_FLAC | SF_FORMAT_PCM_16);
  const auto reference = read_audio(path);
  ASSERT_EQ(reference.size(0), 8000);
  auto patch_total = [&](const std::string& out, unsigned char nibble, unsigned char byte) {
    std::ifstream in(path, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    ASSERT_EQ(bytes.substr(0, 4), "fLaC");
    ASSERT_EQ(static_cast<unsigned char>(bytes[4]) & 0x7f, 0);  // block type 0: STREAMINFO
    bytes[21] = static_cast<char>((static_cast<unsigned char>(bytes[21]) & 0xf0) | nibble);
    for (int i = 22; i < 26; ++i) bytes[i] = static_cast<char>(byte);
    std::ofstream(out, std::ios::binary) << bytes;
  };
  patch_total(dir.file("unknown.flac"), 0x0, 0x00);
  EXPECT_TRUE(torch::equal(read_audio(dir.file("unknown.flac")), reference));
  EXPECT_EQ(crnn::audio::audio_info(dir.file("unknown.flac")).frames, -1);
  EXPECT_EQ(crnn::audio::audio_info(path).frames, 8000);
  patch_total(dir.file("false.flac"), 0xf, 0xff);  // 2^36 − 1 samples announced
  expect_audio_error(dir.file("false.flac"), "decoded 8000 of 68719476735 samples the header announces");
}

TEST(ReadAudio, TruncatedWav) {
  // 1 s of 16-bit mono = 32000 data bytes after a 44-byte header; keep 10044
  // bytes, so 10000 data bytes remain.
  TempDir dir;
  const std::string path = dir.file("cut.wav");
  crnn::test::write_audio(path, crnn::test::sine(300.0, 16000, 1.0, 0.5), 16000, 1);
  ASSERT_EQ(fs::file_size(path), 32044u);
  fs::resize_file(path, 10044);
  expect_audio_error(path, "truncated or corrupt: the WAV header announces 32000 bytes of audio "
                           "data, the file holds 10000");
  // A header cut inside the fmt chunk is reported too.
  fs::resize_file(path, 30);
  expect_audio_error(path, "corrupt");
}

TEST(ReadAudio, TruncatedAiff) {
  // 1 s of 16-bit mono AIFF; cut to half. libsndfile reads what is there, so
  // the SSND chunk's declared size is compared with the file's, as for WAV.
  TempDir dir;
  const std::string path = dir.file("cut.aiff");
  crnn::test::write_audio(path, crnn::test::sine(300.0, 16000, 1.0, 0.5), 16000, 1, SF_FORMAT_AIFF | SF_FORMAT_PCM_16);
  EXPECT_EQ(read_audio(path).size(0), 16000);
  const auto size = fs::file_size(path);
  fs::resize_file(path, size / 2);
  expect_audio_error(path, "truncated or corrupt: the AIFF header announces");
}

TEST(ReadAudio, NonFiniteFloatSamples) {
  // 32-bit float WAV stores NaN and infinity as written; they would make every
  // feature of the utterance NaN.
  TempDir dir;
  auto samples = crnn::test::sine(300.0, 16000, 0.1, 0.5);  // 1600 samples
  std::vector<float> stereo;
  for (float v : samples) stereo.insert(stereo.end(), {v, v});
  stereo[2 * 100 + 1] = std::nanf("");
  const std::string nan_path = dir.file("nan.wav");
  crnn::test::write_audio(nan_path, stereo, 16000, 2, SF_FORMAT_WAV | SF_FORMAT_FLOAT);
  expect_audio_error(nan_path, "non-finite samples (nan at sample 100 of channel 1)");
  stereo[2 * 100 + 1] = 0.0f;
  stereo[2 * 7] = -INFINITY;
  const std::string inf_path = dir.file("inf.wav");
  crnn::test::write_audio(inf_path, stereo, 16000, 2, SF_FORMAT_WAV | SF_FORMAT_FLOAT);
  expect_audio_error(inf_path, "non-finite samples (-inf at sample 7 of channel 0)");
  // The same file with finite values reads.
  stereo[2 * 7] = 0.0f;
  crnn::test::write_audio(inf_path, stereo, 16000, 2, SF_FORMAT_WAV | SF_FORMAT_FLOAT);
  EXPECT_EQ(read_audio(inf_path).size(0), 1600);
}

TEST(ReadAudio, TenMillisecondFileGivesZeroFrames) {
  // Decoding works; the fbank has no complete 25 ms frame (documented in fbank.h).
  TempDir dir;
  const std::string path = dir.file("10ms.wav");
  crnn::test::write_audio(path, crnn::test::sine(500.0, 16000, 0.010), 16000, 1);
  const auto x = read_audio(path);
  EXPECT_EQ(x.size(0), 160);
  EXPECT_EQ(crnn::audio::compute_fbank(x).sizes(), (std::vector<int64_t>{0, 26}));
}

// A float file holds samples as written. Integer PCM values stored unscaled
// (±23432 where ±0.715 was meant) would shift every log mel energy by
// 2 ln 32768 without an error; files meet the in-memory limit
// (kMaxWaveformPeak, +18 dBFS): above it an error naming the file and the
// peak, at or below it (float headroom over 0 dBFS) the audio reads.
// fbank_of_file = compute_fbank(read_audio(file)), with the duration read.
TEST(ReadAudio, FbankOfFileIsTheFbankOfTheDecodedFile) {
  using crnn::audio::compute_fbank;
  using crnn::audio::fbank_of_file;
  using crnn::audio::FbankOptions;
  TempDir dir;
  crnn::test::write_audio(dir.file("ok.wav"), crnn::test::sine(300.0, 16000, 0.1, 0.5), 16000, 1);
  double seconds = 0;
  const auto feats = fbank_of_file(dir.file("ok.wav"), FbankOptions(), &seconds);
  EXPECT_TRUE(torch::equal(feats, compute_fbank(read_audio(dir.file("ok.wav")), FbankOptions())));
  EXPECT_DOUBLE_EQ(seconds, 0.1);
}

TEST(ReadAudio, FloatFilesBeyondTheWaveformPeakAreRefused) {
  using crnn::audio::kMaxWaveformPeak;
  TempDir dir;
  const auto wave = crnn::test::sine(300.0, 16000, 0.1, 0.5);  // peak 0.5
  for (double gain : {1.0, 2 * kMaxWaveformPeak, 32768.0, 1e15}) {
    std::vector<float> scaled(wave);
    for (auto& x : scaled) x = static_cast<float>(x * gain);
    const std::string path = dir.file("gain" + std::to_string(static_cast<long long>(gain)) + ".wav");
    crnn::test::write_audio(path, scaled, 16000, 1, SF_FORMAT_WAV | SF_FORMAT_FLOAT);
    const float peak = *std::max_element(scaled.begin(), scaled.end());
    if (peak <= kMaxWaveformPeak) {
      EXPECT_EQ(read_audio(path).size(0), 1600) << gain;
      EXPECT_NEAR(read_audio(path).abs().max().item<float>(), peak, 1e-6);
    } else {
      expect_audio_error(path, fmt::format("samples reach |x| = {:g}, but audio is in [-1, 1) (up to |x| = 8 is "
                                           "accepted, for clipped or boosted float audio): integer PCM stored as "
                                           "floats?",
                                           peak));
      expect_audio_error(path, "(at sample ");
      // The same samples in memory meet the same rule, with the same words.
      EXPECT_EQ(crnn::audio::waveform_problem(torch::tensor(scaled)), crnn::audio::peak_problem(peak));
    }
  }
}
