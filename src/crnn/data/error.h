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

#include "crnn/util/file_io.h"

namespace crnn::data {

/// Bad input data: malformed files, missing columns or files, unknown labels.
/// The same type as crnn::DataError (util/file_io.h), which file reading and
/// writing throw, so that one catch covers a bad file and a bad row.
using DataError = crnn::DataError;

}  // namespace crnn::data
