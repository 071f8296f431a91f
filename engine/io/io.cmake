# Checkpoint readers: key names, .pth (zip + pickle), sharded safetensors. Owner: io work.
list(APPEND TV_ENGINE_SOURCES
  io/key_names.cc
  io/checkpoint.cc
  io/pickle.cc
  io/pickle_writer.cc
  io/pth.cc
)
list(APPEND TV_ENGINE_TEST_SOURCES
  io/key_names_test.cc
  io/pth_test.cc
  io/checkpoint_test.cc
)
list(APPEND TV_ENGINE_LIBS PkgConfig::LIBZIP)
