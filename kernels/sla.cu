// (filled by the sla work)
#include "kernels/sla.h"
