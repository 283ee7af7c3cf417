/* AVX-512 (F/BW/DQ/VL, optionally VNNI) kernels. Compiled with AVX-512 flags; only called
 * after gm_isa_supported() said so. One template per weight family, instantiated with and
 * without VNNI: with VNNI the u8 x s8 dot is one vpdpbusd; without it, vpmaddubsw+vpmaddwd.
 *
 * Register tiles: up to 4 weight rows x 4 activation columns. The Q8_0-activation family
 * (Q4_0, Q5_0, Q8_0) works on two 32-element blocks per 512-bit register and makes the
 * weights unsigned (q + offset), correcting with -offset * sum(activation) computed once
 * per column and used as the dpbusd accumulator seed. The K-quants take 16-bit products
 * (vpmaddubsw) and multiply them by the sub-block scales with vpdpwssd.
 */
#include "kernels.h"

#include "quants.h"

#include <immintrin.h>
#include <string.h>

#define AI static inline __attribute__((always_inline))
/* Matvecs stream 4 rows at a time; software prefetch runs this many 4-row tiles ahead
 * (measured: 4 streams the decode mat-vecs at up to ~7% more bandwidth than 1). */
#define PF_TILES 4

AI uint16_t rd16(const void *p) { uint16_t v; memcpy(&v, p, 2); return v; }
AI uint32_t rd32(const void *p) { uint32_t v; memcpy(&v, p, 4); return v; }
AI float h2f(uint16_t h) { return _cvtsh_ss(h); }

/* u8 x s8 -> s32 lanes (sums of 4 products) added to acc. Without VNNI the 16-bit pair sums
 * must not saturate: callers keep u * |s| * 2 <= 32767. */
AI __m512i dot_us(bool vnni, __m512i acc, __m512i u, __m512i s)
{
    if (vnni)
        return _mm512_dpbusd_epi32(acc, u, s);
    __m512i p = _mm512_maddubs_epi16(u, s);
    return _mm512_add_epi32(acc, _mm512_madd_epi16(p, _mm512_set1_epi16(1)));
}

/* s16 x s16 pair sums added to acc. */
AI __m512i dot_ww(bool vnni, __m512i acc, __m512i a, __m512i b)
{
    if (vnni)
        return _mm512_dpwssd_epi32(acc, a, b);
    return _mm512_add_epi32(acc, _mm512_madd_epi16(a, b));
}

AI float hsum(__m512 v) { return _mm512_reduce_add_ps(v); }

/* ---- activation quantizers ----------------------------------------------------------- */

/* Q8_0 as ggml's x86 path: d = amax/127 (stored F16), id = 127/amax, round half to even. */
static void quant_q8_0(const float *x, void *vy, int64_t n)
{
    block_q8_0 *y = vy;
    const __m512 sign = _mm512_set1_ps(-0.0f);
    for (int64_t i = 0; i < n / QK; i++) {
        __m512 v0 = _mm512_loadu_ps(x + i * QK), v1 = _mm512_loadu_ps(x + i * QK + 16);
        __m512 m = _mm512_max_ps(_mm512_andnot_ps(sign, v0), _mm512_andnot_ps(sign, v1));
        float amax = _mm512_reduce_max_ps(m);
        float d = amax / 127.f, id = amax != 0.f ? 127.f / amax : 0.f;
        uint16_t dh = (uint16_t)_cvtss_sh(d, 0);
        memcpy(&y[i].d, &dh, 2);
        __m512 vid = _mm512_set1_ps(id);
        __m512i q0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, vid));
        __m512i q1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, vid));
        _mm_storeu_si128((__m128i *)y[i].qs, _mm512_cvtsepi32_epi8(q0));
        _mm_storeu_si128((__m128i *)(y[i].qs + 16), _mm512_cvtsepi32_epi8(q1));
    }
}

/* Q8_K as quantize_row_q8_K_ref: the scale comes from the first element of largest
 * magnitude, with its sign; q = min(127, round_even(-127/max * x)). */
static void quant_q8_k(const float *x, void *vy, int64_t n)
{
    block_q8_K *y = vy;
    const __m512 sign = _mm512_set1_ps(-0.0f);
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float *xb = x + i * QK_K;
        __m512 m = _mm512_setzero_ps();
        for (int j = 0; j < QK_K; j += 16)
            m = _mm512_max_ps(m, _mm512_andnot_ps(sign, _mm512_loadu_ps(xb + j)));
        float amax = _mm512_reduce_max_ps(m);
        if (!(amax > 0.f)) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        float max = 0.f;
        for (int j = 0; j < QK_K; j++)
            if (__builtin_fabsf(xb[j]) == amax) {
                max = xb[j];
                break;
            }
        float iscale = -127.f / max;
        __m512 vs = _mm512_set1_ps(iscale);
        const __m512i lim = _mm512_set1_epi32(127);
        for (int j = 0; j < QK_K; j += 16) {
            __m512i q = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(xb + j), vs));
            q = _mm512_min_epi32(q, lim);
            _mm_storeu_si128((__m128i *)(y[i].qs + j), _mm512_cvtsepi32_epi8(q));
            y[i].bsums[j / 16] = (int16_t)_mm512_reduce_add_epi32(q);
        }
        y[i].d = 1.f / iscale;
    }
}

