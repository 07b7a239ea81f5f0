#pragma once
/// \file experiment_results.h
/// An experiment's results from its finished runs: results.md (one table per
/// experiment table, the paper's form, with a protocol section per cell),
/// results.json (the same numbers) and one grouped bar chart per table.
/// Reads only run files (run_files.h); trains nothing.
///
/// \code
///   auto plan = crnn::train::plan_experiment(e, o);
///   std::string md = crnn::train::write_experiment_results(e, plan, "results/paper", o);
/// \endcode

#include <string>

#include "crnn/train/experiment.h"

namespace crnn::train {

/// Writes out_dir/results.md, results.json and <table id>.svg from the
/// finished runs; returns the markdown.
std::string write_experiment_results(const Experiment& e, const ExperimentPlan& plan,
                                     const std::string& out_dir, const ExperimentOptions& o);

}  // namespace crnn::train
