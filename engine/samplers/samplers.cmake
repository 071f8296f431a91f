# rCM and UniPC samplers, seeded noise.
list(APPEND TV_ENGINE_SOURCES
  samplers/noise.cc
  samplers/rcm.cc
  samplers/unipc.cc
)
list(APPEND TV_ENGINE_TEST_SOURCES
  samplers/samplers_test.cc
)
