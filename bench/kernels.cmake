# Kernel micro-benchmark (never asserts): turbovid-kernel-bench times the attention kernels on
# random bf16 data at the DiT shapes (cudaEvents) and checks the fast paths against the general
# kernel. Links only tv_kernels and the CUDA runtime, so it builds wherever the kernels do.
if(TV_BUILD_CUDA)
  add_executable(turbovid-kernel-bench ${PROJECT_SOURCE_DIR}/bench/kernel_bench.cc)
  tv_target(turbovid-kernel-bench)
  target_link_libraries(turbovid-kernel-bench PRIVATE tv_kernels CUDA::cudart)
endif()
