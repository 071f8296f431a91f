// Parity cases for Conv3d, ChannelRmsNorm, Upsample2x.
#include "tests/parity/parity_case.h"

namespace turbovid::engine::parity {

std::vector<Case> ConvCases() { return {}; }

}  // namespace turbovid::engine::parity
