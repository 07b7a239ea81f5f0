// error_text: the message of an exception without LibTorch's C++ backtrace.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <stdexcept>

#include "crnn/util/error_text.h"

TEST(ErrorText, LibTorchErrorsLoseTheirBacktrace) {
  try {
    TORCH_CHECK(false, "window (r1) must be in 1..1048576, got 0");
    FAIL() << "TORCH_CHECK(false) did not throw";
  } catch (const std::exception& e) {
    ASSERT_NE(std::string(e.what()).find("Exception raised from"), std::string::npos);  // what() has frames
    EXPECT_EQ(crnn::error_text(e), "window (r1) must be in 1..1048576, got 0");
  }
  try {
    (void)torch::zeros({2, 3}).view({4});  // an error LibTorch raises itself
    FAIL() << "view({4}) of 6 elements did not throw";
  } catch (const std::exception& e) {
    EXPECT_EQ(crnn::error_text(e).find("Exception raised from"), std::string::npos) << crnn::error_text(e);
    EXPECT_NE(crnn::error_text(e).find("shape '[4]' is invalid"), std::string::npos) << crnn::error_text(e);
  }
  EXPECT_EQ(crnn::error_text(std::runtime_error("a.wav: zero-length")), "a.wav: zero-length");
}