static void quant_f16(const float *x, void *vy, int64_t n)
{
    uint16_t *y = vy;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256((__m256i *)(y + i),
                            _mm512_cvtps_ph(_mm512_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++)
        y[i] = (uint16_t)_cvtss_sh(x[i], 0);
}

/* ---- float dots ---------------------------------------------------------------------- */

AI __m512 ld_f32(const void *p, int64_t i) { return _mm512_loadu_ps((const float *)p + i); }
AI __m512 ld_f16(const void *p, int64_t i)
{
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)((const uint16_t *)p + i)));
}
AI __m512 ld_bf16(const void *p, int64_t i)
{
    __m256i h = _mm256_loadu_si256((const __m256i *)((const uint16_t *)p + i));
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}
AI float sc_f32(const void *p, int64_t i) { return ((const float *)p)[i]; }
AI float sc_f16(const void *p, int64_t i) { return h2f(((const uint16_t *)p)[i]); }
AI float sc_bf16(const void *p, int64_t i)
{
    uint32_t u = (uint32_t)((const uint16_t *)p)[i] << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

#define FLOAT_DOT(NAME, LD, SC)                                                           \
    static void NAME(int64_t n, float *s, const void *w, const void *a)                   \
    {                                                                                     \
        __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;                       \
        int64_t i = 0;                                                                    \
        for (; i + 64 <= n; i += 64) {                                                    \
            s0 = _mm512_fmadd_ps(LD(w, i), LD(a, i), s0);                                 \
            s1 = _mm512_fmadd_ps(LD(w, i + 16), LD(a, i + 16), s1);                       \
            s2 = _mm512_fmadd_ps(LD(w, i + 32), LD(a, i + 32), s2);                       \
            s3 = _mm512_fmadd_ps(LD(w, i + 48), LD(a, i + 48), s3);                       \
        }                                                                                 \
        for (; i + 16 <= n; i += 16)                                                      \
            s0 = _mm512_fmadd_ps(LD(w, i), LD(a, i), s0);                                 \
        float r = hsum(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));      \
        for (; i < n; i++)                                                                \
            r += SC(w, i) * SC(a, i);                                                     \
        *s = r;                                                                           \
    }

FLOAT_DOT(dot_f32, ld_f32, sc_f32)
FLOAT_DOT(dot_f16, ld_f16, sc_f16)
FLOAT_DOT(dot_bf16, ld_bf16, sc_bf16)

/* F16 x F16 tiles for attention (keys x queries, V rows x probabilities): R rows of w
 * against C rows of a, 16 elements a step, the tail through masked (zero-filled) loads. */
AI __m512 ld_f16_mask(const uint8_t *p, int64_t i, __mmask16 m)
{
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, (const uint16_t *)p + i));
}

AI void f16_tile(const int R, const int C, int64_t n, const uint8_t *w, size_t ldw, const uint8_t *a,
                 size_t lda, float *y, size_t ldy)
{
    __m512 acc[4][4], wv[4];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int c = 0; c < C; c++)
            acc[r][c] = _mm512_setzero_ps();
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
#pragma GCC unroll 4
        for (int r = 0; r < R; r++)
            wv[r] = ld_f16_mask(w + (size_t)r * ldw, i, m);
#pragma GCC unroll 4
        for (int c = 0; c < C; c++) {
            const __m512 av = ld_f16_mask(a + (size_t)c * lda, i, m);
#pragma GCC unroll 4
            for (int r = 0; r < R; r++)
                acc[r][c] = _mm512_fmadd_ps(wv[r], av, acc[r][c]);
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int c = 0; c < C; c++)
            y[(size_t)c * ldy + (size_t)r] = hsum(acc[r][c]);
}

static void f16_gemm(int64_t n, const void *w, size_t ldw, const void *a, size_t lda, float *y,
                     size_t ldy, int nr, int nc)
{
    const uint8_t *W = w, *A = a;
    for (int r = 0; r < nr;) {
        const int R = nr - r >= 4 ? 4 : 1;
        for (int c = 0; c < nc; c += 4) {
            const uint8_t *wr = W + (size_t)r * ldw, *ac = A + (size_t)c * lda;
            float *yc = y + (size_t)c * ldy + (size_t)r;
            switch ((R == 4 ? 4 : 0) + (nc - c >= 4 ? 4 : nc - c)) {
            case 8: f16_tile(4, 4, n, wr, ldw, ac, lda, yc, ldy); break;
            case 7: f16_tile(4, 3, n, wr, ldw, ac, lda, yc, ldy); break;
            case 6: f16_tile(4, 2, n, wr, ldw, ac, lda, yc, ldy); break;
            case 5: f16_tile(4, 1, n, wr, ldw, ac, lda, yc, ldy); break;
            case 4: f16_tile(1, 4, n, wr, ldw, ac, lda, yc, ldy); break;
            case 3: f16_tile(1, 3, n, wr, ldw, ac, lda, yc, ldy); break;
            case 2: f16_tile(1, 2, n, wr, ldw, ac, lda, yc, ldy); break;
            default: f16_tile(1, 1, n, wr, ldw, ac, lda, yc, ldy); break;
            }
        }
        r += R;
    }
}


/* ---- Q4_0 / Q5_0 / Q8_0 x Q8_0 ------------------------------------------------------- */

