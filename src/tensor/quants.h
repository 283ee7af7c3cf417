/* Quantized block layouts (byte-exact with ggml) and the scalar reference kernels.
 *
 * The *_ref functions are written for clarity, in the operation order of
 * ggml-quants.c, and are the oracle every SIMD kernel is tested against.
 * See docs: gemma-spec.md sections 2.3-2.5. All d/dmin/m fields are IEEE F16 bits.
 */
#ifndef GM_QUANTS_H
#define GM_QUANTS_H

#include "types.h"

#include <stddef.h>
#include <stdint.h>

#define QK 32   /* elements per block of the 32-wide formats */
#define QK_K 256 /* elements per super-block of the K-quants */

typedef struct { uint16_t d; uint8_t qs[QK / 2]; } block_q4_0;                      /* 18 B */
typedef struct { uint16_t d, m; uint8_t qs[QK / 2]; } block_q4_1;                   /* 20 B */
typedef struct { uint16_t d; uint8_t qh[4]; uint8_t qs[QK / 2]; } block_q5_0;       /* 22 B */
typedef struct { uint16_t d, m; uint8_t qh[4]; uint8_t qs[QK / 2]; } block_q5_1;    /* 24 B */
typedef struct { uint16_t d; int8_t qs[QK]; } block_q8_0;                           /* 34 B */
typedef struct { uint16_t d, s; int8_t qs[QK]; } block_q8_1;                        /* 36 B */
typedef struct { uint8_t scales[QK_K / 16]; uint8_t qs[QK_K / 4]; uint16_t d, dmin; } block_q2_K; /* 84 B */
typedef struct { uint8_t hmask[QK_K / 8]; uint8_t qs[QK_K / 4]; uint8_t scales[12]; uint16_t d; } block_q3_K; /* 110 B */
typedef struct { uint16_t d, dmin; uint8_t scales[12]; uint8_t qs[QK_K / 2]; } block_q4_K; /* 144 B */
typedef struct { uint16_t d, dmin; uint8_t scales[12]; uint8_t qh[QK_K / 8]; uint8_t qs[QK_K / 2]; } block_q5_K; /* 176 B */
typedef struct { uint8_t ql[QK_K / 2]; uint8_t qh[QK_K / 4]; int8_t scales[QK_K / 16]; uint16_t d; } block_q6_K; /* 210 B */
typedef struct { float d; int8_t qs[QK_K]; int16_t bsums[QK_K / 16]; } block_q8_K; /* 292 B */

_Static_assert(sizeof(block_q4_0) == 18, "q4_0");
_Static_assert(sizeof(block_q4_1) == 20, "q4_1");
_Static_assert(sizeof(block_q5_0) == 22, "q5_0");
_Static_assert(sizeof(block_q5_1) == 24, "q5_1");
_Static_assert(sizeof(block_q8_0) == 34, "q8_0");
_Static_assert(sizeof(block_q8_1) == 36, "q8_1");
_Static_assert(sizeof(block_q2_K) == 84, "q2_K");
_Static_assert(sizeof(block_q3_K) == 110, "q3_K");
_Static_assert(sizeof(block_q4_K) == 144, "q4_K");
_Static_assert(sizeof(block_q5_K) == 176, "q5_K");
_Static_assert(sizeof(block_q6_K) == 210, "q6_K");
_Static_assert(sizeof(block_q8_K) == 292, "q8_K");

/* Non-finite activations, the same class on every ISA (docs/robustness.md): a block with a
 * NaN or infinite element quantizes to zero quants and a NaN scale (and s), so every dot
 * product with it is NaN; a block whose inverse scale 127/amax overflows (amax 0 or below
 * ~7.5e-37) quantizes to all zero. gm_act_block_nan writes the first kind. */
void gm_act_block_nan(gm_type act_type, void *y);

/* Dequantizes n elements (a multiple of the type's block size) of any weight type,
 * including F32/F16/BF16 and the activation types Q8_0/Q8_1/Q8_K. */
void gm_dequant_row_ref(gm_type type, const void *src, float *dst, int64_t n);

/* Activation quantizers (n a multiple of the block size). Q8_0 follows ggml's x86
 * rounding (round half to even, id = 127/amax); Q8_1 stores s = d * sum(q); Q8_K as
 * quantize_row_q8_K_ref. F16/BF16 "quantize" to half floats for F16/BF16 weights. */
void gm_quantize_row_ref(gm_type act_type, const float *src, void *dst, int64_t n);

/* Dot product of one weight row of type wtype (n elements) with an activation row already
 * quantized to gm_type_get(wtype)->vec_dot_type. */
float gm_vec_dot_ref(gm_type wtype, int64_t n, const void *w, const void *a);

/* Byte offsets of the F16 scale fields (d, then dmin or m) in one block of weight type
 * wtype; returns how many (0 for float and unknown types). */
int gm_block_scale_fields(gm_type wtype, size_t off[2]);

/* The two functions above with the type bound, in the kernel table's signatures (kernels.h):
 * the quantizer for activation type act_type and the dot for weight type wtype, or NULL for
 * types without one. The scalar kernel set is built from these over the type table. */
typedef void (*gm_quantize_fn)(const float *x, void *y, int64_t n);
typedef void (*gm_vec_dot_fn)(int64_t n, float *s, const void *w, const void *a);
gm_quantize_fn gm_quantize_ref_fn(gm_type act_type);
gm_vec_dot_fn gm_vec_dot_ref_fn(gm_type wtype);

#endif
