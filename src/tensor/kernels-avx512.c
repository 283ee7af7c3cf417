/* AVX-512 (F/BW/DQ/VL, optionally VNNI) kernels. Compiled with AVX-512 flags; only called
 * after gm_isa_supported() said so. One template per weight family, instantiated with and
 * without VNNI: with VNNI the u8 x s8 dot is one vpdpbusd; without it, vpmaddubsw+vpmaddwd.
 *
 * Register tiles: up to 4 weight rows x 4 activation columns. The 32-element family
 * (Q4_0, Q5_0, Q8_0 x Q8_0; Q4_1, Q5_1 x Q8_1) works on two blocks per 512-bit register
 * and makes the weights unsigned (q + offset), correcting with -offset * sum(activation)
 * computed once per column and used as the dpbusd accumulator seed; Q4_1/Q5_1 are unsigned
 * already and add their per-block m * s instead. The K-quants (Q2_K .. Q6_K) decode each
 * super-block to unsigned bytes, take 16-bit products (vpmaddubsw) and multiply them by
 * the sub-block scales with vpdpwssd; offsets and mins come back through the bsums.
 */
#include "kernels-x86.h"

#include <string.h>

/* Matvecs stream 4 rows at a time; software prefetch runs this many 4-row tiles ahead
 * (measured: 4 streams the decode mat-vecs at up to ~7% more bandwidth than 1). */
#define PF_TILES 4


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

/* The float vector of FLOAT_DOT (kernels-x86.h). */
#define VF __m512
#define VF_N 16
#define vf_zero _mm512_setzero_ps
#define vf_fma _mm512_fmadd_ps
#define vf_add _mm512_add_ps

/* ---- activation quantizers ----------------------------------------------------------- */

/* Q8_0 as ggml's x86 path: d = amax/127 (stored F16), id = 127/amax, round half to even.
 * With s (Q8_1), also s = F16(d * sum(q)) of the stored (saturated) quants. */
AI void quant_q8_x(const float *x, uint8_t *y, int64_t n, const bool s)
{
    const size_t bs = s ? sizeof(block_q8_1) : sizeof(block_q8_0);
    const size_t qs = s ? offsetof(block_q8_1, qs) : offsetof(block_q8_0, qs);
    const __m512 sign = _mm512_set1_ps(-0.0f), inf = _mm512_set1_ps(__builtin_inff());
    for (int64_t i = 0; i < n / QK; i++, y += bs) {
        __m512 v0 = _mm512_loadu_ps(x + i * QK), v1 = _mm512_loadu_ps(x + i * QK + 16);
        const __m512 a0 = _mm512_andnot_ps(sign, v0), a1 = _mm512_andnot_ps(sign, v1);
        if (_mm512_cmp_ps_mask(a0, inf, _CMP_NLT_UQ) | _mm512_cmp_ps_mask(a1, inf, _CMP_NLT_UQ)) {
            gm_act_block_nan(s ? GM_TYPE_Q8_1 : GM_TYPE_Q8_0, y);
            continue;
        }
        float amax = _mm512_reduce_max_ps(_mm512_max_ps(a0, a1));
        float d = amax / 127.f, id = q8_inv_scale(amax);
        uint16_t dh = (uint16_t)_cvtss_sh(d, 0);
        memcpy(y, &dh, 2);
        __m512 vid = _mm512_set1_ps(id);
        __m128i q0 = _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(v0, vid)));
        __m128i q1 = _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(v1, vid)));
        _mm_storeu_si128((__m128i *)(y + qs), q0);
        _mm_storeu_si128((__m128i *)(y + qs + 16), q1);
        if (s) {
            __m512i q32 = _mm512_add_epi32(_mm512_cvtepi8_epi32(q0), _mm512_cvtepi8_epi32(q1));
            int sum = _mm512_reduce_add_epi32(q32);
            uint16_t sh = (uint16_t)_cvtss_sh((float)sum * d, 0);
            memcpy(y + offsetof(block_q8_1, s), &sh, 2);
        }
    }
}

static void quant_q8_0(const float *x, void *y, int64_t n) { quant_q8_x(x, y, n, false); }
static void quant_q8_1(const float *x, void *y, int64_t n) { quant_q8_x(x, y, n, true); }

