/* AVX2 + FMA + F16C kernels, for x86 CPUs without AVX-512. Compiled with AVX2 flags; only
 * called after gm_isa_supported() said so.
 *
 * The u8 x s8 dot is vpmaddubsw + vpmaddwd. The Q8_0-activation family uses the sign trick
 * (|w| x sign(a, w)), which cannot saturate the 16-bit pair sums for |w| <= 128; Q4_1/Q5_1
 * (x Q8_1) are unsigned already. Only 16 vector registers: tiles are up to 2 rows x 4
 * columns, and the K-quants decode one super-block of a row into a small aligned buffer
 * of unsigned bytes and 16-bit scale vectors that every column then reads.
 */
#include "kernels-x86.h"

#include <string.h>

/* The float vector of FLOAT_DOT (kernels-x86.h). */
#define VF __m256
#define VF_N 8
#define vf_zero _mm256_setzero_ps
#define vf_fma _mm256_fmadd_ps
#define vf_add _mm256_add_ps

AI float hsum(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

AI float hmax(__m256 v)
{
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

AI int hsum_i32(__m256i v)
{
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(s);
}

/* 32 int32 in four registers -> 32 saturated int8, in order. */
AI __m256i pack32(__m256i a, __m256i b, __m256i c, __m256i d)
{
    __m256i ab = _mm256_packs_epi32(a, b), cd = _mm256_packs_epi32(c, d);
    __m256i q = _mm256_packs_epi16(ab, cd);
    /* packs interleave 128-bit lanes: a0 b0 c0 d0 | a1 b1 c1 d1 in 4-byte groups */
    return _mm256_permutevar8x32_epi32(q, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

/* ---- activation quantizers ----------------------------------------------------------- */

/* Q8_0 as ggml's x86 path: d = amax/127 (stored F16), id = 127/amax, round half to even.
 * With s (Q8_1), also s = F16(d * sum(q)) of the stored (saturated) quants. */
AI void quant_q8_x(const float *x, uint8_t *y, int64_t n, const bool s)
{
    const size_t bs = s ? sizeof(block_q8_1) : sizeof(block_q8_0);
    const size_t qs = s ? offsetof(block_q8_1, qs) : offsetof(block_q8_0, qs);
    const __m256 sign = _mm256_set1_ps(-0.0f), inf = _mm256_set1_ps(__builtin_inff());
    for (int64_t i = 0; i < n / QK; i++, y += bs) {
        const float *xb = x + i * QK;
        __m256 v[4];
        __m256 m = _mm256_setzero_ps(), bad = m;
        for (int j = 0; j < 4; j++) {
            v[j] = _mm256_loadu_ps(xb + 8 * j);
            const __m256 ax = _mm256_andnot_ps(sign, v[j]);
            m = _mm256_max_ps(m, ax);
            bad = _mm256_or_ps(bad, _mm256_cmp_ps(ax, inf, _CMP_NLT_UQ));
        }
        if (_mm256_movemask_ps(bad)) {
            gm_act_block_nan(s ? GM_TYPE_Q8_1 : GM_TYPE_Q8_0, y);
            continue;
        }
        float amax = hmax(m);
        float d = amax / 127.f, id = q8_inv_scale(amax);
        uint16_t dh = (uint16_t)_cvtss_sh(d, 0);
        memcpy(y, &dh, 2);
        __m256 vid = _mm256_set1_ps(id);
        __m256i q[4];
        for (int j = 0; j < 4; j++)
            q[j] = _mm256_cvtps_epi32(_mm256_mul_ps(v[j], vid));
        _mm256_storeu_si256((__m256i *)(y + qs), pack32(q[0], q[1], q[2], q[3]));
        if (s) {
            __m256i t = _mm256_setzero_si256();
            for (int j = 0; j < 4; j++) /* saturate as pack32 does */
                t = _mm256_add_epi32(t, _mm256_max_epi32(_mm256_min_epi32(q[j], _mm256_set1_epi32(127)),
                                                         _mm256_set1_epi32(-128)));
            uint16_t sh = (uint16_t)_cvtss_sh((float)hsum_i32(t) * d, 0);
            memcpy(y + offsetof(block_q8_1, s), &sh, 2);
        }
    }
}

static void quant_q8_0(const float *x, void *y, int64_t n) { quant_q8_x(x, y, n, false); }
static void quant_q8_1(const float *x, void *y, int64_t n) { quant_q8_x(x, y, n, true); }

static void quant_q8_k(const float *x, void *vy, int64_t n)
{
    block_q8_K *y = vy;
    const __m256 sign = _mm256_set1_ps(-0.0f), inf = _mm256_set1_ps(__builtin_inff());
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float *xb = x + i * QK_K;
        __m256 m = _mm256_setzero_ps(), bad = m;
        for (int j = 0; j < QK_K; j += 8) {
            const __m256 ax = _mm256_andnot_ps(sign, _mm256_loadu_ps(xb + j));
            m = _mm256_max_ps(m, ax);
            bad = _mm256_or_ps(bad, _mm256_cmp_ps(ax, inf, _CMP_NLT_UQ));
        }
        if (_mm256_movemask_ps(bad)) {
            gm_act_block_nan(GM_TYPE_Q8_K, &y[i]);
            continue;
        }
        const float iscale = q8k_iscale(xb, hmax(m));
        if (iscale == 0.f) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        __m256 vs = _mm256_set1_ps(iscale);
        const __m256i lim = _mm256_set1_epi32(127);
        for (int j = 0; j < QK_K; j += 32) {
            __m256i q[4];
            for (int k = 0; k < 4; k++)
                q[k] = _mm256_min_epi32(
                    _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(xb + j + 8 * k), vs)), lim);
            y[i].bsums[j / 16] = (int16_t)hsum_i32(_mm256_add_epi32(q[0], q[1]));
            y[i].bsums[j / 16 + 1] = (int16_t)hsum_i32(_mm256_add_epi32(q[2], q[3]));
            _mm256_storeu_si256((__m256i *)(y[i].qs + j), pack32(q[0], q[1], q[2], q[3]));
        }
        y[i].d = 1.f / iscale;
    }
}

static void quant_f16(const float *x, void *vy, int64_t n)
{
    uint16_t *y = vy;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(y + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++)
        y[i] = (uint16_t)_cvtss_sh(x[i], 0);
}

/* ---- float dots ---------------------------------------------------------------------- */

AI __m256 ld_f32(const void *p, int64_t i) { return _mm256_loadu_ps((const float *)p + i); }
AI __m256 ld_f16(const void *p, int64_t i)
{
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)p + i)));
}
AI __m256 ld_bf16(const void *p, int64_t i)
{
    __m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)p + i));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

