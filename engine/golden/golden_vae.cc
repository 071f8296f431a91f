// Golden runner for the 'vae' kind(s) (being written).
#include "engine/golden/golden.h"

namespace turbovid::engine::golden {
absl::Status RunVaeDecodeCase(const GoldenCase&, Backend&, GoldenReport&) { return absl::UnimplementedError("RunVaeDecodeCase"); }
absl::Status RunVaeEncodeCase(const GoldenCase&, Backend&, GoldenReport&) { return absl::UnimplementedError("RunVaeEncodeCase"); }
}  // namespace turbovid::engine::golden