enum { F_Q4_0, F_Q5_0, F_Q8_0 };

AI size_t fam_bsize(int t) { return t == F_Q4_0 ? 18 : t == F_Q5_0 ? 22 : 34; }
AI int fam_offset(int t) { return t == F_Q4_0 ? 8 : t == F_Q5_0 ? 16 : 128; }

/* Two 32-byte quant runs, 34 bytes apart (two Q8_0 blocks); the second is zero if !two. */
AI __m512i ld_pair32(const uint8_t *p, bool two)
{
    __m512i lo = _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)p));
    if (!two)
        return _mm512_zextsi256_si512(_mm512_castsi512_si256(lo));
    return _mm512_inserti64x4(lo, _mm256_loadu_si256((const __m256i *)(p + 34)), 1);
}

/* Weight blocks b, b+1 of a row as unsigned bytes (q + offset), elements in order. */
AI __m512i fam_weights(int t, const uint8_t *blk, bool two)
{
    const size_t bs = fam_bsize(t);
    if (t == F_Q8_0)
        return _mm512_xor_si512(ld_pair32(blk + 2, two), _mm512_set1_epi8((char)0x80));
    const uint8_t *qs0 = blk + bs - 16;
    __m128i x0 = _mm_loadu_si128((const __m128i *)qs0);
    __m128i x1 = two ? _mm_loadu_si128((const __m128i *)(qs0 + bs)) : _mm_setzero_si128();
    __m512i z = _mm512_castsi256_si512(_mm256_set_m128i(x1, x0));
    z = _mm512_shuffle_i64x2(z, z, _MM_SHUFFLE(1, 1, 0, 0)); /* x0 x0 x1 x1 */
    z = _mm512_mask_blend_epi64(0xCC, z, _mm512_srli_epi16(z, 4));
    z = _mm512_and_si512(z, _mm512_set1_epi8(0x0F));
    if (t == F_Q5_0) {
        uint64_t h = rd32(blk + 2);
        if (two)
            h |= (uint64_t)rd32(blk + bs + 2) << 32;
        z = _mm512_mask_add_epi8(z, (__mmask64)h, z, _mm512_set1_epi8(16));
    }
    return z;
}

AI __m512 scale_pair(const uint8_t *blk, size_t bs, bool two)
{
    __m128i d0 = _mm_set1_epi16((short)rd16(blk));
    __m128i d1 = two ? _mm_set1_epi16((short)rd16(blk + bs)) : _mm_setzero_si128();
    return _mm512_cvtph_ps(_mm256_set_m128i(d1, d0));
}

/* A weight block pair decoded ahead of time (see fam_gemm_hoisted). */
typedef struct fam_dec {
    __m512i u;
    __m512 dw;
} fam_dec;

/* Blocks b (and b+1 when two) of an R x C tile, accumulated into acc. With pre, the weights
 * come decoded from dec (row r, pair p at dec[r * np + p]) instead of from w. */
AI void fam_step(int t, bool vnni, const int R, const int C, int64_t b, const bool two,
                 const uint8_t *w, size_t ldw, const uint8_t *a, size_t lda, __m512 acc[4][4],
                 const bool pre, const fam_dec *dec, int64_t np)
{
    const size_t bs = fam_bsize(t);
    const bool sign_trick = t == F_Q8_0 && !vnni; /* maddubs would saturate on q + 128 */
    __m512i u[4];
    __m512 dw[4];
    __mmask64 neg[4];
    if (pre) {
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            u[r] = dec[r * np + b / 2].u;
            dw[r] = dec[r * np + b / 2].dw;
            neg[r] = 0;
        }
    } else {
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            const uint8_t *blk = w + (size_t)r * ldw + (size_t)b * bs;
            /* Matvecs stream 4 rows at once; fetch rows PF_TILES tiles ahead early. */
            _mm_prefetch((const char *)blk + (size_t)R * ldw * PF_TILES, _MM_HINT_T0);
            _mm_prefetch((const char *)blk + (size_t)R * ldw * PF_TILES + 64, _MM_HINT_T0);
            if (sign_trick) {
                __m512i s = ld_pair32(blk + 2, two);
                neg[r] = _mm512_movepi8_mask(s);
                u[r] = _mm512_abs_epi8(s);
            } else {
                u[r] = fam_weights(t, blk, two);
                neg[r] = 0;
            }
            dw[r] = scale_pair(blk, bs, two);
        }
    }
#pragma GCC unroll 4
    for (int c = 0; c < C; c++) {
        const uint8_t *ab = a + (size_t)c * lda + (size_t)b * 34;
        __m512i av = ld_pair32(ab + 2, two);
        __m512 da = scale_pair(ab, 34, two);
        __m512i corr = _mm512_setzero_si512();
        if (!sign_trick)
            corr = _mm512_sub_epi32(corr, dot_us(vnni, corr, _mm512_set1_epi8((char)fam_offset(t)), av));
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            __m512i s = sign_trick ? _mm512_mask_sub_epi8(av, neg[r], _mm512_setzero_si512(), av) : av;
            __m512i d = dot_us(vnni, corr, u[r], s);
            acc[r][c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d), _mm512_mul_ps(dw[r], da), acc[r][c]);
        }
    }
}

