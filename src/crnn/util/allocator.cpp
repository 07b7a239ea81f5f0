#include "crnn/util/allocator.h"

#include <malloc.h>

#include <cstdlib>
#include <cstring>

namespace crnn {

bool keep_freed_tensor_memory() {
  const char* opt_out = std::getenv("CRNN_KEEP_FREED_MEMORY");
  if (opt_out != nullptr && std::strcmp(opt_out, "0") == 0) return false;
  const char* tunables = std::getenv("GLIBC_TUNABLES");
  if ((tunables != nullptr && std::strstr(tunables, "glibc.malloc.") != nullptr) ||
      std::getenv("MALLOC_MMAP_THRESHOLD_") != nullptr ||
      std::getenv("MALLOC_TRIM_THRESHOLD_") != nullptr)
    return false;
  const int bytes = static_cast<int>(kKeptAllocationBytes);
  // Trim first: setting either one also switches off glibc's adaptive
  // thresholds, which would otherwise lower the trim threshold again.
  return mallopt(M_TRIM_THRESHOLD, bytes) == 1 && mallopt(M_MMAP_THRESHOLD, bytes) == 1;
}

}  // namespace crnn
