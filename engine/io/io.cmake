# Checkpoint readers: key names, .pth (zip + pickle), sharded safetensors. Owner: io work.
list(APPEND TV_ENGINE_SOURCES
  io/key_names.cc
  io/checkpoint.cc
)
list(APPEND TV_ENGINE_LIBS PkgConfig::LIBZIP)
