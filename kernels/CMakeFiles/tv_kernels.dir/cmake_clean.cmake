file(REMOVE_RECURSE
  "CMakeFiles/tv_kernels.dir/attention.cu.o"
  "CMakeFiles/tv_kernels.dir/attention.cu.o.d"
  "CMakeFiles/tv_kernels.dir/conv.cu.o"
  "CMakeFiles/tv_kernels.dir/conv.cu.o.d"
  "CMakeFiles/tv_kernels.dir/elementwise.cu.o"
  "CMakeFiles/tv_kernels.dir/elementwise.cu.o.d"
  "CMakeFiles/tv_kernels.dir/flash_attention.cu.o"
  "CMakeFiles/tv_kernels.dir/flash_attention.cu.o.d"
  "CMakeFiles/tv_kernels.dir/gemm.cc.o"
  "CMakeFiles/tv_kernels.dir/gemm.cc.o.d"
  "CMakeFiles/tv_kernels.dir/norm.cu.o"
  "CMakeFiles/tv_kernels.dir/norm.cu.o.d"
  "CMakeFiles/tv_kernels.dir/quant.cu.o"
  "CMakeFiles/tv_kernels.dir/quant.cu.o.d"
  "CMakeFiles/tv_kernels.dir/sla.cu.o"
  "CMakeFiles/tv_kernels.dir/sla.cu.o.d"
  "libtv_kernels.a"
  "libtv_kernels.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang CUDA CXX)
  include(CMakeFiles/tv_kernels.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
