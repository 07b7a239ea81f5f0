// libcrnn_torch.so: the crnn operators and classes for PyTorch, registered
// when the library is loaded (`torch.ops.load_library(path)`; `import crnn`
// does it). Everything lives in the crnn library (src/crnn/ops).
#include "crnn/ops/torch_ops.h"

namespace {
const bool registered = (crnn::ops::register_ops(), true);
}  // namespace
