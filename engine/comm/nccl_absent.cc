// The NCCL communicator of a build without NCCL: multi-GPU groups are refused by name.
#include <cstdlib>

#include "engine/comm/nccl_communicator.h"

namespace turbovid::engine::comm {

void DisableNvlinkMulticast() { setenv("NCCL_NVLS_ENABLE", "0", /*overwrite=*/1); }

absl::StatusOr<std::unique_ptr<Communicator>> MakeNcclCommunicator(Communicator&, int, void*) {
  return absl::UnimplementedError(
      "nccl: this build has no NCCL (configure with the CUDA 13 toolkit's nccl.h and libnccl, "
      "TV_WITH_NCCL=ON) for tensor/sequence parallelism on GPUs");
}

}  // namespace turbovid::engine::comm
