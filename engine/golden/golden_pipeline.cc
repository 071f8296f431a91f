// Golden runner for the 'pipeline' kind(s) (being written).
#include "engine/golden/golden.h"

namespace turbovid::engine::golden {
absl::Status RunPipelineCase(const GoldenCase&, Backend&, GoldenReport&) { return absl::UnimplementedError("RunPipelineCase"); }
}  // namespace turbovid::engine::golden
