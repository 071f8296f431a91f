// Golden runner for the 'sla' kind(s) (being written).
#include "engine/golden/golden.h"

namespace turbovid::engine::golden {
absl::Status RunSlaCase(const GoldenCase&, Backend&, GoldenReport&) { return absl::UnimplementedError("RunSlaCase"); }
}  // namespace turbovid::engine::golden
