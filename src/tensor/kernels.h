/* Per-ISA kernel tables, chosen at run time.
 *
 * Every weight type has a scalar reference (quants-ref.c); an ISA file (kernels-avx2.c,
 * kernels-avx512.c, kernels-neon.c) overrides the entries it accelerates. The
 * drivers in compute.c are shared: ISA variants differ only in these inner kernels.
 */
#ifndef GM_KERNELS_H
#define GM_KERNELS_H

#include "types.h"

#include <stddef.h>
#include <stdint.h>

typedef enum gm_isa {
    GM_ISA_SCALAR = 0,
    GM_ISA_AVX2,        /* AVX2 + FMA + F16C */
    GM_ISA_AVX512,      /* F, BW, DQ, VL */
    GM_ISA_AVX512_VNNI, /* plus VNNI */
    GM_ISA_NEON,
    GM_ISA_NEON_DOTPROD,
    GM_ISA_NEON_I8MM,
    GM_ISA_COUNT
} gm_isa;

const char *gm_isa_name(gm_isa isa);
/* Parses "scalar", "avx2", "avx512", "avx512-vnni", ...; GM_ISA_COUNT if unknown. */
gm_isa gm_isa_from_name(const char *name);
/* Best ISA this CPU and OS support (x86: CPUID plus XGETBV for the saved register state;
 * aarch64 Linux: the kernel's AT_HWCAP/AT_HWCAP2 bits). */
gm_isa gm_isa_detect(void);
/* True when isa can run here (used by tests to cover every ISA the machine has). */
bool gm_isa_supported(gm_isa isa);

/* Kernels for one weight type. */
typedef struct gm_type_kernels {
    /* Quantizes n activation floats into this weight type's vec_dot_type. */
    void (*quantize)(const float *x, void *y, int64_t n);
    /* s = dot(weight row w, quantized activation a), n elements. */
    void (*vec_dot)(int64_t n, float *s, const void *w, const void *a);
    /* Optional tile kernel: for r in [0,nr), c in [0,nc):
     *   y[c*ldy + r] = dot(row r of w (stride ldw bytes), column c of a (stride lda bytes)).
     * NULL means the driver loops over vec_dot. */
    void (*gemm)(int64_t n, const void *w, size_t ldw, const void *a, size_t lda, float *y,
                 size_t ldy, int nr, int nc);
} gm_type_kernels;

/* Element-wise operations of the forward pass (src/model/ops.c). NULL entries mean the
 * portable C in ops.c, which is also the test oracle for every ISA version. */
typedef struct gm_op_kernels {
    /* Sum of the float squares x[i]*x[i], accumulated in double (RMS norm). */
    double (*sum_sq)(const float *x, int64_t n);
    /* y[i] = (x[i] * scale) * w[i], or x[i] * scale when w is NULL; y may alias x. */
    void (*scale_mul)(float *y, const float *x, float scale, const float *w, int64_t n);
    /* y[i] = gelu(gate[i]) * up[i], gelu from the 65536-entry F16 table as gm_geglu. */
    void (*geglu)(float *y, const float *gate, const float *up, int64_t n, const uint16_t *tab);
    /* x[i] = F32(F16(x[i])), round to nearest even (values enter an F16 product). */
    void (*round_f16)(float *x, int64_t n);
    /* Attention tiles: y[c*ldy + r] = dot(F16 row r of w, F32 row c of a), n elements,
     * row strides in elements, F32 accumulation. */
    void (*gemm_f16_f32)(int64_t n, const uint16_t *w, size_t ldw, const float *a, size_t lda, float *y,
                         size_t ldy, int nr, int nc);
} gm_op_kernels;

typedef struct gm_kernels {
    gm_isa isa;
    gm_type_kernels type[GM_TYPE_COUNT];
    gm_op_kernels op;
} gm_kernels;

/* Fills k for isa (which must be supported): scalar entries first, then the ISA's. */
void gm_kernels_init(gm_kernels *k, gm_isa isa);

/* Per-ISA installers, each in its own file compiled with that ISA's flags. */
void gm_kernels_install_avx2(gm_kernels *k);
void gm_kernels_install_avx512(gm_kernels *k, bool vnni);
/* aarch64 only. kernels-neon.c (baseline ARMv8-A) installs the plain NEON set, or with
 * dotprod/i8mm hands over to gm_kernels_install_neon_dotprod (kernels-neon-dotprod.c, built
 * with +dotprod). i8mm has no kernels of its own yet and gets the dotprod set. */
void gm_kernels_install_neon(gm_kernels *k, bool dotprod, bool i8mm);
void gm_kernels_install_neon_dotprod(gm_kernels *k);

#endif