FLOAT_DOT(dot_f32, ld_f32, sc_f32)
FLOAT_DOT(dot_f16, ld_f16, sc_f16)
FLOAT_DOT(dot_bf16, ld_bf16, sc_bf16)

/* ---- Q4_0 / Q5_0 / Q8_0 x Q8_0, Q4_1 / Q5_1 x Q8_1 ---------------------------------- */

/* Q4_1/Q5_1 quants (0..31) go straight into maddubs. */

/* One weight block as 32 values in element order: q - offset, or q for Q4_1/Q5_1. */
AI __m256i fam_weights(int t, const uint8_t *blk)
{
    if (t == F_Q8_0)
        return _mm256_loadu_si256((const __m256i *)(blk + fam_qs(t)));
    const uint8_t *qs = blk + fam_qs(t);
    __m128i x = _mm_loadu_si128((const __m128i *)qs);
    __m256i u = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(x, 4), x), _mm256_set1_epi8(0x0F));
    if (t == F_Q4_0)
        return _mm256_sub_epi8(u, _mm256_set1_epi8((char)fam_offset(t)));
    if (t == F_Q4_1)
        return u;
    /* Q5: byte i takes bit i of qh as its 5th bit. */
    __m256i hv = _mm256_set1_epi32((int)gm_rd_u32(blk + fam_qh(t)));
    __m256i sel = _mm256_shuffle_epi8(hv, _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                                           2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3));
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ull);
    __m256i hb = _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(sel, bit), bit), _mm256_set1_epi8(16));
    u = _mm256_or_si256(u, hb);
    return t == F_Q5_1 ? u : _mm256_sub_epi8(u, _mm256_set1_epi8((char)fam_offset(t)));
}

