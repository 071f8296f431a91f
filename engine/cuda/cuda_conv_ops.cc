// CUDA ops: conv3d, VAE channel RMS norm, nearest upsample.
#include "engine/cuda/cuda_backend_internal.h"

namespace turbovid::engine::cuda {

void RegisterCudaConvOps(CudaBackend& backend) { (void)backend; }

}  // namespace turbovid::engine::cuda