/* Q8_K as quantize_row_q8_K_ref: the scale comes from the first element of largest
 * magnitude, with its sign; q = min(127, round_even(-127/max * x)). */
static void quant_q8_k(const float *x, void *vy, int64_t n)
{
    block_q8_K *y = vy;
    const __m512 sign = _mm512_set1_ps(-0.0f), inf = _mm512_set1_ps(__builtin_inff());
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float *xb = x + i * QK_K;
        __m512 m = _mm512_setzero_ps();
        __mmask16 bad = 0;
        for (int j = 0; j < QK_K; j += 16) {
            const __m512 ax = _mm512_andnot_ps(sign, _mm512_loadu_ps(xb + j));
            m = _mm512_max_ps(m, ax);
            bad |= _mm512_cmp_ps_mask(ax, inf, _CMP_NLT_UQ);
        }
        if (bad) { /* also keeps INT_MIN conversions out of the bsums' sums */
            gm_act_block_nan(GM_TYPE_Q8_K, &y[i]);
            continue;
        }
        const float iscale = q8k_iscale(xb, _mm512_reduce_max_ps(m));
        if (iscale == 0.f) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
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


/* ---- Q4_0 / Q5_0 / Q8_0 x Q8_0, Q4_1 / Q5_1 x Q8_1 ---------------------------------- */

/* Two 32-byte quant runs, stride bytes apart; the second is zero if !two. */
AI __m512i ld_pair32(const uint8_t *p, size_t stride, bool two)
{
    __m512i lo = _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)p));
    if (!two)
        return _mm512_zextsi256_si512(_mm512_castsi512_si256(lo));
    return _mm512_inserti64x4(lo, _mm256_loadu_si256((const __m256i *)(p + stride)), 1);
}

/* Weight blocks b, b+1 of a row as unsigned bytes (q + offset), elements in order. */
AI __m512i fam_weights(int t, const uint8_t *blk, bool two)
{
    const size_t bs = fam_bsize(t);
    if (t == F_Q8_0)
        return _mm512_xor_si512(ld_pair32(blk + fam_qs(t), bs, two), _mm512_set1_epi8((char)fam_offset(t)));
    const uint8_t *qs0 = blk + fam_qs(t);
    __m128i x0 = _mm_loadu_si128((const __m128i *)qs0);
    __m128i x1 = two ? _mm_loadu_si128((const __m128i *)(qs0 + bs)) : _mm_setzero_si128();
    __m512i z = _mm512_castsi256_si512(_mm256_set_m128i(x1, x0));
    z = _mm512_shuffle_i64x2(z, z, _MM_SHUFFLE(1, 1, 0, 0)); /* x0 x0 x1 x1 */
    z = _mm512_mask_blend_epi64(0xCC, z, _mm512_srli_epi16(z, 4));
    z = _mm512_and_si512(z, _mm512_set1_epi8(0x0F));
    if (t == F_Q5_0 || t == F_Q5_1) {
        const size_t qh = fam_qh(t);
        uint64_t h = gm_rd_u32(blk + qh);
        if (two)
            h |= (uint64_t)gm_rd_u32(blk + bs + qh) << 32;
        z = _mm512_mask_add_epi8(z, (__mmask64)h, z, _mm512_set1_epi8(16));
    }
    return z;
}

AI __m512 scale_pair(const uint8_t *blk, size_t bs, bool two)
{
    __m128i d0 = _mm_set1_epi16((short)gm_rd_u16(blk));
    __m128i d1 = two ? _mm_set1_epi16((short)gm_rd_u16(blk + bs)) : _mm_setzero_si128();
    return _mm512_cvtph_ps(_mm256_set_m128i(d1, d0));
}

/* Prompt batches: a 4-row tile meets every column tile, so decode its weights once into a
 * small buffer (rows up to 4096 elements: 36 KB) instead of once per column tile. */
#define FAM_HOIST_MAX_PAIRS 64

/* A 4-row tile's weight block pairs decoded ahead of time: row r's pair p at w[r * np + p];
 * for Q4_1/Q5_1 also the pair's mins of all four rows (see mins_lane) at mins[p]. */
