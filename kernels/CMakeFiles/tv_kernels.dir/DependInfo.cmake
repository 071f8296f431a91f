
# Consider dependencies only in project.
set(CMAKE_DEPENDS_IN_PROJECT_ONLY OFF)

# The set of languages for which implicit dependencies are needed:
set(CMAKE_DEPENDS_LANGUAGES
  )

# The set of dependency files which are needed:
set(CMAKE_DEPENDS_DEPENDENCY_FILES
  "/work/main/kernels/attention.cu" "kernels/CMakeFiles/tv_kernels.dir/attention.cu.o" "gcc" "kernels/CMakeFiles/tv_kernels.dir/attention.cu.o.d"
  "/work/main/kernels/conv.cu" "kernels/CMakeFiles/tv_kernels.dir/conv.cu.o" "gcc" "kernels/CMakeFiles/tv_kernels.dir/conv.cu.o.d"
  "/work/main/kernels/elementwise.cu" "kernels/CMakeFiles/tv_kernels.dir/elementwise.cu.o" "gcc" "kernels/CMakeFiles/tv_kernels.dir/elementwise.cu.o.d"
  "/work/main/kernels/flash_attention.cu" "kernels/CMakeFiles/tv_kernels.dir/flash_attention.cu.o" "gcc" "kernels/CMakeFiles/tv_kernels.dir/flash_attention.cu.o.d"
  "/work/main/kernels/norm.cu" "kernels/CMakeFiles/tv_kernels.dir/norm.cu.o" "gcc" "kernels/CMakeFiles/tv_kernels.dir/norm.cu.o.d"
  "/work/main/kernels/quant.cu" "kernels/CMakeFiles/tv_kernels.dir/quant.cu.o" "gcc" "kernels/CMakeFiles/tv_kernels.dir/quant.cu.o.d"
  "/work/main/kernels/sla.cu" "kernels/CMakeFiles/tv_kernels.dir/sla.cu.o" "gcc" "kernels/CMakeFiles/tv_kernels.dir/sla.cu.o.d"
  "/work/main/kernels/gemm.cc" "kernels/CMakeFiles/tv_kernels.dir/gemm.cc.o" "gcc" "kernels/CMakeFiles/tv_kernels.dir/gemm.cc.o.d"
  )

# Targets to which this target links.
set(CMAKE_TARGET_LINKED_INFO_FILES
  )

# Fortran module output directory.
set(CMAKE_Fortran_TARGET_MODULE_DIR "")
