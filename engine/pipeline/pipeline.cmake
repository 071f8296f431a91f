# T2V / I2V pipelines, model folders, conditioning, tiny checkpoints.
list(APPEND TV_ENGINE_SOURCES
  pipeline/conditioning.cc
  pipeline/model_dir.cc
  pipeline/pipeline.cc
  pipeline/tiny_checkpoint.cc
  pipeline/random_checkpoint.cc
  pipeline/activation_plan.cc
  pipeline/activation_plan_vae.cc
)
list(APPEND TV_ENGINE_TEST_SOURCES
  pipeline/tiny_checkpoint_test.cc
  pipeline/pipeline_test.cc
  pipeline/random_checkpoint_test.cc
  pipeline/activation_plan_test.cc
)
