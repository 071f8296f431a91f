# Empty dependencies file for tv_kernels.
# This may be replaced when dependencies are built.
