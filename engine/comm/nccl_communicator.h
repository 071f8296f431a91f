// The NCCL communicator: collectives over the GPUs of a node, on the CUDA backend's stream.
// Built when the CUDA backend is built and NCCL is found (nccl_communicator.cc), else a stub
// source answers Unimplemented (nccl_absent.cc); CMake picks one.
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "engine/comm/communicator.h"

namespace turbovid::engine::comm {

// Sets NCCL_NVLS_ENABLE=0 in this process's environment (overriding any other value), so that
// NCCL never builds NVLink SHARP (multicast) buffers: on shared hosts cuMulticastCreate can take
// the GPUs out of service. The worker calls it first thing, before it starts any process (they
// inherit it); MakeNcclCommunicator calls it again before ncclCommInitRank.
void DisableNvlinkMulticast();

// One rank of an NCCL communicator over the ranks of `bootstrap` (same size and rank): rank 0
// draws the NCCL unique id and broadcasts it over `bootstrap` (host memory, e.g. the socket
// communicator), then every rank joins on CUDA device `device`. Collectives are queued on
// `cuda_stream` (a cudaStream_t; null = the legacy default stream) behind the backend's work and
// return without waiting, except Barrier, which waits for the stream. Tensors must be device
// memory. Abort() calls ncclCommAbort, which ends collectives stuck on a dead peer.
// Unimplemented in a build without NCCL.
absl::StatusOr<std::unique_ptr<Communicator>> MakeNcclCommunicator(Communicator& bootstrap,
                                                                   int device, void* cuda_stream);

}  // namespace turbovid::engine::comm
