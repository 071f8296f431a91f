// Golden runner for the 'qlinear' kind(s) (being written).
#include "engine/golden/golden.h"

namespace turbovid::engine::golden {
absl::Status RunQlinearCase(const GoldenCase&, Backend&, GoldenReport&) { return absl::UnimplementedError("RunQlinearCase"); }
}  // namespace turbovid::engine::golden