typedef struct fam_hoist {
    struct {
        __m512i u;
        __m512 dw;
    } w[4 * FAM_HOIST_MAX_PAIRS];
    __m512 mins[FAM_HOIST_MAX_PAIRS];
} fam_hoist;

/* The mins m of row r's blocks b, b+1 in lanes r and 8 + r only. OR-ed over a tile's rows
 * and multiplied by an activation scale_pair of s, one FMA per column accumulates every
 * row's m * s terms: row r's sum is lane r + lane 8 + r. */
AI __m512 mins_lane(const uint8_t *blk, int r, size_t bs, bool two)
{
    return _mm512_maskz_mov_ps((__mmask16)(0x0101u << r), scale_pair(blk + FAM_M, bs, two));
}

/* Blocks b (and b+1 when two) of an R x C tile, accumulated into acc. With pre, the weights
 * come decoded from dec instead of from w. */
AI void fam_step(int t, bool vnni, const int R, const int C, int64_t b, const bool two,
                 const uint8_t *w, size_t ldw, const uint8_t *a, size_t lda, __m512 acc[4][4],
                 __m512 macc[4], const bool pre, const fam_hoist *dec, int64_t np)
{
    const size_t bs = fam_bsize(t);
    const bool sign_trick = t == F_Q8_0 && !vnni; /* maddubs would saturate on q + 128 */
    const size_t as = fam_asize(t);
    __m512i u[4];
    __m512 dw[4], mw = _mm512_setzero_ps();
    __mmask64 neg[4];
    if (pre) {
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            u[r] = dec->w[r * np + b / 2].u;
            dw[r] = dec->w[r * np + b / 2].dw;
            neg[r] = 0;
        }
        if (fam_min(t))
            mw = dec->mins[b / 2];
    } else {
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            const uint8_t *blk = w + (size_t)r * ldw + (size_t)b * bs;
            /* Matvecs stream 4 rows at once; fetch rows PF_TILES tiles ahead early. */
            _mm_prefetch((const char *)blk + (size_t)R * ldw * PF_TILES, _MM_HINT_T0);
            _mm_prefetch((const char *)blk + (size_t)R * ldw * PF_TILES + 64, _MM_HINT_T0);
            if (sign_trick) {
                __m512i s = ld_pair32(blk + fam_qs(t), bs, two);
                neg[r] = _mm512_movepi8_mask(s);
                u[r] = _mm512_abs_epi8(s);
            } else {
                u[r] = fam_weights(t, blk, two);
                neg[r] = 0;
            }
            dw[r] = scale_pair(blk, bs, two);
            if (fam_min(t))
                mw = _mm512_or_ps(mw, mins_lane(blk, r, bs, two));
        }
    }
#pragma GCC unroll 4
    for (int c = 0; c < C; c++) {
        const uint8_t *ab = a + (size_t)c * lda + (size_t)b * as;
        __m512i av = ld_pair32(ab + fam_aqs(t), as, two);
        __m512 da = scale_pair(ab, as, two);
        __m512i corr = _mm512_setzero_si512();
        if (!sign_trick && fam_offset(t))
            corr = _mm512_sub_epi32(corr, dot_us(vnni, corr, _mm512_set1_epi8((char)fam_offset(t)), av));
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            __m512i s = sign_trick ? _mm512_mask_sub_epi8(av, neg[r], _mm512_setzero_si512(), av) : av;
            __m512i d = dot_us(vnni, corr, u[r], s);
            acc[r][c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d), _mm512_mul_ps(dw[r], da), acc[r][c]);
        }
        if (fam_min(t))
            macc[c] = _mm512_fmadd_ps(mw, scale_pair(ab + FAM_AS, as, two), macc[c]);
    }
}

