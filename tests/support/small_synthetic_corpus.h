#pragma once
// The smallest espeak-ng corpus the end-to-end CLI tests train on: 4
// speakers × 2 utterances per class under dir/corpus (manifest.csv there).
// Callers skip first when espeak_available() is false.
#include "crnn/data/synthetic_corpus.h"
#include "support/test_support.h"

namespace crnn::test {

inline data::Manifest small_synthetic_corpus(const TempDir& dir) {
  data::SyntheticCorpusOptions co;
  co.out_dir = dir.file("corpus");
  co.speakers = 4;
  co.utterances_per_class = 2;
  return data::make_synthetic_corpus(co);
}

}  // namespace crnn::test
