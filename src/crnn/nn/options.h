#pragma once
/// \file options.h
/// Enumerations shared by the layer options and their text names (used by
/// configs and error messages).

#include <string>

namespace crnn::nn {

/// The recurrent network f(w) runs over each window (paper §III-C).
enum class RecurrentKind { rnn, lstm, blstm };
/// Which per-step sequence builds a window's features (SPEC §1 "source").
enum class FeatureSource { hidden, cell, output };
/// How the r1 per-step vectors of a window become one (SPEC §1 "reduce").
enum class WindowReduce { max, mean, last };
/// Nonlinearity of the standard convolutional layer.
enum class Activation { sigmoid, relu, tanh };
/// Forward/backward implementation of the CRNN layers.
enum class Implementation { composed, fused };

std::string to_string(RecurrentKind v);
std::string to_string(FeatureSource v);
std::string to_string(WindowReduce v);
std::string to_string(Activation v);
std::string to_string(Implementation v);

/// Parse a name; throws std::invalid_argument listing the allowed names.
RecurrentKind parse_recurrent_kind(const std::string& s);
FeatureSource parse_feature_source(const std::string& s);
WindowReduce parse_window_reduce(const std::string& s);
Activation parse_activation(const std::string& s);
Implementation parse_implementation(const std::string& s);

/// The implementation newly built layer options start with (initially fused).
/// Lets a caller build the same model with either path (`crnn bench`) without
/// threading an option through every preset; options set explicitly win.
Implementation default_implementation();
void set_default_implementation(Implementation impl);

}  // namespace crnn::nn
