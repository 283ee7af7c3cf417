/* NEON kernels for aarch64 CPUs without SDOT (Cortex-A53/A72 ...): the bodies are in
 * kernels-neon-impl.h, compiled here for baseline ARMv8-A. */
#include "kernels-neon-impl.h"

void gm_kernels_install_neon(gm_kernels *k, bool dotprod, bool i8mm)
{
    if (dotprod || i8mm)
        gm_kernels_install_neon_dotprod(k);
    else
        neon_install(k);
}
