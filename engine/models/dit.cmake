# Wan DiT (dense / SLA / int8) and the CPU SLA + int8 ops. Owner: DiT work.
list(APPEND TV_ENGINE_SOURCES
  cpu/sla_ops.cc
  cpu/quant_ops.cc
  models/quantize.cc
  models/dit.cc
  models/flops.cc
)
list(APPEND TV_ENGINE_TEST_SOURCES
  cpu/sla_ops_test.cc
  cpu/quant_ops_test.cc
  models/dit_test.cc
  models/flops_test.cc
)
