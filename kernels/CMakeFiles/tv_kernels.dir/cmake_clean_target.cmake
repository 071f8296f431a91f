file(REMOVE_RECURSE
  "libtv_kernels.a"
)