/* One R x C tile over nb blocks; y[c*ldy + r]. */
AI void fam_tile_x(int t, bool vnni, const int R, const int C, int64_t nb, const uint8_t *w,
                   size_t ldw, const uint8_t *a, size_t lda, float *y, size_t ldy, const bool pre,
                   const fam_dec *dec)
{
    const int64_t np = (nb + 1) / 2;
    __m512 acc[4][4];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int c = 0; c < C; c++)
            acc[r][c] = _mm512_setzero_ps();
    int64_t b = 0;
    for (; b + 2 <= nb; b += 2)
        fam_step(t, vnni, R, C, b, true, w, ldw, a, lda, acc, pre, dec, np);
    if (b < nb)
        fam_step(t, vnni, R, C, b, false, w, ldw, a, lda, acc, pre, dec, np);
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int c = 0; c < C; c++)
            y[(size_t)c * ldy + (size_t)r] = hsum(acc[r][c]);
}

AI void fam_tile(int t, bool vnni, const int R, const int C, int64_t nb, const uint8_t *w,
                 size_t ldw, const uint8_t *a, size_t lda, float *y, size_t ldy)
{
    fam_tile_x(t, vnni, R, C, nb, w, ldw, a, lda, y, ldy, false, NULL);
}

/* Prompt batches: a 4-row tile meets every column tile, so decode its weights once into a
 * small buffer (rows up to 4096 elements: 32 KB) instead of once per column tile. */
#define FAM_HOIST_MAX_PAIRS 64

AI void fam_gemm_hoisted(int t, bool vnni, int64_t nb, const uint8_t *w, size_t ldw,
                         const uint8_t *a, size_t lda, float *y, size_t ldy, int nc)
{
    const size_t bs = fam_bsize(t);
    const int64_t np = (nb + 1) / 2;
    fam_dec dec[4 * FAM_HOIST_MAX_PAIRS];
    for (int r = 0; r < 4; r++)
        for (int64_t p = 0; p < np; p++) {
            const uint8_t *blk = w + (size_t)r * ldw + (size_t)(2 * p) * bs;
            bool two = 2 * p + 1 < nb;
            dec[r * np + p].u = two ? fam_weights(t, blk, true) : fam_weights(t, blk, false);
            dec[r * np + p].dw = scale_pair(blk, bs, two);
        }
    for (int c = 0; c < nc; c += 4) {
        const uint8_t *ac = a + (size_t)c * lda;
        float *yc = y + (size_t)c * ldy;
        switch (nc - c) {
        case 1: fam_tile_x(t, vnni, 4, 1, nb, w, ldw, ac, lda, yc, ldy, true, dec); break;
        case 2: fam_tile_x(t, vnni, 4, 2, nb, w, ldw, ac, lda, yc, ldy, true, dec); break;
        case 3: fam_tile_x(t, vnni, 4, 3, nb, w, ldw, ac, lda, yc, ldy, true, dec); break;
        default: fam_tile_x(t, vnni, 4, 4, nb, w, ldw, ac, lda, yc, ldy, true, dec); break;
        }
    }
}

/* ---- Q4_K / Q6_K x Q8_K -------------------------------------------------------------- */

enum { F_Q4_K, F_Q6_K };

/* Q8_K field offsets: f32 d, i8 qs[256], i16 bsums[16]. */
#define Q8K_QS 4
#define Q8K_BSUMS 260

/* Decoded super-block of one row: four 64-element chunks as unsigned bytes, the per-chunk
 * 16-bit scale vectors for vpdpwssd, and the per-sub-block factors for the bsums term. */
typedef struct kq_row {
    __m512i u[4], sc[4];
    __m256i m16;   /* Q4_K: mins, each twice; Q6_K: the 16 scales (for the -32 offset) */
    float d, dmin;
} kq_row;

/* Q4_K 6-bit scales and mins, decoded 4 at a time from the 12-byte field. */
AI void q4k_scales(const uint8_t *s, uint8_t sc[8], uint8_t mn[8])
{
    uint32_t u0 = rd32(s), u1 = rd32(s + 4), u2 = rd32(s + 8);
    uint32_t a = u0 & 0x3f3f3f3f, b = u1 & 0x3f3f3f3f;
    uint32_t c = (u2 & 0x0f0f0f0f) | ((u0 >> 2) & 0x30303030);
    uint32_t d = ((u2 >> 4) & 0x0f0f0f0f) | ((u1 >> 2) & 0x30303030);
    memcpy(sc, &a, 4);
    memcpy(sc + 4, &c, 4);
    memcpy(mn, &b, 4);
    memcpy(mn + 4, &d, 4);
}

/* 16-bit lane i of a 64-element chunk covers elements 2i, 2i+1: Q6_K scale i/8. */
static const int16_t q6_idx[32] = { 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                    2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3 };

