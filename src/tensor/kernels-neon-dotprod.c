/* NEON kernels with SDOT (ARMv8.2-A dotprod, e.g. Cortex-A76, Neoverse-N1, Apple M1): the
 * bodies of kernels-neon-impl.h, built with +dotprod. Only called after gm_isa_supported()
 * saw HWCAP_ASIMDDP. */
#include "kernels-neon-impl.h"

void gm_kernels_install_neon_dotprod(gm_kernels *k) { neon_install(k); }
