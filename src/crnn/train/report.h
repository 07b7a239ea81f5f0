#pragma once
/// \file report.h
/// Training reports: an `index.html` that opens offline, tying together the
/// SVG charts (charts.h) of the files `crnn train` and `crnn repeat` leave in
/// their run directories (read through run_files.h).
///
/// \code
///   crnn::train::write_report("runs/clstm", "runs/clstm/report");  // index.html + *.svg
/// \endcode

#include <stdexcept>
#include <string>
#include <vector>

#include "crnn/train/run_files.h"

namespace crnn::train {

/// A report problem of its own (a missing directory, no runs in it); a bad
/// run file throws RunFileError.
class ReportError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Writes `out_dir`/index.html and its SVG files for `dir`, which is either a
/// run directory (has metrics.csv) or a `crnn repeat` directory (its
/// subdirectories with metrics.csv are the runs). Per run: loss.svg,
/// recall.svg and confusion_<split>.svg per eval file; for a repeat directory
/// also overview.svg, with each run's files under `out_dir`/<run>/. Links in
/// index.html are relative, so the folder can be moved or archived.
/// Returns the paths written (index.html last). Run subdirectories of a repeat
/// directory that have no metrics.csv are left out and, with `skipped`, listed
/// there as "NAME: reason".
///
/// \code
///   write_report("runs/seeds", "runs/seeds/report");
/// \endcode
std::vector<std::string> write_report(const std::string& dir, const std::string& out_dir,
                                      std::vector<std::string>* skipped = nullptr);

}  // namespace crnn::train