AI void kq_decode(int t, const uint8_t *blk, kq_row *k)
{
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    if (t == F_Q4_K) {
        k->d = h2f(rd16(blk));
        k->dmin = h2f(rd16(blk + 2));
        uint8_t sc[8], mn[8];
        q4k_scales(blk + 4, sc, mn);
        __m512i s16 = _mm512_cvtepu8_epi16(_mm256_castsi128_si256(_mm_loadl_epi64((const __m128i *)sc)));
        __m128i m8 = _mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)mn));
        k->m16 = _mm256_set_m128i(_mm_unpackhi_epi16(m8, m8), _mm_unpacklo_epi16(m8, m8));
        const uint8_t *qs = blk + 16;
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++) {
            __m512i z = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(qs + 32 * j)));
            z = _mm512_mask_blend_epi64(0xF0, z, _mm512_srli_epi16(z, 4));
            k->u[j] = _mm512_and_si512(z, m4);
            /* 16-bit lanes 0-15 take scale 2j, lanes 16-31 scale 2j+1. */
            __m512i idx = _mm512_mask_blend_epi16(0xFFFF0000u, _mm512_set1_epi16((short)(2 * j)),
                                                  _mm512_set1_epi16((short)(2 * j + 1)));
            k->sc[j] = _mm512_permutexvar_epi16(idx, s16);
        }
    } else {
        const uint8_t *ql = blk, *qh = blk + 128;
        k->d = h2f(rd16(blk + 208));
        k->dmin = 0.f;
        __m128i s8 = _mm_loadu_si128((const __m128i *)(blk + 192));
        __m256i s16 = _mm256_cvtepi8_epi16(s8);
        k->m16 = s16;
        __m512i s16z = _mm512_castsi256_si512(s16);
        const __m512i m3 = _mm512_set1_epi8(3);
#pragma GCC unroll 2
        for (int n = 0; n < 2; n++) {
            __m512i l = _mm512_loadu_si512((const void *)(ql + 64 * n));
            __m512i hz = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(qh + 32 * n)));
            __m512i h0 = _mm512_mask_blend_epi64(0xF0, hz, _mm512_srli_epi16(hz, 2));
            __m512i h1 = _mm512_srli_epi16(h0, 4);
            h0 = _mm512_slli_epi16(_mm512_and_si512(h0, m3), 4);
            h1 = _mm512_slli_epi16(_mm512_and_si512(h1, m3), 4);
            k->u[2 * n] = _mm512_or_si512(_mm512_and_si512(l, m4), h0);
            k->u[2 * n + 1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l, 4), m4), h1);
        }
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++) {
            /* 16-bit lane i of chunk j covers elements 64j+2i, +1: scale 4j + i/8. */
            __m512i idx = _mm512_add_epi16(_mm512_set1_epi16((short)(4 * j)),
                                           _mm512_loadu_si512((const void *)q6_idx));
            k->sc[j] = _mm512_permutexvar_epi16(idx, s16z);
        }
    }
}

/* With pre, row r's super-block b comes decoded from dec[r * nb + b]. */
AI void kq_tile_x(int t, bool vnni, const int R, const int C, int64_t nb, const uint8_t *w,
                  size_t ldw, const uint8_t *a, size_t lda, float *y, size_t ldy, const bool pre,
                  const kq_row *dec)
{
    const size_t bs = t == F_Q4_K ? 144 : 210;
    __m512 acc[4][4];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int c = 0; c < C; c++)
            acc[r][c] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            kq_row k;
            if (pre) {
                k = dec[r * nb + b];
            } else {
                const uint8_t *blk = w + (size_t)r * ldw + (size_t)b * bs;
                for (size_t o = 0; o < bs; o += 64) /* next tile's rows, as in fam_step */
                    _mm_prefetch((const char *)blk + (size_t)R * ldw * PF_TILES + o, _MM_HINT_T0);
                kq_decode(t, blk, &k);
            }
#pragma GCC unroll 4
            for (int c = 0; c < C; c++) {
                const uint8_t *ab = a + (size_t)c * lda + (size_t)b * 292;
                const uint8_t *aq = ab + Q8K_QS;
                __m512i is = _mm512_setzero_si512();
#pragma GCC unroll 4
                for (int j = 0; j < 4; j++) {
                    __m512i p = _mm512_maddubs_epi16(k.u[j], _mm512_loadu_si512((const void *)(aq + 64 * j)));
                    is = dot_ww(vnni, is, p, k.sc[j]);
                }
                __m256i bsums = _mm256_loadu_si256((const __m256i *)(ab + Q8K_BSUMS));
                __m256i ms = _mm256_madd_epi16(k.m16, bsums);
                float da;
                memcpy(&da, ab, 4);
                if (t == F_Q6_K) {
                    is = _mm512_sub_epi32(is, _mm512_zextsi256_si512(_mm256_slli_epi32(ms, 5)));
                    acc[r][c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is), _mm512_set1_ps(k.d * da),
                                                acc[r][c]);
                } else {
                    acc[r][c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is), _mm512_set1_ps(k.d * da),
                                                acc[r][c]);
                    __m512 mf = _mm512_zextps256_ps512(_mm256_cvtepi32_ps(ms));
                    acc[r][c] = _mm512_fnmadd_ps(mf, _mm512_set1_ps(k.dmin * da), acc[r][c]);
                }
            }
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int c = 0; c < C; c++)
            y[(size_t)c * ldy + (size_t)r] = hsum(acc[r][c]);
}

AI void kq_tile(int t, bool vnni, const int R, const int C, int64_t nb, const uint8_t *w,
                size_t ldw, const uint8_t *a, size_t lda, float *y, size_t ldy)
{
    kq_tile_x(t, vnni, R, C, nb, w, ldw, a, lda, y, ldy, false, NULL);
}

