# CMAKE generated file: DO NOT EDIT!
# Timestamp file for compiler generated dependencies management for tv_kernels_sm90.
