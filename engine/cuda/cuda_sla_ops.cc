// CUDA ops: SLA (block map, block-sparse softmax branch, linear branch).
#include "engine/cuda/cuda_backend_internal.h"

namespace turbovid::engine::cuda {

void RegisterCudaSlaOps(CudaBackend& backend) { (void)backend; }

}  // namespace turbovid::engine::cuda
