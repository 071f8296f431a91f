file(REMOVE_RECURSE
  "CMakeFiles/tv_kernels_sm90.dir/conv_sm90.cu.o"
  "CMakeFiles/tv_kernels_sm90.dir/conv_sm90.cu.o.d"
  "CMakeFiles/tv_kernels_sm90.dir/flash_attention_sm90.cu.o"
  "CMakeFiles/tv_kernels_sm90.dir/flash_attention_sm90.cu.o.d"
  "CMakeFiles/tv_kernels_sm90.dir/sla_sm90.cu.o"
  "CMakeFiles/tv_kernels_sm90.dir/sla_sm90.cu.o.d"
)

# Per-language clean rules from dependency scanning.
foreach(lang CUDA)
  include(CMakeFiles/tv_kernels_sm90.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