/* As fam_gemm_hoisted: decode a 4-row tile once for all column tiles (K <= 4096: 40 KB). */
#define KQ_HOIST_MAX_SB 16

AI void kq_gemm_hoisted(int t, bool vnni, int64_t nb, const uint8_t *w, size_t ldw,
                        const uint8_t *a, size_t lda, float *y, size_t ldy, int nc)
{
    const size_t bs = t == F_Q4_K ? 144 : 210;
    kq_row dec[4 * KQ_HOIST_MAX_SB];
    for (int r = 0; r < 4; r++)
        for (int64_t b = 0; b < nb; b++)
            kq_decode(t, w + (size_t)r * ldw + (size_t)b * bs, &dec[r * nb + b]);
    for (int c = 0; c < nc; c += 4) {
        const uint8_t *ac = a + (size_t)c * lda;
        float *yc = y + (size_t)c * ldy;
        switch (nc - c) {
        case 1: kq_tile_x(t, vnni, 4, 1, nb, w, ldw, ac, lda, yc, ldy, true, dec); break;
        case 2: kq_tile_x(t, vnni, 4, 2, nb, w, ldw, ac, lda, yc, ldy, true, dec); break;
        case 3: kq_tile_x(t, vnni, 4, 3, nb, w, ldw, ac, lda, yc, ldy, true, dec); break;
        default: kq_tile_x(t, vnni, 4, 4, nb, w, ldw, ac, lda, yc, ldy, true, dec); break;
        }
    }
}

/* ---- tile drivers -------------------------------------------------------------------- */

/* Walks the nr x nc output in 4 x 4 tiles (remainders with smaller specialisations). */
#define GEMM_DRIVER(NAME, TILE, T, VNNI, QK_)                                             \
    static void NAME##_t41(int64_t nb, const uint8_t *w, size_t ldw, const uint8_t *a,    \
                           size_t lda, float *y, size_t ldy, int R, int C)                \
    {                                                                                     \
        switch (R * 8 + C) {                                                              \
        case 4 * 8 + 4: TILE(T, VNNI, 4, 4, nb, w, ldw, a, lda, y, ldy); break;           \
        case 4 * 8 + 3: TILE(T, VNNI, 4, 3, nb, w, ldw, a, lda, y, ldy); break;           \
        case 4 * 8 + 2: TILE(T, VNNI, 4, 2, nb, w, ldw, a, lda, y, ldy); break;           \
        case 4 * 8 + 1: TILE(T, VNNI, 4, 1, nb, w, ldw, a, lda, y, ldy); break;           \
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
        int64_t nb = n / (QK_);                                                           \
        for (int r = 0; r < nr;) {                                                        \
            int R = nr - r >= 4 ? 4 : 1;                                                  \
            for (int c = 0; c < nc; c += 4) {                                             \
                int C = nc - c >= 4 ? 4 : nc - c;                                         \
                NAME##_t41(nb, W + (size_t)r * ldw, ldw, A + (size_t)c * lda, lda,        \
                           y + (size_t)c * ldy + (size_t)r, ldy, R, C);                   \
            }                                                                             \
            r += R;                                                                       \
        }                                                                                 \
    }                                                                                     \
    static void NAME##_dot(int64_t n, float *s, const void *w, const void *a)             \
    {                                                                                     \
        NAME##_t41(n / (QK_), w, 0, a, 0, s, 0, 1, 1);                                   \
    }

GEMM_DRIVER(q4_0_v, fam_tile, F_Q4_0, true, QK)
GEMM_DRIVER(q5_0_v, fam_tile, F_Q5_0, true, QK)
GEMM_DRIVER(q8_0_v, fam_tile, F_Q8_0, true, QK)
GEMM_DRIVER(q4_k_v, kq_tile, F_Q4_K, true, QK_K)
GEMM_DRIVER(q6_k_v, kq_tile, F_Q6_K, true, QK_K)
/* VNNI family gemm: hoisted weight decoding for prompt-sized batches, else the tiles. */
#define HOIST_GEMM(NAME, T, VNNI, QK_, MAXB, FN)                                          \
    static void NAME##_gemm_h(int64_t n, const void *w, size_t ldw, const void *a,        \
                              size_t lda, float *y, size_t ldy, int nr, int nc)           \
    {                                                                                     \
        int64_t nb = n / (QK_);                                                           \
        int r = 0;                                                                        \
        if (nc > 4 && nb <= (MAXB))                                                       \
            for (; r + 4 <= nr; r += 4)                                                   \
                FN(T, VNNI, nb, (const uint8_t *)w + (size_t)r * ldw, ldw, a, lda, y + r, \
                   ldy, nc);                                                              \
        if (r < nr)                                                                       \
            NAME##_gemm(n, (const uint8_t *)w + (size_t)r * ldw, ldw, a, lda, y + r, ldy, \
                        nr - r, nc);                                                      \
    }

HOIST_GEMM(q4_k_v, F_Q4_K, true, QK_K, KQ_HOIST_MAX_SB, kq_gemm_hoisted)
HOIST_GEMM(q6_k_v, F_Q6_K, true, QK_K, KQ_HOIST_MAX_SB, kq_gemm_hoisted)

