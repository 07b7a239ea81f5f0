#include "crnn/nn/options.h"

#include <array>
#include <atomic>
#include <stdexcept>
#include <utility>

namespace crnn::nn {
namespace {

template <typename E, size_t N>
std::string name_of(E v, const std::array<std::pair<E, const char*>, N>& table) {
  for (auto& [e, name] : table)
    if (e == v) return name;
  return "?";
}

template <typename E, size_t N>
E parse(const std::string& s, const std::array<std::pair<E, const char*>, N>& table,
        const char* what) {
  std::string allowed;
  for (auto& [e, name] : table) {
    if (s == name) return e;
    allowed += allowed.empty() ? "" : " | ";
    allowed += name;
  }
  throw std::invalid_argument("unknown " + std::string(what) + " '" + s + "' (expected " +
                              allowed + ")");
}

const std::array<std::pair<RecurrentKind, const char*>, 3> kKinds{
    {{RecurrentKind::rnn, "rnn"}, {RecurrentKind::lstm, "lstm"}, {RecurrentKind::blstm, "blstm"}}};
const std::array<std::pair<FeatureSource, const char*>, 3> kSources{{{FeatureSource::hidden, "hidden"},
                                                                     {FeatureSource::cell, "cell"},
                                                                     {FeatureSource::output, "output"}}};
const std::array<std::pair<WindowReduce, const char*>, 3> kReduces{
    {{WindowReduce::max, "max"}, {WindowReduce::mean, "mean"}, {WindowReduce::last, "last"}}};
const std::array<std::pair<Activation, const char*>, 3> kActivations{
    {{Activation::sigmoid, "sigmoid"}, {Activation::relu, "relu"}, {Activation::tanh, "tanh"}}};
const std::array<std::pair<Implementation, const char*>, 2> kImpls{
    {{Implementation::composed, "composed"}, {Implementation::fused, "fused"}}};

}  // namespace

std::string to_string(RecurrentKind v) { return name_of(v, kKinds); }
std::string to_string(FeatureSource v) { return name_of(v, kSources); }
std::string to_string(WindowReduce v) { return name_of(v, kReduces); }
std::string to_string(Activation v) { return name_of(v, kActivations); }
std::string to_string(Implementation v) { return name_of(v, kImpls); }

RecurrentKind parse_recurrent_kind(const std::string& s) { return parse(s, kKinds, "kind"); }
FeatureSource parse_feature_source(const std::string& s) { return parse(s, kSources, "source"); }
WindowReduce parse_window_reduce(const std::string& s) { return parse(s, kReduces, "reduce"); }
Activation parse_activation(const std::string& s) { return parse(s, kActivations, "activation"); }
Implementation parse_implementation(const std::string& s) {
  return parse(s, kImpls, "implementation");
}

namespace {
std::atomic<Implementation> g_default_impl{Implementation::fused};
}
Implementation default_implementation() { return g_default_impl.load(); }
void set_default_implementation(Implementation impl) { g_default_impl.store(impl); }

}  // namespace crnn::nn
