# Wan2.1 VAE encode/decode and the CPU conv ops. Owner: VAE work.
list(APPEND TV_ENGINE_SOURCES
  cpu/conv_ops.cc
  models/vae.cc
)
list(APPEND TV_ENGINE_TEST_SOURCES
  cpu/conv_ops_test.cc
  models/vae_test.cc
)
