// (filled by the flash_attention work)
#include "kernels/flash_attention.h"
