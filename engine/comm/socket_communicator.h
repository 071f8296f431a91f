// The socket communicator: the ranks are processes of one host, joined pairwise by Unix-domain
// stream sockets in the Linux abstract namespace (no files, nothing to clean up). It moves host
// tensors: the CPU backend's data path across processes, and every group's control channel
// (job broadcast, the NCCL bootstrap, noticing a dead peer). docs/parallelism.md §5.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "engine/comm/communicator.h"

namespace turbovid::engine::comm {

// Joins group `name` as `rank` of `size`: rank r listens on "@turbovid-comm/<name>/<r>",
// connects to every lower rank and accepts every higher one; each link checks the peer's group
// size and that it runs under our user id. `name` ([A-Za-z0-9._-], at most 64 characters) must
// be fresh per group incarnation (the leader draws a random one). DeadlineExceeded when the
// group is not complete within `timeout_seconds`; FailedPrecondition when the name is taken.
//
// Collectives exchange whole parts with every peer at once (poll over non-blocking sockets),
// each part behind a header naming the collective and its length, so a rank that calls a
// different collective or size fails with Internal instead of misreading bytes. A peer that
// exits (even by SIGKILL) closes its sockets: the collectives waiting on it fail with
// Unavailable at once. Sums gather every part and add in rank order (float64), like the
// in-process communicator.
absl::StatusOr<std::unique_ptr<Communicator>> ConnectSocketGroup(const std::string& name, int rank,
                                                                 int size,
                                                                 double timeout_seconds = 60);

// A fresh random group name (16 hex digits).
std::string RandomGroupName();

}  // namespace turbovid::engine::comm
