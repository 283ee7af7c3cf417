/* Shared bodies of the x86 kernel files (kernels-avx2.c, kernels-avx512.c): F16C half
 * floats, Q3_K scales, the float dot template, the tile drivers and the table setter.
 * Not a normal header: every definition is static, and each includer compiles its own copy
 * with its ISA's flags. An includer defines its float vector before FLOAT_DOT is used:
 * VF (type), VF_N (lanes), vf_zero, vf_fma, vf_add, and hsum(VF).
 */
#ifndef GM_KERNELS_X86_H
#define GM_KERNELS_X86_H

#include "kernels.h"

#include "kernels-simd.h"

#include <immintrin.h>

AI float h2f(uint16_t h) { return _cvtsh_ss(h); }
AI float sc_f16(const void *p, int64_t i) { return h2f(((const uint16_t *)p)[i]); }

/* Q3_K's sixteen signed 6-bit scales: low nibbles from bytes 0-7, the top two bits from
 * bytes 8-11 (see unpack_q3_K in quants-ref.c), four at a time. */
AI __m128i q3k_scales(const uint8_t *s)
{
    const uint32_t a0 = gm_rd_u32(s), a1 = gm_rd_u32(s + 4), hi = gm_rd_u32(s + 8);
    const uint32_t m4 = 0x0f0f0f0f, m2 = 0x03030303;
    __m128i v = _mm_setr_epi32((int)((a0 & m4) | ((hi & m2) << 4)), (int)((a1 & m4) | (((hi >> 2) & m2) << 4)),
                               (int)(((a0 >> 4) & m4) | (((hi >> 4) & m2) << 4)),
                               (int)(((a1 >> 4) & m4) | (((hi >> 6) & m2) << 4)));
    return _mm_sub_epi8(v, _mm_set1_epi8(32));
}

/* Float rows (LD loads VF_N elements at i, SC one): four accumulators, then one, then the
 * scalar tail. */
#define FLOAT_DOT(NAME, LD, SC)                                                           \
    static void NAME(int64_t n, float *s, const void *w, const void *a)                   \
    {                                                                                     \
        VF s0 = vf_zero(), s1 = s0, s2 = s0, s3 = s0;                                     \
        int64_t i = 0;                                                                    \
        for (; i + 4 * VF_N <= n; i += 4 * VF_N) {                                        \
            s0 = vf_fma(LD(w, i), LD(a, i), s0);                                          \
            s1 = vf_fma(LD(w, i + VF_N), LD(a, i + VF_N), s1);                            \
            s2 = vf_fma(LD(w, i + 2 * VF_N), LD(a, i + 2 * VF_N), s2);                    \
            s3 = vf_fma(LD(w, i + 3 * VF_N), LD(a, i + 3 * VF_N), s3);                    \
        }                                                                                 \
        for (; i + VF_N <= n; i += VF_N)                                                  \
            s0 = vf_fma(LD(w, i), LD(a, i), s0);                                          \
        float r = hsum(vf_add(vf_add(s0, s1), vf_add(s2, s3)));                           \
        for (; i < n; i++)                                                                \
            r += SC(w, i) * SC(a, i);                                                     \
        *s = r;                                                                           \
    }

/* Quantized mat-mul entry points of one weight type over its tile kernel
 * TILE(T, VNNI, R, C, nb, w, ldw, a, lda, y, ldy): y[c*ldy + r] for R x C tiles, R up to
 * RMAX rows (remainder rows one at a time) and C up to 4 columns. */
#define GEMM_DRIVER(NAME, TILE, T, VNNI, QK_, RMAX)                                       \
    static void NAME##_t(int64_t nb, const uint8_t *w, size_t ldw, const uint8_t *a,      \
                         size_t lda, float *y, size_t ldy, int R, int C)                  \
    {                                                                                     \
        switch (R * 8 + C) {                                                              \
        case RMAX * 8 + 4: TILE(T, VNNI, RMAX, 4, nb, w, ldw, a, lda, y, ldy); break;     \
        case RMAX * 8 + 3: TILE(T, VNNI, RMAX, 3, nb, w, ldw, a, lda, y, ldy); break;     \
        case RMAX * 8 + 2: TILE(T, VNNI, RMAX, 2, nb, w, ldw, a, lda, y, ldy); break;     \
        case RMAX * 8 + 1: TILE(T, VNNI, RMAX, 1, nb, w, ldw, a, lda, y, ldy); break;     \
        case 1 * 8 + 4: TILE(T, VNNI, 1, 4, nb, w, ldw, a, lda, y, ldy); break;           \
        case 1 * 8 + 3: TILE(T, VNNI, 1, 3, nb, w, ldw, a, lda, y, ldy); break;           \
        case 1 * 8 + 2: TILE(T, VNNI, 1, 2, nb, w, ldw, a, lda, y, ldy); break;           \
        default: TILE(T, VNNI, 1, 1, nb, w, ldw, a, lda, y, ldy); break;                  \
        }                                                                                 \
    }                                                                                     \
    static void NAME##_gemm(int64_t n, const void *w, size_t ldw, const void *a,          \
                            size_t lda, float *y, size_t ldy, int nr, int nc)             \
    {                                                                                     \
        const uint8_t *W = w, *A = a;                                                     \
        for (int r = 0; r < nr;) {                                                        \
            const int R = nr - r >= (RMAX) ? (RMAX) : 1;                                  \
            for (int c = 0; c < nc; c += 4)                                               \
                NAME##_t(n / (QK_), W + (size_t)r * ldw, ldw, A + (size_t)c * lda, lda,   \
                         y + (size_t)c * ldy + (size_t)r, ldy, R, nc - c >= 4 ? 4 : nc - c); \
            r += R;                                                                       \
        }                                                                                 \
    }                                                                                     \
    static void NAME##_dot(int64_t n, float *s, const void *w, const void *a)             \
    {                                                                                     \
        NAME##_t(n / (QK_), w, 0, a, 0, s, 0, 1, 1);                                      \
    }

/* One weight type's table entries: quantizer Q and the NAME##_dot / NAME##_gemm pair. */
#define SET(k, T, Q, NAME)                                                                \
    do {                                                                                  \
        (k)->type[GM_TYPE_##T].quantize = Q;                                              \
        (k)->type[GM_TYPE_##T].vec_dot = NAME##_dot;                                      \
        (k)->type[GM_TYPE_##T].gemm = NAME##_gemm;                                        \
    } while (0)

#endif