/* One R x C tile over nb blocks; y[c*ldy + r]. */
AI void fam_tile_x(int t, bool vnni, const int R, const int C, int64_t nb, const uint8_t *w,
                   size_t ldw, const uint8_t *a, size_t lda, float *y, size_t ldy, const bool pre,
                   const fam_hoist *dec)
{
    const int64_t np = (nb + 1) / 2;
    __m512 acc[4][4], macc[4];
#pragma GCC unroll 4
    for (int c = 0; c < C; c++) {
        macc[c] = _mm512_setzero_ps();
#pragma GCC unroll 4
        for (int r = 0; r < R; r++)
            acc[r][c] = _mm512_setzero_ps();
    }
    int64_t b = 0;
    for (; b + 2 <= nb; b += 2)
        fam_step(t, vnni, R, C, b, true, w, ldw, a, lda, acc, macc, pre, dec, np);
    if (b < nb)
        fam_step(t, vnni, R, C, b, false, w, ldw, a, lda, acc, macc, pre, dec, np);
#pragma GCC unroll 4
    for (int c = 0; c < C; c++) {
        float m[16] = { 0 };
        if (fam_min(t))
            _mm512_storeu_ps(m, macc[c]);
#pragma GCC unroll 4
        for (int r = 0; r < R; r++)
            y[(size_t)c * ldy + (size_t)r] = hsum(acc[r][c]) + (m[r] + m[8 + r]);
    }
}

AI void fam_tile(int t, bool vnni, const int R, const int C, int64_t nb, const uint8_t *w,
                 size_t ldw, const uint8_t *a, size_t lda, float *y, size_t ldy)
{
    fam_tile_x(t, vnni, R, C, nb, w, ldw, a, lda, y, ldy, false, NULL);
}

AI void fam_gemm_hoisted(int t, bool vnni, int64_t nb, const uint8_t *w, size_t ldw,
                         const uint8_t *a, size_t lda, float *y, size_t ldy, int nc)
{
    const size_t bs = fam_bsize(t);
    const int64_t np = (nb + 1) / 2;
    fam_hoist dec;
    if (fam_min(t))
        for (int64_t p = 0; p < np; p++)
            dec.mins[p] = _mm512_setzero_ps();
    for (int r = 0; r < 4; r++)
        for (int64_t p = 0; p < np; p++) {
            const uint8_t *blk = w + (size_t)r * ldw + (size_t)(2 * p) * bs;
            bool two = 2 * p + 1 < nb;
            dec.w[r * np + p].u = two ? fam_weights(t, blk, true) : fam_weights(t, blk, false);
            dec.w[r * np + p].dw = scale_pair(blk, bs, two);
            if (fam_min(t))
                dec.mins[p] = _mm512_or_ps(dec.mins[p], mins_lane(blk, r, bs, two));
        }
    for (int c = 0; c < nc; c += 4) {
        const uint8_t *ac = a + (size_t)c * lda;
        float *yc = y + (size_t)c * ldy;
        switch (nc - c) {
        case 1: fam_tile_x(t, vnni, 4, 1, nb, w, ldw, ac, lda, yc, ldy, true, &dec); break;
        case 2: fam_tile_x(t, vnni, 4, 2, nb, w, ldw, ac, lda, yc, ldy, true, &dec); break;
        case 3: fam_tile_x(t, vnni, 4, 3, nb, w, ldw, ac, lda, yc, ldy, true, &dec); break;
        default: fam_tile_x(t, vnni, 4, 4, nb, w, ldw, ac, lda, yc, ldy, true, &dec); break;
        }
    }
}

/* ---- K-quants x Q8_K ----------------------------------------------------------------- */

/* Q6_K and Q3_K quants are decoded unsigned (q + 2^shift); the bias comes back out as
 * scale x bsums, shifted. The others carry a min term, dmin * mins x bsums, instead. */
AI int kq_bias_shift(int t) { return t == F_Q6_K ? 5 : t == F_Q3_K ? 2 : 0; }

/* Decoded super-block of one row: four 64-element chunks as unsigned bytes, the per-chunk
 * 16-bit scale vectors for vpdpwssd, and the per-sub-block factors for the bsums term. */
typedef struct kq_row {
    __m512i u[4], sc[4];
    __m256i m16;   /* 32-wide sub-blocks: mins, each twice; 16-wide: mins or scales */
    float d, dmin;
} kq_row;

