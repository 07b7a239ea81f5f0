#pragma once
/// \file text.h
/// Small string helpers shared by the text-file readers (manifests, corpus
/// lists, metrics.csv) so each one trims fields the same way.
///
/// \code
///   crnn::trim("  calm \t");            // "calm"
///   crnn::trim("3.5\r\n", " \t\r\n");  // "3.5"
/// \endcode

#include <string>
#include <string_view>

namespace crnn {

/// `s` without leading and trailing characters from `chars` (spaces and tabs
/// by default); "" when `s` holds nothing else.
std::string trim(std::string_view s, std::string_view chars = " \t");

}  // namespace crnn
