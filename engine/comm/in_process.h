// The in-process communicator: the ranks are threads of one process that exchange host tensors
// through shared memory. The CPU backend's parallel paths and their tests run on it.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "engine/comm/communicator.h"

namespace turbovid::engine::comm {

// `size` communicators of one group; hand element r to the thread that is rank r. Every
// collective posts its buffers, meets the other ranks at a barrier, reads what it needs straight
// from their buffers, and meets them again before returning, so a rank's tensors are never
// written while another rank reads them. Sums run in rank order (Communicator::AllReduceSum).
std::vector<std::unique_ptr<Communicator>> MakeInProcessGroup(int size);

// Runs fn(rank, world) on `size` threads, each with its rank's communicator of a fresh group.
// A rank whose fn fails aborts the group, so the others' collectives return instead of waiting
// for it. Returns OK when every rank succeeded, else the first failure that is not the
// Unavailable the abort caused in the other ranks (or that one when it is all there is).
absl::Status RunInProcessRanks(
    int size, const std::function<absl::Status(int rank, Communicator& world)>& fn);

}  // namespace turbovid::engine::comm
