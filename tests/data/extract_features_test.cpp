#include <gtest/gtest.h>

#include "crnn/audio/feature_extractor.h"
#include "crnn/data/extract_features.h"

using namespace crnn;

// The options a message suggests must make the same extractor again: parse the
// flags back the way `crnn features` applies them and compare describe() lines.
TEST(ExtractFeatures, CommandOptionsAreTheNonDefaultFlagsThatMakeTheExtractor) {
  const std::string resampler = " resampler=soxr-hq";  // what `crnn features` appends
  EXPECT_EQ(data::command_options(audio::FeatureExtractor::fbank({}).describe() + resampler), "");
  EXPECT_EQ(data::command_options(audio::FeatureExtractor::egemaps({}).describe() + resampler), " --kind egemaps");
  EXPECT_EQ(data::command_options(audio::FeatureExtractor::egemaps(audio::EgemapsOptions().sample_rate(8000)).describe()),
            " --kind egemaps --sample-rate 8000");
  const auto fbank = audio::FeatureExtractor::fbank(
      audio::FbankOptions().num_bins(40).window(audio::WindowType::Hamming).sample_rate(8000));
  EXPECT_EQ(data::command_options(fbank.describe() + resampler), " --sample-rate 8000 --num-bins 40 --window hamming");
  // As run_features builds ExtractOptions from those flags.
  data::ExtractOptions o;
  o.fbank.num_bins(40).sample_rate(8000).window(audio::parse_window_type("hamming"));
  EXPECT_EQ(audio::FeatureExtractor::fbank(o.fbank).describe(), fbank.describe());
  // An extractor line crnn cannot read suggests nothing rather than something wrong.
  EXPECT_EQ(data::command_options("mystery-features a=1"), "");
  EXPECT_EQ(data::command_options(""), "");
}