AI void fam_tile(int t, const int R, const int C, int64_t nb, const uint8_t *w, size_t ldw,
                 const uint8_t *a, size_t lda, float *y, size_t ldy)
{
    const size_t bs = fam_bsize(t), as = fam_asize(t);
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc[2][4];
    float macc[2][4] = { { 0 } }; /* the m * s terms */
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++)
            acc[r][c] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        __m256i ws[2], wa[2];
        float dw[2], mw[2] = { 0 };
#pragma GCC unroll 2
        for (int r = 0; r < R; r++) {
            const uint8_t *blk = w + (size_t)r * ldw + (size_t)b * bs;
            /* Matvecs stream R rows at once; fetch the next tile's rows early. */
            _mm_prefetch((const char *)blk + (size_t)R * ldw, _MM_HINT_T0);
            ws[r] = fam_weights(t, blk);
            wa[r] = fam_min(t) ? ws[r] : _mm256_sign_epi8(ws[r], ws[r]);
            dw[r] = h2f(gm_rd_u16(blk));
            if (fam_min(t))
                mw[r] = h2f(gm_rd_u16(blk + FAM_M));
        }
#pragma GCC unroll 4
        for (int c = 0; c < C; c++) {
            const uint8_t *ab = a + (size_t)c * lda + (size_t)b * as;
            __m256i av = _mm256_loadu_si256((const __m256i *)(ab + fam_aqs(t)));
            float da = h2f(gm_rd_u16(ab)), sa = fam_min(t) ? h2f(gm_rd_u16(ab + FAM_AS)) : 0.f;
#pragma GCC unroll 2
            for (int r = 0; r < R; r++) {
                __m256i p = _mm256_maddubs_epi16(wa[r], fam_min(t) ? av : _mm256_sign_epi8(av, ws[r]));
                __m256 f = _mm256_cvtepi32_ps(_mm256_madd_epi16(p, ones));
                acc[r][c] = _mm256_fmadd_ps(f, _mm256_set1_ps(dw[r] * da), acc[r][c]);
                if (fam_min(t))
                    macc[r][c] += mw[r] * sa;
            }
        }
    }
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++)
            y[(size_t)c * ldy + (size_t)r] = hsum(acc[r][c]) + macc[r][c];
}

/* ---- K-quants x Q8_K ----------------------------------------------------------------- */

/* Q6_K and Q3_K quants are decoded unsigned (q + 2^shift); the bias comes back out as
 * scale x bsums, shifted. The others carry a min term, dmin * mins x bsums, instead. */
AI int kq_bias_shift(int t) { return t == F_Q6_K ? 5 : t == F_Q3_K ? 2 : 0; }

/* ((v >> shift) & m) << up, per byte (m keeps bits that 16-bit shifts don't cross). */
AI __m256i bits_at(__m256i v, int shift, __m256i m, int up)
{
    return _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(v, shift), m), up);
}

/* One decoded super-block: unsigned quants in element order, a 16-bit scale vector per
 * 32 elements, and the factors for the bsums term (mins, twice each for 32-wide sub-blocks;
 * Q6_K/Q3_K: the scales). */
typedef struct kq_dec {
    _Alignas(32) uint8_t q[QK_K];
    _Alignas(32) int16_t sc[8][16];
    _Alignas(32) int16_t m16[16];
    float d, dmin;
} kq_dec;

/* Q4_K (qh NULL) and Q5_K: 6-bit scales and mins, nibbles, Q5_K's 5th bit from qh. */
AI void kq_decode_q45(const uint8_t *blk, const uint8_t *qh, const uint8_t *qs, kq_dec *k)
{
    const __m256i m4 = _mm256_set1_epi8(0x0F), m1 = _mm256_set1_epi8(1);
    k->d = h2f(gm_rd_u16(blk + offsetof(block_q4_K, d)));
    k->dmin = h2f(gm_rd_u16(blk + offsetof(block_q4_K, dmin)));
    uint8_t sc[8], mn[8];
    q4k_scales(blk + offsetof(block_q4_K, scales), sc, mn);
    for (int j = 0; j < 8; j++) {
        _mm256_store_si256((__m256i *)k->sc[j], _mm256_set1_epi16(sc[j]));
        k->m16[2 * j] = k->m16[2 * j + 1] = mn[j];
    }
    const __m256i h = qh ? _mm256_loadu_si256((const __m256i *)qh) : _mm256_setzero_si256();
    for (int j = 0; j < 4; j++) {
        __m256i x = _mm256_loadu_si256((const __m256i *)(qs + 32 * j));
        __m256i lo = _mm256_and_si256(x, m4), hi = _mm256_and_si256(_mm256_srli_epi16(x, 4), m4);
        if (qh) {
            lo = _mm256_or_si256(lo, bits_at(h, 2 * j, m1, 4));
            hi = _mm256_or_si256(hi, bits_at(h, 2 * j + 1, m1, 4));
        }
        _mm256_store_si256((__m256i *)(k->q + 64 * j), lo);
        _mm256_store_si256((__m256i *)(k->q + 64 * j + 32), hi);
    }
}

