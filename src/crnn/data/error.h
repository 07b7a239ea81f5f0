#pragma once
/// \file error.h
/// The exception type of the data pipeline.
///
/// Data errors are the user's to fix (a bad manifest, a missing corpus file),
/// so their message must stand on its own: it names the file, the line and the
/// problem, without a C++ backtrace (which `TORCH_CHECK`'s c10::Error adds).
///
/// \code
///   throw crnn::data::DataError("manifest.csv:12: duplicate utterance id 'a01'");
/// \endcode

#include <stdexcept>
#include <string>

namespace crnn::data {

/// Bad input data: malformed files, missing columns or files, unknown labels.
class DataError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace crnn::data
