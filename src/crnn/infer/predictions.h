#pragma once
/// \file predictions.h
/// Per-utterance predictions as files: JSON lines (one object per utterance)
/// and CSV (one row per utterance, a probability column per class). The one
/// writer of both formats, for `crnn predict` and `crnn eval --predictions`.
///
///   {"id": "a", "path": "a.wav", "speaker": "s1", "truth": "calm", "label": "calm",
///    "probabilities": {"angry": 0.0123, "calm": 0.9877}, "frames": 298}
///   id,path,speaker,truth,label,frames,p_angry,p_calm,error,no_signal
///
/// An input whose every frame is the same (silence, DC, a steady tone) has
/// "no_signal": true in JSON (the key is absent otherwise) and no_signal 1 in
/// CSV (0 otherwise, empty for a failed input): its label carries no information.
///
/// Segments (PredictOptions::segment_seconds) add their span in seconds,
/// "start": 3.0, "end": 6.0 after the speaker, and start,end columns after
/// the speaker column (empty for an input that failed).
///
/// Probabilities are written with 6 significant digits (enough to compare two
/// runs at 1e-6; they are float32 inside the model).
///
/// \code
///   std::ofstream out("pred.csv");
///   out << crnn::infer::predictions_csv_header(labels);
///   for (auto& p : preds) out << crnn::infer::prediction_csv_row(p, labels.size());
/// \endcode

#include <string>
#include <vector>

#include "crnn/infer/classifier.h"
#include "crnn/train/evaluate_run.h"

namespace crnn::infer {

/// One JSON line (with its newline). Empty speaker / truth are left out; a
/// failed prediction has "error" instead of label and probabilities.
std::string prediction_json_line(const Prediction& p, const std::vector<std::string>& labels);

/// The CSV header line (with its newline) for a model with these class
/// labels; `segments`: with the start and end columns.
std::string predictions_csv_header(const std::vector<std::string>& labels, bool segments = false);
/// One CSV row (with its newline), fields quoted where needed (RFC 4180);
/// `num_labels` probability cells (empty for a failed prediction); `segments`
/// as the header's.
std::string prediction_csv_row(const Prediction& p, size_t num_labels, bool segments = false);

/// Writes the header and every prediction as CSV to `path`, atomically (with
/// the start and end columns when any prediction is a segment).
void write_predictions_csv(const std::string& path, const std::vector<Prediction>& predictions,
                           const std::vector<std::string>& labels);
/// The per-utterance predictions of an evaluation (train::evaluate_run with
/// keep_probabilities) as CSV to `path`: `crnn eval --predictions` and
/// crnn.evaluate(predictions=...).
void write_predictions_csv(const std::string& path, const train::EvalRun& run);

}  // namespace crnn::infer
