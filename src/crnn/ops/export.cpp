#include "crnn/ops/export.h"

#include <torch/csrc/jit/frontend/resolver.h>
#include <torch/csrc/jit/frontend/sugared_value.h>
#include <torch/script.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "crnn/ops/torch_ops.h"
#include "crnn/train/checkpoint.h"
#include "crnn/train/config.h"
#include "crnn/util/file_io.h"

namespace crnn::ops {

namespace {

/// Resolves `crnn.<op>` in the module's source to the registered operators
/// (saved as `ops.crnn.<op>`, which torch.jit.load resolves).
struct OpsResolver : torch::jit::Resolver {
  std::shared_ptr<torch::jit::SugaredValue> resolveValue(const std::string& name, torch::jit::GraphFunction&,
                                                         const torch::jit::SourceRange&) override {
    if (name == "crnn") return std::make_shared<torch::jit::BuiltinModule>("crnn");
    return nullptr;
  }
  c10::TypePtr resolveType(const std::string&, const torch::jit::SourceRange&) override { return nullptr; }
};

}  // namespace

void export_torchscript(const std::string& model_path, const std::string& out_path) {
  register_ops();
  std::string info_json;
  std::vector<std::string> names;
  std::vector<torch::Tensor> params;
  std::tie(info_json, names, params) = load_model(model_path);
  auto loaded = train::load_model(model_path);
  const auto& b = loaded.bundle;

  torch::jit::Module m("crnn_model");
  std::string list;
  for (size_t i = 0; i < names.size(); ++i) {
    m.register_parameter(names[i], params[i].clone(), /*is_buffer=*/false);
    list += (i ? ", self." : "self.") + names[i];
  }
  c10::List<std::string> labels;
  for (const auto& l : b.labels) labels.push_back(l);
  m.register_attribute("labels", c10::ListType::ofStrings(), labels);
  m.register_attribute("task", c10::StringType::get(), b.task);
  m.register_attribute("feature_extractor", c10::StringType::get(), b.feature_extractor);
  m.register_attribute("sample_rate", c10::IntType::get(), b.sample_rate);
  const auto config = train::RunConfig::parse(b.config_toml, {}, model_path);
  m.register_attribute("normalization", c10::StringType::get(), config.data.normalization);
  m.register_attribute("model_options", c10::StringType::get(), nlohmann::json::parse(info_json)["options"].dump());
  const auto& stats = b.global_stats;
  m.register_buffer("global_mean", stats.mean.defined() ? stats.mean.clone() : torch::empty({0}));
  m.register_buffer("global_std", stats.std.defined() ? stats.std.clone() : torch::empty({0}));
  m.define(
      "def forward(self, x: Tensor, lengths: Tensor) -> Tensor:\n"
      "    return crnn.module_forward(\"sequence_classifier\", self.model_options, [" +
          list + "], x, lengths, False)[0]\n",
      std::make_shared<OpsResolver>());
  m.eval();
  std::ostringstream bytes;
  try {
    m.save(bytes);
  } catch (const c10::Error& e) {
    throw DataError(out_path + ": could not serialize the TorchScript module: " + e.what_without_backtrace());
  }
  write_text_file_atomic(out_path, bytes.str());
}

}  // namespace crnn::ops
