# tv_engine_cuda: the CUDA backend over tv_kernels (docs/design.md §10). Included by
# engine/CMakeLists.txt when TV_BUILD_CUDA is on.
add_library(tv_engine_cuda
  cuda/cuda_backend.cc
  cuda/device_pool.cc
  cuda/cuda_ops.cc
  cuda/cuda_conv_ops.cc
  cuda/cuda_sla_ops.cc
  cuda/cuda_quant_ops.cc
)
tv_target(tv_engine_cuda)
target_link_libraries(tv_engine_cuda PUBLIC tv_engine PRIVATE tv_kernels CUDA::cudart)

# `turbovid-engine golden --backend cuda`.
target_link_libraries(turbovid-engine PRIVATE tv_engine_cuda)
target_compile_definitions(turbovid-engine PRIVATE TV_HAVE_CUDA_BACKEND=1)

if(TV_BUILD_TESTS)
  # Backend-ops parity: every CUDA op against the CPU reference, and the device pool's arena;
  # skips without a GPU.
  add_executable(tv_parity_test
    ${PROJECT_SOURCE_DIR}/tests/parity/backend_ops_test.cc
    ${PROJECT_SOURCE_DIR}/tests/parity/conv_cases.cc
    ${PROJECT_SOURCE_DIR}/tests/parity/sla_cases.cc
    ${PROJECT_SOURCE_DIR}/tests/parity/quant_cases.cc
    cuda/device_pool_test.cc)
  tv_target(tv_parity_test)
  target_link_libraries(tv_parity_test PRIVATE tv_engine_cuda tv_engine CUDA::cudart GTest::gtest_main)
  gtest_discover_tests(tv_parity_test PROPERTIES LABELS gpu DISCOVERY_TIMEOUT 60)
endif()