/* Scale vectors of 16-element sub-blocks from their 16 scales s16: group j's low 8 lanes
 * take s16[2j], its high 8 s16[2j+1] (one byte shuffle within the half holding both). */
AI void kq_scales16(__m256i s16, kq_dec *k)
{
    const __m256i lo = _mm256_permute2x128_si256(s16, s16, 0x00);
    const __m256i hi = _mm256_permute2x128_si256(s16, s16, 0x11);
#pragma GCC unroll 8
    for (int j = 0; j < 8; j++) {
        const int i = 4 * (j % 4); /* byte offset of s16[2j] in its half */
        const __m256i ctl = _mm256_set_m128i(_mm_set1_epi16((short)(((i + 3) << 8) | (i + 2))),
                                             _mm_set1_epi16((short)(((i + 1) << 8) | i)));
        _mm256_store_si256((__m256i *)k->sc[j], _mm256_shuffle_epi8(j < 4 ? lo : hi, ctl));
    }
}

AI void kq_decode_q6(const uint8_t *blk, kq_dec *k)
{
    const __m256i m4 = _mm256_set1_epi8(0x0F), m3 = _mm256_set1_epi8(3);
    const uint8_t *ql = blk + offsetof(block_q6_K, ql), *qh = blk + offsetof(block_q6_K, qh);
    const __m256i s16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(blk + offsetof(block_q6_K, scales))));
    k->d = h2f(gm_rd_u16(blk + offsetof(block_q6_K, d)));
    k->dmin = 0.f;
    kq_scales16(s16, k);
    _mm256_store_si256((__m256i *)k->m16, s16);
    for (int n = 0; n < 2; n++) {
        __m256i l0 = _mm256_loadu_si256((const __m256i *)(ql + 64 * n));
        __m256i l1 = _mm256_loadu_si256((const __m256i *)(ql + 64 * n + 32));
        __m256i h = _mm256_loadu_si256((const __m256i *)(qh + 32 * n));
        uint8_t *o = k->q + 128 * n;
        __m256i hb[4];
        for (int s = 0; s < 4; s++)
            hb[s] = bits_at(h, 2 * s, m3, 4);
        _mm256_store_si256((__m256i *)o, _mm256_or_si256(_mm256_and_si256(l0, m4), hb[0]));
        _mm256_store_si256((__m256i *)(o + 32), _mm256_or_si256(_mm256_and_si256(l1, m4), hb[1]));
        _mm256_store_si256((__m256i *)(o + 64), _mm256_or_si256(bits_at(l0, 4, m4, 0), hb[2]));
        _mm256_store_si256((__m256i *)(o + 96), _mm256_or_si256(bits_at(l1, 4, m4, 0), hb[3]));
    }
}

/* Q2_K and Q3_K: 2-bit planes (half h, shift 2j -> elements 128h + 32j ..); Q3_K adds its
 * hmask bit 4h+j as bit 2 (q + 4 unsigned). */
