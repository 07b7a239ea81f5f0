#include "crnn/train/cross_validation.h"

#include <filesystem>
#include <map>
#include <optional>
#include <set>

#include "crnn/train/metrics.h"

namespace crnn::train {

namespace fs = std::filesystem;

CrossValidationSummary summarize_cross_validation(const std::vector<CrossValidationFold>& folds) {
  CrossValidationSummary cv;
  cv.folds = static_cast<int64_t>(folds.size());
  std::vector<double> fold_means;
  for (const auto& f : folds)
    if (f.runs.test_ua_recall.n > 0) fold_means.push_back(f.runs.test_ua_recall.mean);
  cv.over_folds = mean_std(fold_means);

  // The seeds every fold has a finished run of (each fold counted once).
  std::map<uint64_t, std::set<size_t>> folds_with_seed;
  for (size_t k = 0; k < folds.size(); ++k)
    for (const auto& r : folds[k].runs.runs) folds_with_seed[r.seed].insert(k);
  std::vector<double> ua, wa;
  std::optional<ConfusionMatrix> all;
  for (const auto& [seed, with] : folds_with_seed) {
    if (static_cast<int64_t>(with.size()) != cv.folds || folds.empty()) continue;
    std::optional<ConfusionMatrix> pooled;
    std::vector<std::string> labels;
    bool complete = true;
    for (const auto& f : folds) {
      const RepeatRun* run = nullptr;
      for (const auto& r : f.runs.runs)
        if (r.seed == seed && !run) run = &r;
      if (!run) {
        complete = false;
        break;
      }
      const fs::path path = fs::path(f.dir) / run->dir / "eval_test.json";
      std::error_code ec;
      if (!fs::exists(path, ec)) {
        complete = false;  // a run without a test split
        break;
      }
      EvalResult e;
      try {
        e = read_eval_json(path.string());
      } catch (const RunFileError&) {
        complete = false;
        break;
      }
      if (!pooled) {
        labels = e.labels;
        pooled.emplace(static_cast<int64_t>(labels.size()));
      }
      if (e.labels != labels || e.confusion.size() != labels.size()) {
        complete = false;
        break;
      }
      pooled->add(e.confusion);
    }
    if (!complete || !pooled) continue;
    if (!all) {
      cv.labels = labels;
      all.emplace(static_cast<int64_t>(labels.size()));
    }
    if (labels != cv.labels) continue;  // another label set (the manifest changed between seeds): not pooled
    ua.push_back(pooled->ua_recall());
    wa.push_back(pooled->wa());
    all->add(pooled->counts());
  }
  cv.pooled_ua_recall = mean_std(ua);
  cv.pooled_wa = mean_std(wa);
  if (all) cv.pooled_confusion = all->counts();
  return cv;
}

}  // namespace crnn::train
