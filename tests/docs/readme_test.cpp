// The README's code is real: its library example is examples/library/main.cpp
// verbatim (which InstalledPackage.ConsumerProjectBuildsAndRuns builds against
// an install), so the two can never drift apart.
#include <gtest/gtest.h>

#include "crnn/util/file_io.h"

TEST(Readme, LibraryExampleIsTheBuiltExampleVerbatim) {
  const std::string readme = crnn::read_text_file(CRNN_SOURCE_DIR "/README.md");
  const std::string example = crnn::read_text_file(CRNN_SOURCE_DIR "/examples/library/main.cpp");
  EXPECT_NE(readme.find("```cpp\n" + example + "```\n"), std::string::npos)
      << "README.md's library example differs from examples/library/main.cpp; copy the file into the README";
}