AI void kq_decode_q23(int t, const uint8_t *blk, kq_dec *k)
{
    const uint8_t *qs = blk + (t == F_Q2_K ? offsetof(block_q2_K, qs) : offsetof(block_q3_K, qs));
    __m256i s16;
    if (t == F_Q2_K) {
        k->d = h2f(gm_rd_u16(blk + offsetof(block_q2_K, d)));
        k->dmin = h2f(gm_rd_u16(blk + offsetof(block_q2_K, dmin)));
        const __m128i raw = _mm_loadu_si128((const __m128i *)(blk + offsetof(block_q2_K, scales)));
        const __m128i m4 = _mm_set1_epi8(0x0F);
        s16 = _mm256_cvtepu8_epi16(_mm_and_si128(raw, m4));
        _mm256_store_si256((__m256i *)k->m16, _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(raw, 4), m4)));
    } else {
        k->d = h2f(gm_rd_u16(blk + offsetof(block_q3_K, d)));
        k->dmin = 0.f;
        s16 = _mm256_cvtepi8_epi16(q3k_scales(blk + offsetof(block_q3_K, scales)));
        _mm256_store_si256((__m256i *)k->m16, s16);
    }
    kq_scales16(s16, k);
    const __m256i m2 = _mm256_set1_epi8(3), m1 = _mm256_set1_epi8(1);
    const __m256i hm = _mm256_loadu_si256((const __m256i *)(blk + offsetof(block_q3_K, hmask)));
    for (int h = 0; h < 2; h++) {
        const __m256i x = _mm256_loadu_si256((const __m256i *)(qs + 32 * h));
        for (int j = 0; j < 4; j++) {
            __m256i v = bits_at(x, 2 * j, m2, 0);
            if (t == F_Q3_K)
                v = _mm256_or_si256(v, bits_at(hm, 4 * h + j, m1, 2));
            _mm256_store_si256((__m256i *)(k->q + 128 * h + 32 * j), v);
        }
    }
}

AI void kq_decode(int t, const uint8_t *blk, kq_dec *k)
{
    if (t == F_Q4_K)
        kq_decode_q45(blk, NULL, blk + offsetof(block_q4_K, qs), k);
    else if (t == F_Q5_K)
        kq_decode_q45(blk, blk + offsetof(block_q5_K, qh), blk + offsetof(block_q5_K, qs), k);
    else if (t == F_Q6_K)
        kq_decode_q6(blk, k);
    else
        kq_decode_q23(t, blk, k);
}

AI void kq_tile(int t, const int R, const int C, int64_t nb, const uint8_t *w, size_t ldw,
                const uint8_t *a, size_t lda, float *y, size_t ldy)
{
    const size_t bs = kq_bsize(t);
    __m256 acc[2][4];
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++)
            acc[r][c] = _mm256_setzero_ps();
    kq_dec k;
    for (int64_t b = 0; b < nb; b++) {
        for (int r = 0; r < R; r++) {
            const uint8_t *blk = w + (size_t)r * ldw + (size_t)b * bs;
            for (size_t o = 0; o < bs; o += 64)
                _mm_prefetch((const char *)blk + (size_t)R * ldw + o, _MM_HINT_T0);
            kq_decode(t, blk, &k);
#pragma GCC unroll 4
            for (int c = 0; c < C; c++) {
                const uint8_t *ab = a + (size_t)c * lda + (size_t)b * sizeof(block_q8_K);
                const int8_t *aq = q8k_qs(ab);
                __m256i is = _mm256_setzero_si256();
                for (int j = 0; j < 8; j++) {
                    __m256i p = _mm256_maddubs_epi16(_mm256_load_si256((const __m256i *)(k.q + 32 * j)),
                                                     _mm256_loadu_si256((const __m256i *)(aq + 32 * j)));
                    is = _mm256_add_epi32(is, _mm256_madd_epi16(p, _mm256_load_si256((const __m256i *)k.sc[j])));
                }
                __m256i ms = _mm256_madd_epi16(_mm256_load_si256((const __m256i *)k.m16),
                                               _mm256_loadu_si256((const __m256i *)q8k_bsums(ab)));
                const float da = q8k_d(ab);
                if (kq_bias_shift(t)) {
                    is = _mm256_sub_epi32(is, _mm256_slli_epi32(ms, kq_bias_shift(t)));
                    acc[r][c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(is), _mm256_set1_ps(k.d * da), acc[r][c]);
                } else {
                    acc[r][c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(is), _mm256_set1_ps(k.d * da), acc[r][c]);
                    acc[r][c] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(ms), _mm256_set1_ps(k.dmin * da), acc[r][c]);
                }
            }
        }
    }
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++)
            y[(size_t)c * ldy + (size_t)r] = hsum(acc[r][c]);
}

/* ---- tile drivers -------------------------------------------------------------------- */