/* 16-bit lanes 0-15 (the low 256 bits) set to lo, lanes 16-31 to hi: shift counts or indices. */
AI __m512i split16(int lo, int hi)
{
    return _mm512_mask_blend_epi16(0xFFFF0000u, _mm512_set1_epi16((short)lo), _mm512_set1_epi16((short)hi));
}

/* 32 bytes repeated in both halves, the low half shifted right by lo bits, the high by hi,
 * masked by m per byte, then shifted left by up. */
AI __m512i bits_2x(const uint8_t *p, int lo, int hi, __m512i m, int up)
{
    __m512i z = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)p));
    return _mm512_slli_epi16(_mm512_and_si512(_mm512_srlv_epi16(z, split16(lo, hi)), m), up);
}

/* Q4_K (no qh) and Q5_K: 32-element sub-blocks, nibble pairs per chunk, 5th bit from qh. */
AI void kq_decode_q45(const uint8_t *blk, const uint8_t *qh, const uint8_t *qs, kq_row *k)
{
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    k->d = h2f(gm_rd_u16(blk + offsetof(block_q4_K, d)));
    k->dmin = h2f(gm_rd_u16(blk + offsetof(block_q4_K, dmin)));
    uint8_t sc[8], mn[8];
    q4k_scales(blk + offsetof(block_q4_K, scales), sc, mn);
    __m512i s16 = _mm512_cvtepu8_epi16(_mm256_castsi128_si256(_mm_loadl_epi64((const __m128i *)sc)));
    __m128i m8 = _mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)mn));
    k->m16 = _mm256_set_m128i(_mm_unpackhi_epi16(m8, m8), _mm_unpacklo_epi16(m8, m8));
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) {
        k->u[j] = bits_2x(qs + 32 * j, 0, 4, m4, 0);
        if (qh)
            k->u[j] = _mm512_or_si512(k->u[j], bits_2x(qh, 2 * j, 2 * j + 1, _mm512_set1_epi8(1), 4));
        /* 16-bit lanes 0-15 take scale 2j, lanes 16-31 scale 2j+1. */
        k->sc[j] = _mm512_permutexvar_epi16(split16(2 * j, 2 * j + 1), s16);
    }
}

/* 16-bit lane i of a 64-element chunk covers elements 2i, 2i+1: 16-wide sub-block i/8. */
static const int16_t sb16_idx[32] = { 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                      2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3 };

/* Scale vectors of 16-element sub-blocks: chunk j takes scales 4j .. 4j+3. */
AI void kq_scales16(__m256i s16, kq_row *k)
{
    const __m512i s16z = _mm512_castsi256_si512(s16);
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) {
        __m512i idx = _mm512_add_epi16(_mm512_set1_epi16((short)(4 * j)),
                                       _mm512_loadu_si512((const void *)sb16_idx));
        k->sc[j] = _mm512_permutexvar_epi16(idx, s16z);
    }
}

AI void kq_decode_q6(const uint8_t *blk, kq_row *k)
{
    const __m512i m4 = _mm512_set1_epi8(0x0F), m3 = _mm512_set1_epi8(3);
    const uint8_t *ql = blk + offsetof(block_q6_K, ql), *qh = blk + offsetof(block_q6_K, qh);
    k->d = h2f(gm_rd_u16(blk + offsetof(block_q6_K, d)));
    k->dmin = 0.f;
    k->m16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(blk + offsetof(block_q6_K, scales))));
    kq_scales16(k->m16, k);
#pragma GCC unroll 2
    for (int n = 0; n < 2; n++) {
        __m512i l = _mm512_loadu_si512((const void *)(ql + 64 * n));
        __m512i h0 = bits_2x(qh + 32 * n, 0, 2, m3, 4), h1 = bits_2x(qh + 32 * n, 4, 6, m3, 4);
        k->u[2 * n] = _mm512_or_si512(_mm512_and_si512(l, m4), h0);
        k->u[2 * n + 1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l, 4), m4), h1);
    }
}

/* Q2_K and Q3_K: 2-bit planes, chunk c from qs[32(c/2) ..] at shifts 4(c%2) and +2; Q3_K
 * adds its hmask bit as bit 2 (q + 4 unsigned). */
