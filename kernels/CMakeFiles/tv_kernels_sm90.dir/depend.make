# Empty dependencies file for tv_kernels_sm90.
# This may be replaced when dependencies are built.