/* The shared drivers pass a VNNI flag; AVX2 has none. */
#define FAM_TILE(t, vnni, ...) fam_tile(t, __VA_ARGS__)
#define KQ_TILE(t, vnni, ...) kq_tile(t, __VA_ARGS__)

GEMM_DRIVER(q4_0, FAM_TILE, F_Q4_0, false, QK, 2)
GEMM_DRIVER(q5_0, FAM_TILE, F_Q5_0, false, QK, 2)
GEMM_DRIVER(q8_0, FAM_TILE, F_Q8_0, false, QK, 2)
GEMM_DRIVER(q4_k, KQ_TILE, F_Q4_K, false, QK_K, 2)
GEMM_DRIVER(q6_k, KQ_TILE, F_Q6_K, false, QK_K, 2)
GEMM_DRIVER(q4_1, FAM_TILE, F_Q4_1, false, QK, 2)
GEMM_DRIVER(q5_1, FAM_TILE, F_Q5_1, false, QK, 2)
GEMM_DRIVER(q2_k, KQ_TILE, F_Q2_K, false, QK_K, 2)
GEMM_DRIVER(q3_k, KQ_TILE, F_Q3_K, false, QK_K, 2)
GEMM_DRIVER(q5_k, KQ_TILE, F_Q5_K, false, QK_K, 2)

/* ---- element-wise ops (scalar oracle: src/model/ops.c) ---------------------------------- */

static double op_sum_sq(const float *x, int64_t n)
{
    __m256d s0 = _mm256_setzero_pd(), s1 = s0;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(x + i);
        const __m256 q = _mm256_mul_ps(v, v); /* float squares, as the scalar loop */
        s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm256_castps256_ps128(q)));
        s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm256_extractf128_ps(q, 1)));
    }
    __m256d s = _mm256_add_pd(s0, s1);
    __m128d h = _mm_add_pd(_mm256_castpd256_pd128(s), _mm256_extractf128_pd(s, 1));
    double r = _mm_cvtsd_f64(_mm_add_sd(h, _mm_unpackhi_pd(h, h)));
    for (; i < n; i++)
        r += (double)(x[i] * x[i]);
    return r;
}

static void op_scale_mul(float *y, const float *x, float scale, const float *w, int64_t n)
{
    const __m256 vs = _mm256_set1_ps(scale);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + i), vs);
        if (w)
            v = _mm256_mul_ps(v, _mm256_loadu_ps(w + i));
        _mm256_storeu_ps(y + i, v);
    }
    for (; i < n; i++)
        y[i] = w ? (x[i] * scale) * w[i] : x[i] * scale;
}

/* As the AVX-512 version: a masked 32-bit gather at 2-byte granularity, only for lanes in
 * (-10, 10), so the last entry's neighbour past the table is never read. */
static void op_geglu(float *y, const float *gate, const float *up, int64_t n, const uint16_t *tab)
{
    const __m256 lo = _mm256_set1_ps(-10.0f), hi = _mm256_set1_ps(10.0f);
    const __m256i m16 = _mm256_set1_epi32(0xFFFF);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 g = _mm256_loadu_ps(gate + i);
        const __m256 big = _mm256_or_ps(_mm256_cmp_ps(g, hi, _CMP_GE_OQ), _mm256_cmp_ps(g, g, _CMP_UNORD_Q));
        const __m256 mid = _mm256_and_ps(_mm256_cmp_ps(g, lo, _CMP_GT_OQ), _mm256_cmp_ps(g, hi, _CMP_LT_OQ));
        const __m256i idx = _mm256_cvtepu16_epi32(_mm256_cvtps_ph(g, _MM_FROUND_TO_NEAREST_INT));
        __m256i t = _mm256_mask_i32gather_epi32(_mm256_setzero_si256(), (const int *)tab, idx,
                                                _mm256_castps_si256(mid), 2);
        t = _mm256_and_si256(t, m16);
        /* pack the low halves of the 8 lanes into 8 F16 values */
        const __m128i h = _mm_packus_epi32(_mm256_castsi256_si128(t), _mm256_extracti128_si256(t, 1));
        __m256 a = _mm256_and_ps(_mm256_cvtph_ps(h), mid);
        a = _mm256_blendv_ps(a, g, big);
        _mm256_storeu_ps(y + i, _mm256_mul_ps(a, _mm256_loadu_ps(up + i)));
    }
    for (; i < n; i++) {
        const float g = gate[i];
        float a;
        if (g <= -10.0f)
            a = 0.0f;
        else if (g >= 10.0f || g != g)
            a = g;
        else
            a = _cvtsh_ss(tab[(uint16_t)_cvtss_sh(g, 0)]);
        y[i] = a * up[i];
    }
}

