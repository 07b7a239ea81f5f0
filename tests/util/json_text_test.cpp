#include <gtest/gtest.h>

#include "crnn/util/json_text.h"

// Invalid UTF-8 becomes U+FFFD (EF BF BD), one per invalid sequence (here each
// stray byte is one); valid text,
// including multi-byte characters, is written as it is.
TEST(JsonText, InvalidUtf8IsReplacedNotThrown) {
  nlohmann::json j;
  j["label"] = "surpris\xe9";
  j["path"] = "bad\xff\xfename.wav";
  EXPECT_THROW((void)j.dump(), nlohmann::json::type_error);  // what json_text avoids
  EXPECT_EQ(crnn::json_text(j),
            "{\"label\":\"surpris\xEF\xBF\xBD\",\"path\":\"bad\xEF\xBF\xBD\xEF\xBF\xBDname.wav\"}");
  nlohmann::json ok;
  ok["label"] = "überrascht";
  ok["n"] = 2;
  EXPECT_EQ(crnn::json_text(ok), "{\"label\":\"überrascht\",\"n\":2}");
  EXPECT_EQ(crnn::json_text(ok, 2), "{\n  \"label\": \"überrascht\",\n  \"n\": 2\n}");
}
