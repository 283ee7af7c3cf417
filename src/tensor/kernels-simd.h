/* Block layout helpers for the SIMD kernel files (kernels-avx2.c, kernels-avx512.c,
 * kernels-neon-impl.h): every size and offset comes from the block structs of quants.h, so a
 * layout is written once. Plain C, all static inline: each ISA file compiles its own copy
 * with its own flags.
 */
#ifndef GM_KERNELS_SIMD_H
#define GM_KERNELS_SIMD_H

#include "quants.h"
#include "util/util.h"

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#define AI static inline __attribute__((always_inline))

/* ---- Q4_0 / Q5_0 / Q8_0 x Q8_0, Q4_1 / Q5_1 x Q8_1 ---------------------------------- */

enum { F_Q4_0, F_Q5_0, F_Q8_0, F_Q4_1, F_Q5_1 };

/* The kernels read d at the start of every block, and m, qh, s where Q4_1 has them. */
_Static_assert(offsetof(block_q4_0, d) == 0 && offsetof(block_q4_1, d) == 0 && offsetof(block_q5_0, d) == 0 &&
                   offsetof(block_q5_1, d) == 0 && offsetof(block_q8_0, d) == 0 && offsetof(block_q8_1, d) == 0,
               "d first");
_Static_assert(offsetof(block_q4_1, m) == offsetof(block_q5_1, m), "m");
_Static_assert(offsetof(block_q8_1, s) == offsetof(block_q4_1, m), "s");

AI size_t fam_bsize(int t)
{
    return t == F_Q4_0 ? sizeof(block_q4_0)
         : t == F_Q5_0 ? sizeof(block_q5_0)
         : t == F_Q4_1 ? sizeof(block_q4_1)
         : t == F_Q5_1 ? sizeof(block_q5_1)
                       : sizeof(block_q8_0);
}
/* Q4_1/Q5_1 quants are unsigned; they add m * s per block (s = d * sum(q) of the Q8_1
 * activation block) instead of an offset. */
AI bool fam_min(int t) { return t == F_Q4_1 || t == F_Q5_1; }
/* Offset of the quants: 16 nibble bytes, or Q8_0's 32 bytes. */
AI size_t fam_qs(int t)
{
    return t == F_Q4_0 ? offsetof(block_q4_0, qs)
         : t == F_Q5_0 ? offsetof(block_q5_0, qs)
         : t == F_Q4_1 ? offsetof(block_q4_1, qs)
         : t == F_Q5_1 ? offsetof(block_q5_1, qs)
                       : offsetof(block_q8_0, qs);
}
/* Offset of Q5_0/Q5_1's 32 fifth bits (a little-endian u32). */
AI size_t fam_qh(int t) { return t == F_Q5_0 ? offsetof(block_q5_0, qh) : offsetof(block_q5_1, qh); }
/* Offset of m (Q4_1/Q5_1). */
#define FAM_M offsetof(block_q4_1, m)
/* The bias of the stored quants (value = q - offset); Q8_0's 128 makes them unsigned. */
AI int fam_offset(int t) { return t == F_Q4_0 ? 8 : t == F_Q5_0 ? 16 : t == F_Q8_0 ? 128 : 0; }
/* Activation block: Q8_0 (d, qs) or Q8_1 (d, s, qs). */
AI size_t fam_asize(int t) { return fam_min(t) ? sizeof(block_q8_1) : sizeof(block_q8_0); }
AI size_t fam_aqs(int t) { return fam_min(t) ? offsetof(block_q8_1, qs) : offsetof(block_q8_0, qs); }
/* Offset of s (Q8_1). */
#define FAM_AS offsetof(block_q8_1, s)

/* ---- K-quants x Q8_K ----------------------------------------------------------------- */

enum { F_Q4_K, F_Q6_K, F_Q2_K, F_Q3_K, F_Q5_K };

/* Q4_K and Q5_K share their head: d, dmin, the 12-byte scale field. */
_Static_assert(offsetof(block_q4_K, d) == 0 && offsetof(block_q5_K, d) == 0 &&
                   offsetof(block_q4_K, dmin) == offsetof(block_q5_K, dmin) &&
                   offsetof(block_q4_K, scales) == offsetof(block_q5_K, scales),
               "K head");

AI size_t kq_bsize(int t)
{
    return t == F_Q2_K ? sizeof(block_q2_K)
         : t == F_Q3_K ? sizeof(block_q3_K)
         : t == F_Q4_K ? sizeof(block_q4_K)
         : t == F_Q5_K ? sizeof(block_q5_K)
                       : sizeof(block_q6_K);
}
/* Types with a min term (dmin * mins x bsums); Q3_K and Q6_K have signed quants instead. */
AI bool kq_min(int t) { return t == F_Q2_K || t == F_Q4_K || t == F_Q5_K; }

/* Q4_K/Q5_K 12-byte field -> eight 6-bit scales and mins (the reference's scale_min_k4),
 * four at a time. */
AI void q4k_scales(const uint8_t *s, uint8_t sc[8], uint8_t mn[8])
{
    const uint32_t u0 = gm_rd_u32(s), u1 = gm_rd_u32(s + 4), u2 = gm_rd_u32(s + 8);
    const uint32_t a = u0 & 0x3f3f3f3f, b = u1 & 0x3f3f3f3f;
    const uint32_t c = (u2 & 0x0f0f0f0f) | ((u0 >> 2) & 0x30303030);
    const uint32_t d = ((u2 >> 4) & 0x0f0f0f0f) | ((u1 >> 2) & 0x30303030);
    memcpy(sc, &a, 4);
    memcpy(sc + 4, &c, 4);
    memcpy(mn, &b, 4);
    memcpy(mn + 4, &d, 4);
}

/* Activation super-block fields, read without assuming the struct's alignment. */
AI float q8k_d(const uint8_t *a) { return gm_rd_f32(a + offsetof(block_q8_K, d)); }
AI const int8_t *q8k_qs(const uint8_t *a) { return (const int8_t *)a + offsetof(block_q8_K, qs); }
AI const int16_t *q8k_bsums(const uint8_t *a) { return (const int16_t *)(const void *)(a + offsetof(block_q8_K, bsums)); }

/* ---- activation scales (finite blocks; non-finite ones: gm_act_block_nan) ----------- */

/* Q8_0/Q8_1: 127/amax, or 0 when that overflows (amax 0 or tiny): the block is all zero. */
AI float q8_inv_scale(float amax)
{
    const float id = 127.f / amax;
    return __builtin_isfinite(id) ? id : 0.f;
}

/* Q8_K as quantize_row_q8_K_ref: -127 over the first element of largest magnitude amax
 * (signed), or 0 when that overflows (amax 0 or tiny): the block is all zero. */
AI float q8k_iscale(const float *xb, float amax)
{
    float max = 0.f;
    for (int j = 0; j < QK_K; j++)
        if (__builtin_fabsf(xb[j]) == amax) {
            max = xb[j];
            break;
        }
    const float iscale = -127.f / max;
    return __builtin_isfinite(iscale) ? iscale : 0.f;
}

/* ---- float rows ---------------------------------------------------------------------- */

AI float sc_f32(const void *p, int64_t i) { return ((const float *)p)[i]; }
AI float sc_bf16(const void *p, int64_t i) { return gm_bf16_to_f32(((const uint16_t *)p)[i]); }

#endif
