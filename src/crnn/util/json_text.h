#pragma once
/// \file json_text.h
/// JSON text for every file and line crnn writes (summary.json, eval_*.json,
/// repeat.json, results.json, `crnn predict` lines). Strings that are not
/// valid UTF-8 — a Latin-1 label in a manifest, a file name with a stray byte —
/// get U+FFFD for each invalid byte sequence instead of nlohmann's type_error 316, which
/// would otherwise end a finished training run or a batch of predictions
/// without writing anything.
///
/// \code
///   nlohmann::json j;
///   j["label"] = "surpris\xe9";     // Latin-1
///   crnn::json_text(j);              // {"label":"surpris\uFFFD"} (as UTF-8 bytes)
///   crnn::json_text(j, 2);           // indented, as the run files are written
/// \endcode

#include <nlohmann/json.hpp>

#include <cmath>
#include <string>

namespace crnn {

/// `j.dump(indent)` with invalid UTF-8 replaced by U+FFFD; indent −1 = one line.
std::string json_text(const nlohmann::json& j, int indent = -1);

/// A number, or null where it is NaN or infinite (JSON has neither): a
/// missing score, a mean over no runs.
inline nlohmann::json number_or_null(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(); }

}  // namespace crnn