static void op_round_f16(float *x, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(x + i, _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT)));
    for (; i < n; i++)
        x[i] = _cvtsh_ss((uint16_t)_cvtss_sh(x[i], 0));
}

/* F16 rows against F32 rows, 4 x 2 tiles; the tail (n % 8) in scalar code. */
static inline __attribute__((always_inline)) void f16f32_tile(const int R, const int C, int64_t n, const uint16_t *w,
                                                              size_t ldw, const float *a, size_t lda, float *y,
                                                              size_t ldy)
{
    __m256 acc[4][2], wv[4];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++)
            acc[r][c] = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
    #pragma GCC unroll 4
    for (int r = 0; r < R; r++)
            wv[r] = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + (size_t)r * ldw + i)));
#pragma GCC unroll 2
        for (int c = 0; c < C; c++) {
            const __m256 av = _mm256_loadu_ps(a + (size_t)c * lda + i);
        #pragma GCC unroll 4
    for (int r = 0; r < R; r++)
                acc[r][c] = _mm256_fmadd_ps(wv[r], av, acc[r][c]);
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 2
        for (int c = 0; c < C; c++) {
            float s = hsum(acc[r][c]);
            for (int64_t j = i; j < n; j++)
                s += _cvtsh_ss(w[(size_t)r * ldw + (size_t)j]) * a[(size_t)c * lda + (size_t)j];
            y[(size_t)c * ldy + (size_t)r] = s;
        }
}

static void op_gemm_f16_f32(int64_t n, const uint16_t *w, size_t ldw, const float *a, size_t lda, float *y,
                            size_t ldy, int nr, int nc)
{
    for (int r = 0; r < nr;) {
        const int R = nr - r >= 4 ? 4 : 1;
        for (int c = 0; c < nc; c += 2) {
            const uint16_t *wr = w + (size_t)r * ldw;
            const float *ac = a + (size_t)c * lda;
            float *yc = y + (size_t)c * ldy + (size_t)r;
            const bool two = nc - c >= 2;
            if (R == 4 && two)
                f16f32_tile(4, 2, n, wr, ldw, ac, lda, yc, ldy);
            else if (R == 4)
                f16f32_tile(4, 1, n, wr, ldw, ac, lda, yc, ldy);
            else if (two)
                f16f32_tile(1, 2, n, wr, ldw, ac, lda, yc, ldy);
            else
                f16f32_tile(1, 1, n, wr, ldw, ac, lda, yc, ldy);
        }
        r += R;
    }
}

void gm_kernels_install_avx2(gm_kernels *k)
{
    k->op.round_f16 = op_round_f16;
    k->op.gemm_f16_f32 = op_gemm_f16_f32;
    k->op.sum_sq = op_sum_sq;
    k->op.scale_mul = op_scale_mul;
    k->op.geglu = op_geglu;
    k->type[GM_TYPE_F32].vec_dot = dot_f32;
    k->type[GM_TYPE_F16].quantize = quant_f16;
    k->type[GM_TYPE_F16].vec_dot = dot_f16;
    k->type[GM_TYPE_BF16].vec_dot = dot_bf16;
    SET(k, Q4_0, quant_q8_0, q4_0);
    SET(k, Q5_0, quant_q8_0, q5_0);
    SET(k, Q8_0, quant_q8_0, q8_0);
    SET(k, Q4_K, quant_q8_k, q4_k);
    SET(k, Q6_K, quant_q8_k, q6_k);
    SET(k, Q4_1, quant_q8_1, q4_1);
    SET(k, Q5_1, quant_q8_1, q5_1);
    SET(k, Q2_K, quant_q8_k, q2_k);
    SET(k, Q3_K, quant_q8_k, q3_k);
    SET(k, Q5_K, quant_q8_k, q5_k);
}
