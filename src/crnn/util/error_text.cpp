#include "crnn/util/error_text.h"

#include <c10/util/Exception.h>

namespace crnn {

std::string error_text(const std::exception& e) {
  if (const auto* c10_error = dynamic_cast<const c10::Error*>(&e)) return c10_error->what_without_backtrace();
  return e.what();
}

}  // namespace crnn
