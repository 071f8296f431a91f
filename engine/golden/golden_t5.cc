// Golden runner for the 't5' kind(s) (being written).
#include "engine/golden/golden.h"

namespace turbovid::engine::golden {
absl::Status RunT5Case(const GoldenCase&, Backend&, GoldenReport&) { return absl::UnimplementedError("RunT5Case"); }
}  // namespace turbovid::engine::golden