#define FAM_GEMM(NAME, T)                                                                 \
    static void NAME##_gemm_h(int64_t n, const void *w, size_t ldw, const void *a,        \
                              size_t lda, float *y, size_t ldy, int nr, int nc)           \
    {                                                                                     \
        int64_t nb = n / QK;                                                              \
        int r = 0;                                                                        \
        if (nc > 4 && (nb + 1) / 2 <= FAM_HOIST_MAX_PAIRS)                                \
            for (; r + 4 <= nr; r += 4)                                                   \
                fam_gemm_hoisted(T, true, nb, (const uint8_t *)w + (size_t)r * ldw, ldw,  \
                                 a, lda, y + r, ldy, nc);                                 \
        if (r < nr)                                                                       \
            NAME##_gemm(n, (const uint8_t *)w + (size_t)r * ldw, ldw, a, lda, y + r, ldy, \
                        nr - r, nc);                                                      \
    }

FAM_GEMM(q4_0_v, F_Q4_0)
FAM_GEMM(q5_0_v, F_Q5_0)
FAM_GEMM(q8_0_v, F_Q8_0)
GEMM_DRIVER(q4_0_n, fam_tile, F_Q4_0, false, QK)
GEMM_DRIVER(q5_0_n, fam_tile, F_Q5_0, false, QK)
GEMM_DRIVER(q8_0_n, fam_tile, F_Q8_0, false, QK)
GEMM_DRIVER(q4_k_n, kq_tile, F_Q4_K, false, QK_K)
GEMM_DRIVER(q6_k_n, kq_tile, F_Q6_K, false, QK_K)
HOIST_GEMM(q4_k_n, F_Q4_K, false, QK_K, KQ_HOIST_MAX_SB, kq_gemm_hoisted)
HOIST_GEMM(q6_k_n, F_Q6_K, false, QK_K, KQ_HOIST_MAX_SB, kq_gemm_hoisted)

/* ---- element-wise ops (scalar oracle: src/model/ops.c) ---------------------------------- */

static double op_sum_sq(const float *x, int64_t n)
{
    __m512d s0 = _mm512_setzero_pd(), s1 = s0;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512 v = _mm512_loadu_ps(x + i);
        const __m512 q = _mm512_mul_ps(v, v); /* float squares, as the scalar loop */
        s0 = _mm512_add_pd(s0, _mm512_cvtps_pd(_mm512_castps512_ps256(q)));
        s1 = _mm512_add_pd(s1, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(q), 1))));
    }
    double r = _mm512_reduce_add_pd(_mm512_add_pd(s0, s1));
    for (; i < n; i++)
        r += (double)(x[i] * x[i]);
    return r;
}

static void op_scale_mul(float *y, const float *x, float scale, const float *w, int64_t n)
{
    const __m512 vs = _mm512_set1_ps(scale);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 v = _mm512_mul_ps(_mm512_loadu_ps(x + i), vs);
        if (w)
            v = _mm512_mul_ps(v, _mm512_loadu_ps(w + i));
        _mm512_storeu_ps(y + i, v);
    }
    for (; i < n; i++)
        y[i] = w ? (x[i] * scale) * w[i] : x[i] * scale;
}

/* The table lookup is a 32-bit gather at 2-byte granularity (the low half is the entry);
 * lanes outside (-10, 10) take the closed forms, so index 0xFFFF (a NaN, whose second half
 * would lie past the table) is never gathered: NaN lanes pass the NaN through instead. */
static void op_geglu(float *y, const float *gate, const float *up, int64_t n, const uint16_t *tab)
{
    const __m512 lo = _mm512_set1_ps(-10.0f), hi = _mm512_set1_ps(10.0f);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512 g = _mm512_loadu_ps(gate + i);
        const __mmask16 big = _mm512_cmp_ps_mask(g, hi, _CMP_GE_OQ);
        const __mmask16 mid = _mm512_cmp_ps_mask(g, lo, _CMP_GT_OQ) & _mm512_cmp_ps_mask(g, hi, _CMP_LT_OQ);
        const __mmask16 nan = _mm512_cmp_ps_mask(g, g, _CMP_UNORD_Q);
        const __m512i idx = _mm512_cvtepu16_epi32(_mm512_cvtps_ph(g, _MM_FROUND_TO_NEAREST_INT));
        const __m512i t = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), mid, idx, tab, 2);
        __m512 a = _mm512_maskz_mov_ps(mid, _mm512_cvtph_ps(_mm512_cvtepi32_epi16(t)));
        a = _mm512_mask_mov_ps(a, big | nan, g);
        _mm512_storeu_ps(y + i, _mm512_mul_ps(a, _mm512_loadu_ps(up + i)));
    }
    for (; i < n; i++) {
        const float g = gate[i];
        float a;
        if (g <= -10.0f)
            a = 0.0f;
        else if (g >= 10.0f || g != g)
            a = g;
        else
            a = h2f(tab[(uint16_t)_cvtss_sh(g, 0)]);
        y[i] = a * up[i];
    }
}

static void op_round_f16(float *x, int64_t n)
{
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(x + i, _mm512_cvtph_ps(_mm512_cvtps_ph(_mm512_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT)));
    for (; i < n; i++)
        x[i] = h2f((uint16_t)_cvtss_sh(x[i], 0));
}

