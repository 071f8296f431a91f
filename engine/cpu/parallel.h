// ParallelFor over a fixed pool of worker threads (one per hardware thread).
#pragma once

#include <cstdint>
#include <functional>

namespace turbovid::engine::cpu {

// Calls fn(begin, end) on disjoint chunks covering [0, n). Runs inline when n < grain.
void ParallelFor(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

}  // namespace turbovid::engine::cpu