AI void kq_decode_q23(int t, const uint8_t *blk, kq_row *k)
{
    const uint8_t *qs = blk + (t == F_Q2_K ? offsetof(block_q2_K, qs) : offsetof(block_q3_K, qs));
    __m128i s8;
    if (t == F_Q2_K) {
        k->d = h2f(gm_rd_u16(blk + offsetof(block_q2_K, d)));
        k->dmin = h2f(gm_rd_u16(blk + offsetof(block_q2_K, dmin)));
        const __m128i raw = _mm_loadu_si128((const __m128i *)(blk + offsetof(block_q2_K, scales)));
        const __m128i m4 = _mm_set1_epi8(0x0F);
        s8 = _mm_and_si128(raw, m4);
        k->m16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(raw, 4), m4));
    } else {
        k->d = h2f(gm_rd_u16(blk + offsetof(block_q3_K, d)));
        k->dmin = 0.f;
        s8 = q3k_scales(blk + offsetof(block_q3_K, scales));
        k->m16 = _mm256_cvtepi8_epi16(s8);
    }
    kq_scales16(_mm256_cvtepi8_epi16(s8), k);
    const __m512i m2 = _mm512_set1_epi8(3), m1 = _mm512_set1_epi8(1);
    const uint8_t *hm = blk + offsetof(block_q3_K, hmask);
#pragma GCC unroll 4
    for (int c = 0; c < 4; c++) {
        const int h = c / 2, s = 2 * (c % 2); /* first plane of the chunk */
        k->u[c] = bits_2x(qs + 32 * h, 2 * s, 2 * s + 2, m2, 0);
        if (t == F_Q3_K)
            k->u[c] = _mm512_or_si512(k->u[c], bits_2x(hm, 4 * h + s, 4 * h + s + 1, m1, 2));
    }
}

AI void kq_decode(int t, const uint8_t *blk, kq_row *k)
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

