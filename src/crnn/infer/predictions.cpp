#include "crnn/infer/predictions.h"

#include <fmt/core.h>

#include <nlohmann/json.hpp>

#include <algorithm>

#include "crnn/data/manifest.h"
#include "crnn/util/file_io.h"
#include "crnn/util/json_text.h"

namespace crnn::infer {
namespace {

/// 6 significant digits, shortest form ("0.987654", "1.23457e-05", "1").
std::string probability_text(float p) { return fmt::format("{:.6g}", p); }

/// Seconds to the 10 ms of a frame shift ("3.00", "2.99", "3600.50").
std::string seconds_text(double s) { return fmt::format("{:.2f}", s); }

}  // namespace

std::string prediction_json_line(const Prediction& p, const std::vector<std::string>& labels) {
  nlohmann::ordered_json j;
  j["id"] = p.id;
  if (!p.path.empty()) j["path"] = p.path;
  if (!p.speaker.empty()) j["speaker"] = p.speaker;
  if (p.segment >= 0) {
    j["start"] = nlohmann::json::parse(seconds_text(p.start_seconds));
    j["end"] = nlohmann::json::parse(seconds_text(p.end_seconds));
  }
  if (!p.truth.empty()) j["truth"] = p.truth;
  if (!p.error.empty()) {
    j["error"] = p.error;
  } else {
    j["label"] = p.label;
    // Rounded to 6 significant digits through the text form, so the JSON
    // shows 0.987654, not 0.98765432834625244.
    nlohmann::ordered_json probs;
    for (size_t c = 0; c < labels.size() && c < p.probabilities.size(); ++c)
      probs[labels[c]] = nlohmann::json::parse(probability_text(p.probabilities[c]));
    j["probabilities"] = probs;
    j["frames"] = p.frames;
    // Every frame the same (silence, DC, a steady tone): the label carries no information.
    if (p.no_signal) j["no_signal"] = true;
  }
  // Invalid UTF-8 in a path becomes U+FFFD (as crnn::json_text does) instead of an error.
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
}

std::string predictions_csv_header(const std::vector<std::string>& labels, bool segments) {
  std::string h = segments ? "id,path,speaker,start,end,truth,label,frames" : "id,path,speaker,truth,label,frames";
  for (const auto& l : labels) h += "," + data::csv::quote("p_" + l);
  return h + ",error,no_signal\n";
}

std::string prediction_csv_row(const Prediction& p, size_t num_labels, bool segments) {
  using data::csv::quote;
  std::string row = fmt::format("{},{},{}", quote(p.id), quote(p.path), quote(p.speaker));
  if (segments)
    row += p.segment >= 0 ? "," + seconds_text(p.start_seconds) + "," + seconds_text(p.end_seconds) : ",,";
  row += fmt::format(",{},{},{}", quote(p.truth), quote(p.label), p.error.empty() ? std::to_string(p.frames) : "");
  // A failed row has no probabilities: empty cells keep the columns aligned.
  for (size_t c = 0; c < num_labels; ++c)
    row += "," + (c < p.probabilities.size() ? probability_text(p.probabilities[c]) : std::string());
  // no_signal: 1 when every frame is the same (the label carries no information), 0 otherwise, empty on error.
  return row + "," + quote(p.error) + "," + (p.error.empty() ? (p.no_signal ? "1" : "0") : "") + "\n";
}

void write_predictions_csv(const std::string& path, const std::vector<Prediction>& predictions,
                           const std::vector<std::string>& labels) {
  const bool segments =
      std::any_of(predictions.begin(), predictions.end(), [](const Prediction& p) { return p.segment >= 0; });
  std::string text = predictions_csv_header(labels, segments);
  for (const auto& p : predictions) text += prediction_csv_row(p, labels.size(), segments);
  write_text_file_atomic(path, text);
}

void write_predictions_csv(const std::string& path, const train::EvalRun& run) {
  const auto labels = run.labels.names();
  write_predictions_csv(path, predictions_of(run.evaluation, run.examples, run.part, run.task, labels), labels);
}

}  // namespace crnn::infer
