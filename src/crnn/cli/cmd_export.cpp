// `crnn export MODEL -o model.pt`: a trained model as TorchScript for plain
// PyTorch (ops/export.h; docs/python.md).
//
//   crnn export runs/clstm -o clstm.ts.pt
//   python3 -c "import torch, crnn; torch.ops.load_library(crnn.OPS_LIBRARY); m = torch.jit.load('clstm.ts.pt')"
//
// Exit status: 0 on success, kExitUsage (2) for a missing or damaged model or a failed write.
#include <fmt/core.h>

#include <filesystem>
#include <memory>

#include "crnn/cli/command.h"
#include "crnn/ops/export.h"
#include "crnn/train/checkpoint.h"
#include "crnn/util/file_io.h"

namespace {

struct ExportOptions {
  std::string model, out;
};

int run_export(const ExportOptions& o) {
  try {
    const std::string model = crnn::train::model_file(o.model);
    crnn::ops::export_torchscript(model, o.out);
    fmt::print("wrote {} (TorchScript; load the crnn ops library first, see docs/python.md)\n", o.out);
    return 0;
  } catch (const std::exception& e) {
    fmt::print(stderr, "crnn export: error: {}\n", e.what());
    return crnn::cli::kExitUsage;
  }
}

const crnn::cli::Registrar reg{
    "export", "A trained model as TorchScript for PyTorch (torch.jit.load after loading the crnn ops)",
    [](CLI::App& app) {
      auto o = std::make_shared<ExportOptions>();
      app.add_option("MODEL", o->model, "Model file (best.pt) or run directory")->required();
      app.add_option("-o,--out", o->out, "TorchScript file to write")->required();
      return [o] { return run_export(*o); };
    },
    75};

}  // namespace