/* With pre, row r's super-block b comes decoded from dec[r * nb + b]. */
AI void kq_tile_x(int t, bool vnni, const int R, const int C, int64_t nb, const uint8_t *w,
                  size_t ldw, const uint8_t *a, size_t lda, float *y, size_t ldy, const bool pre,
                  const kq_row *dec)
{
    const size_t bs = kq_bsize(t);
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
                const uint8_t *ab = a + (size_t)c * lda + (size_t)b * sizeof(block_q8_K);
                const int8_t *aq = q8k_qs(ab);
                __m512i is = _mm512_setzero_si512();
#pragma GCC unroll 4
                for (int j = 0; j < 4; j++) {
                    __m512i p = _mm512_maddubs_epi16(k.u[j], _mm512_loadu_si512((const void *)(aq + 64 * j)));
                    is = dot_ww(vnni, is, p, k.sc[j]);
                }
                __m256i bsums = _mm256_loadu_si256((const __m256i *)q8k_bsums(ab));
                __m256i ms = _mm256_madd_epi16(k.m16, bsums);
                const float da = q8k_d(ab);
                if (kq_bias_shift(t)) {
                    is = _mm512_sub_epi32(is, _mm512_zextsi256_si512(_mm256_slli_epi32(ms, kq_bias_shift(t))));
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
    const size_t bs = kq_bsize(t);
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

GEMM_DRIVER(q4_0_v, fam_tile, F_Q4_0, true, QK, 4)
GEMM_DRIVER(q5_0_v, fam_tile, F_Q5_0, true, QK, 4)
GEMM_DRIVER(q8_0_v, fam_tile, F_Q8_0, true, QK, 4)
GEMM_DRIVER(q4_1_v, fam_tile, F_Q4_1, true, QK, 4)
GEMM_DRIVER(q5_1_v, fam_tile, F_Q5_1, true, QK, 4)
GEMM_DRIVER(q4_k_v, kq_tile, F_Q4_K, true, QK_K, 4)
GEMM_DRIVER(q6_k_v, kq_tile, F_Q6_K, true, QK_K, 4)
GEMM_DRIVER(q2_k_v, kq_tile, F_Q2_K, true, QK_K, 4)
GEMM_DRIVER(q3_k_v, kq_tile, F_Q3_K, true, QK_K, 4)
GEMM_DRIVER(q5_k_v, kq_tile, F_Q5_K, true, QK_K, 4)
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
HOIST_GEMM(q2_k_v, F_Q2_K, true, QK_K, KQ_HOIST_MAX_SB, kq_gemm_hoisted)
HOIST_GEMM(q3_k_v, F_Q3_K, true, QK_K, KQ_HOIST_MAX_SB, kq_gemm_hoisted)
HOIST_GEMM(q5_k_v, F_Q5_K, true, QK_K, KQ_HOIST_MAX_SB, kq_gemm_hoisted)

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
FAM_GEMM(q4_1_v, F_Q4_1)
FAM_GEMM(q5_1_v, F_Q5_1)
GEMM_DRIVER(q4_0_n, fam_tile, F_Q4_0, false, QK, 4)
GEMM_DRIVER(q5_0_n, fam_tile, F_Q5_0, false, QK, 4)
GEMM_DRIVER(q8_0_n, fam_tile, F_Q8_0, false, QK, 4)
GEMM_DRIVER(q4_1_n, fam_tile, F_Q4_1, false, QK, 4)
GEMM_DRIVER(q5_1_n, fam_tile, F_Q5_1, false, QK, 4)
GEMM_DRIVER(q4_k_n, kq_tile, F_Q4_K, false, QK_K, 4)
GEMM_DRIVER(q6_k_n, kq_tile, F_Q6_K, false, QK_K, 4)
GEMM_DRIVER(q2_k_n, kq_tile, F_Q2_K, false, QK_K, 4)
GEMM_DRIVER(q3_k_n, kq_tile, F_Q3_K, false, QK_K, 4)
GEMM_DRIVER(q5_k_n, kq_tile, F_Q5_K, false, QK_K, 4)
HOIST_GEMM(q4_k_n, F_Q4_K, false, QK_K, KQ_HOIST_MAX_SB, kq_gemm_hoisted)
HOIST_GEMM(q6_k_n, F_Q6_K, false, QK_K, KQ_HOIST_MAX_SB, kq_gemm_hoisted)
HOIST_GEMM(q2_k_n, F_Q2_K, false, QK_K, KQ_HOIST_MAX_SB, kq_gemm_hoisted)
HOIST_GEMM(q3_k_n, F_Q3_K, false, QK_K, KQ_HOIST_MAX_SB, kq_gemm_hoisted)
HOIST_GEMM(q5_k_n, F_Q5_K, false, QK_K, KQ_HOIST_MAX_SB, kq_gemm_hoisted)

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
            wv[r] = ld_f16_mask((const uint8_t *)(w + (size_t)r * ldw), i, m);
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

/* As SET, with the hoisting gemm. */
#define SET_H(k, T, Q, NAME)                                                              \
    do {                                                                                  \
        SET(k, T, Q, NAME);                                                               \
        (k)->type[GM_TYPE_##T].gemm = NAME##_gemm_h;                                      \
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
        SET_H(k, Q4_1, quant_q8_1, q4_1_v);
        SET_H(k, Q5_1, quant_q8_1, q5_1_v);
        SET_H(k, Q2_K, quant_q8_k, q2_k_v);
        SET_H(k, Q3_K, quant_q8_k, q3_k_v);
        SET_H(k, Q5_K, quant_q8_k, q5_k_v);
    } else {
        SET(k, Q4_0, quant_q8_0, q4_0_n);
        SET(k, Q5_0, quant_q8_0, q5_0_n);
        SET(k, Q8_0, quant_q8_0, q8_0_n);
        SET(k, Q4_K, quant_q8_k, q4_k_n);
        SET(k, Q6_K, quant_q8_k, q6_k_n);
        k->type[GM_TYPE_Q4_K].gemm = q4_k_n_gemm_h;
        k->type[GM_TYPE_Q6_K].gemm = q6_k_n_gemm_h;
        SET(k, Q4_1, quant_q8_1, q4_1_n);
        SET(k, Q5_1, quant_q8_1, q5_1_n);
        SET_H(k, Q2_K, quant_q8_k, q2_k_n);
        SET_H(k, Q3_K, quant_q8_k, q3_k_n);
        SET_H(k, Q5_K, quant_q8_k, q5_k_n);
    }
}