/* F16 rows (keys, V columns) against F32 rows (F16-exact queries, probabilities): only the
 * F16 side is converted, up to 6 columns per 4-row tile. */
AI void f16f32_tile(const int R, const int C, int64_t n, const uint16_t *w, size_t ldw, const float *a, size_t lda,
                    float *y, size_t ldy)
{
    __m512 acc[4][6], wv[4];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 6
        for (int c = 0; c < C; c++)
            acc[r][c] = _mm512_setzero_ps();
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
#pragma GCC unroll 4
        for (int r = 0; r < R; r++)
            wv[r] = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, w + (size_t)r * ldw + i));
#pragma GCC unroll 6
        for (int c = 0; c < C; c++) {
            const __m512 av = _mm512_maskz_loadu_ps(m, a + (size_t)c * lda + i);
#pragma GCC unroll 4
            for (int r = 0; r < R; r++)
                acc[r][c] = _mm512_fmadd_ps(wv[r], av, acc[r][c]);
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 6
        for (int c = 0; c < C; c++)
            y[(size_t)c * ldy + (size_t)r] = hsum(acc[r][c]);
}

#define F16F32_ROWS(R)                                                                    \
    switch (C) {                                                                          \
    case 6: f16f32_tile(R, 6, n, wr, ldw, ac, lda, yc, ldy); break;                       \
    case 5: f16f32_tile(R, 5, n, wr, ldw, ac, lda, yc, ldy); break;                       \
    case 4: f16f32_tile(R, 4, n, wr, ldw, ac, lda, yc, ldy); break;                       \
    case 3: f16f32_tile(R, 3, n, wr, ldw, ac, lda, yc, ldy); break;                       \
    case 2: f16f32_tile(R, 2, n, wr, ldw, ac, lda, yc, ldy); break;                       \
    default: f16f32_tile(R, 1, n, wr, ldw, ac, lda, yc, ldy); break;                      \
    }

static void op_gemm_f16_f32(int64_t n, const uint16_t *w, size_t ldw, const float *a, size_t lda, float *y,
                            size_t ldy, int nr, int nc)
{
    for (int r = 0; r < nr;) {
        const int R = nr - r >= 4 ? 4 : 1;
        for (int c = 0; c < nc; c += 6) {
            const int C = nc - c >= 6 ? 6 : nc - c;
            const uint16_t *wr = w + (size_t)r * ldw;
            const float *ac = a + (size_t)c * lda;
            float *yc = y + (size_t)c * ldy + (size_t)r;
            if (R == 4) {
                F16F32_ROWS(4)
            } else {
                F16F32_ROWS(1)
            }
        }
        r += R;
    }
}

#define SET(k, T, Q, NAME)                                                                \
    do {                                                                                  \
        (k)->type[GM_TYPE_##T].quantize = Q;                                              \
        (k)->type[GM_TYPE_##T].vec_dot = NAME##_dot;                                      \
        (k)->type[GM_TYPE_##T].gemm = NAME##_gemm;                                        \
    } while (0)

void gm_kernels_install_avx512(gm_kernels *k, bool vnni)
{
    k->type[GM_TYPE_F32].vec_dot = dot_f32;
    k->type[GM_TYPE_F16].quantize = quant_f16;
    k->type[GM_TYPE_F16].vec_dot = dot_f16;
    k->type[GM_TYPE_F16].gemm = f16_gemm;
    k->op.sum_sq = op_sum_sq;
    k->op.scale_mul = op_scale_mul;
    k->op.geglu = op_geglu;
    k->op.round_f16 = op_round_f16;
    k->op.gemm_f16_f32 = op_gemm_f16_f32;
    k->type[GM_TYPE_BF16].vec_dot = dot_bf16;
    if (vnni) {
        SET(k, Q4_0, quant_q8_0, q4_0_v);
        SET(k, Q5_0, quant_q8_0, q5_0_v);
        SET(k, Q8_0, quant_q8_0, q8_0_v);
        SET(k, Q4_K, quant_q8_k, q4_k_v);
        SET(k, Q6_K, quant_q8_k, q6_k_v);
        k->type[GM_TYPE_Q4_0].gemm = q4_0_v_gemm_h;
        k->type[GM_TYPE_Q5_0].gemm = q5_0_v_gemm_h;
        k->type[GM_TYPE_Q8_0].gemm = q8_0_v_gemm_h;
        k->type[GM_TYPE_Q4_K].gemm = q4_k_v_gemm_h;
        k->type[GM_TYPE_Q6_K].gemm = q6_k_v_gemm_h;
    } else {
        SET(k, Q4_0, quant_q8_0, q4_0_n);
        SET(k, Q5_0, quant_q8_0, q5_0_n);
        SET(k, Q8_0, quant_q8_0, q8_0_n);
        SET(k, Q4_K, quant_q8_k, q4_k_n);
        SET(k, Q6_K, quant_q8_k, q6_k_n);
        k->type[GM_TYPE_Q4_K].gemm = q4_k_n_gemm_h;
        k->type[GM_TYPE_Q6_K].gemm = q6_k_n_gemm_h;
    }
    k->type[GM_TYPE_Q2_K].quantize = quant_q8_k;
    k->type[GM_TYPE_Q3_K].quantize = quant_q8_k;
    k->type[GM_TYPE_Q5_K].quantize = quant_q8_k;
}
