#pragma once
// Every ConvRecurrent option combination SPEC §1 allows, for parameterized tests.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "crnn/nn/options.h"

namespace crnn::testing {

using namespace crnn::nn;

struct Combo {
  RecurrentKind kind;
  FeatureSource source;
  FeatureSource combine;
  WindowReduce reduce;
  bool extended;
};

inline std::string combo_name(const ::testing::TestParamInfo<Combo>& info) {
  const auto& c = info.param;
  std::string s = to_string(c.kind) + "_" + to_string(c.source);
  if (c.source == FeatureSource::output) s += "_from_" + to_string(c.combine);
  s += "_" + to_string(c.reduce);
  if (c.extended) s += "_extended";
  return s;
}

// Every combination SPEC §1 allows: cell states and `extended` need an LSTM
// kind; the output map reads hidden (eq. 2 / 8) or cell (eq. 9) states.
inline std::vector<Combo> all_combos() {
  std::vector<Combo> out;
  for (auto kind : {RecurrentKind::rnn, RecurrentKind::lstm, RecurrentKind::blstm})
    for (auto source : {FeatureSource::hidden, FeatureSource::cell, FeatureSource::output})
      for (auto combine : {FeatureSource::hidden, FeatureSource::cell})
        for (auto reduce : {WindowReduce::max, WindowReduce::mean, WindowReduce::last})
          for (bool extended : {false, true}) {
            const bool lstm_kind = kind != RecurrentKind::rnn;
            if (!lstm_kind && (source == FeatureSource::cell || combine == FeatureSource::cell || extended))
              continue;
            if (source != FeatureSource::output && combine != FeatureSource::hidden) continue;
            out.push_back({kind, source, combine, reduce, extended});
          }
  return out;
}

}  // namespace crnn::testing
