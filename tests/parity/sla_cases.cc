// Parity cases for Sla.
#include "tests/parity/parity_case.h"

namespace turbovid::engine::parity {

std::vector<Case> SlaCases() { return {}; }

}  // namespace turbovid::engine::parity
