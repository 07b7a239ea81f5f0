#pragma once
/// \file error_text.h
/// The message of an exception as a user should read it.
///
/// LibTorch's c10::Error (from TORCH_CHECK, failed allocations, ...) carries a
/// C++ backtrace in what(); per-file error reports (predict's JSON, features'
/// failure list) and the command's last-resort handler show only its message.
///
/// \code
///   try { ... } catch (const std::exception& e) { report(crnn::error_text(e)); }
/// \endcode

#include <exception>
#include <string>

namespace crnn {

/// e.what(), or c10::Error::what_without_backtrace() for LibTorch errors.
std::string error_text(const std::exception& e);

}  // namespace crnn
