// Golden runner for the 'rcm' kind(s) (being written).
#include "engine/golden/golden.h"

namespace turbovid::engine::golden {
absl::Status RunRcmCase(const GoldenCase&, Backend&, GoldenReport&) { return absl::UnimplementedError("RunRcmCase"); }
}  // namespace turbovid::engine::golden
