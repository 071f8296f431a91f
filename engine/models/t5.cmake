# umT5 encoder, tokenizer, prompt cache. Owner: text work.
# The tokenizer reads spiece.model itself (text/spm_model.cc): tv_engine must not link
# libsentencepiece, whose bundled protobuf-lite 3.14 breaks processes that also link gRPC.
list(APPEND TV_ENGINE_SOURCES
  models/t5.cc
  text/spm_model.cc
  text/spm_train.cc
  text/text_encoder.cc
  text/tokenizer.cc
)
list(APPEND TV_ENGINE_TEST_SOURCES
  models/t5_test.cc
  text/tokenizer_test.cc
)
if(TV_BUILD_TESTS)
  # Parity of our unigram encoder with libsentencepiece (the only target that links it; no
  # protobuf/gRPC here). spm_parity_ref.cc includes the sentencepiece headers and no Abseil header.
  add_executable(tv_spm_parity_test text/spm_parity_test.cc text/spm_parity_ref.cc)
  tv_target(tv_spm_parity_test)
  target_link_libraries(tv_spm_parity_test PRIVATE tv_engine PkgConfig::SENTENCEPIECE
    GTest::gtest_main)
  add_test(NAME tv_spm_parity_test COMMAND tv_spm_parity_test)
  set_tests_properties(tv_spm_parity_test PROPERTIES LABELS cpu)
endif()
