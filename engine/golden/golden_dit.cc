// Golden runner for the 'dit' kind(s) (being written).
#include "engine/golden/golden.h"

namespace turbovid::engine::golden {
absl::Status RunDitCase(const GoldenCase&, Backend&, GoldenReport&) { return absl::UnimplementedError("RunDitCase"); }
}  // namespace turbovid::engine::golden
