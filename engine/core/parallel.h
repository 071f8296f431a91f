// ParallelFor over a fixed pool of worker threads (one per hardware thread): the CPU backend's ops
// and the host-side loops of models, samplers, video and test fixtures share the one pool.
#pragma once

#include <cstdint>
#include <functional>

namespace turbovid::engine {

// Calls fn(begin, end) on disjoint chunks covering [0, n). Runs inline when n < grain.
void ParallelFor(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

}  // namespace turbovid::engine
