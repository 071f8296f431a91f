# umT5 encoder, tokenizer, prompt cache. Owner: text work.
list(APPEND TV_ENGINE_SOURCES
  models/t5.cc
  text/text_encoder.cc
)
# tokenizer.cc includes Debian's sentencepiece headers, which declare their own absl::string_view:
# it must see no Abseil header (and it uses none).
list(APPEND TV_ENGINE_TEXT_SOURCES
  text/tokenizer.cc
)
list(APPEND TV_ENGINE_LIBS PkgConfig::SENTENCEPIECE)
list(APPEND TV_ENGINE_TEST_SOURCES
  models/t5_test.cc
  text/tokenizer_test.cc
)
