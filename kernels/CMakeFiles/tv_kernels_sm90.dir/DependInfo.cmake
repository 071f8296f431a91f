
# Consider dependencies only in project.
set(CMAKE_DEPENDS_IN_PROJECT_ONLY OFF)

# The set of languages for which implicit dependencies are needed:
set(CMAKE_DEPENDS_LANGUAGES
  )

# The set of dependency files which are needed:
set(CMAKE_DEPENDS_DEPENDENCY_FILES
  "/work/main/kernels/conv_sm90.cu" "kernels/CMakeFiles/tv_kernels_sm90.dir/conv_sm90.cu.o" "gcc" "kernels/CMakeFiles/tv_kernels_sm90.dir/conv_sm90.cu.o.d"
  "/work/main/kernels/flash_attention_sm90.cu" "kernels/CMakeFiles/tv_kernels_sm90.dir/flash_attention_sm90.cu.o" "gcc" "kernels/CMakeFiles/tv_kernels_sm90.dir/flash_attention_sm90.cu.o.d"
  "/work/main/kernels/sla_sm90.cu" "kernels/CMakeFiles/tv_kernels_sm90.dir/sla_sm90.cu.o" "gcc" "kernels/CMakeFiles/tv_kernels_sm90.dir/sla_sm90.cu.o.d"
  )

# Targets to which this target links.
set(CMAKE_TARGET_LINKED_INFO_FILES
  )

# Fortran module output directory.
set(CMAKE_Fortran_TARGET_MODULE_DIR "")
