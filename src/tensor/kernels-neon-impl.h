/* NEON kernel bodies, included by kernels-neon.c (baseline ARMv8-A) and
 * kernels-neon-dotprod.c (built with +dotprod, where __ARM_FEATURE_DOTPROD is defined).
 * Not a normal header: every definition is static and each includer exports one installer.
 *
 * The int8 dot of 16 pairs is SDOT with dotprod, else SMULL + SADALP (each 16-bit product
 * fits; two summed could not for -128 x -128, so they are widened before adding). Block and
 * super-block integer sums are reduced and scaled in the reference's order, so the quantized
 * dots usually match quants-ref.c bit for bit. Activation quantizers must match exactly:
 * FCVTNS rounds half to even like the x86 path ggml's Q8_0 follows; NaN is forced to -128
 * as there (ARM would give 0), and FMAXNM ignores NaN as fmaxf does.
 */
#ifndef GM_KERNELS_NEON_IMPL_H
#define GM_KERNELS_NEON_IMPL_H

#include "kernels.h"

#include "kernels-simd.h"

#include <arm_neon.h>
#include <string.h>

AI float h2f(uint16_t h) { return vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16(h))), 0); }
AI uint16_t f2h(float f) { return vget_lane_u16(vreinterpret_u16_f16(vcvt_f16_f32(vdupq_n_f32(f))), 0); }

AI int32x4_t dot16(int32x4_t acc, int8x16_t a, int8x16_t b)
{
#ifdef __ARM_FEATURE_DOTPROD
    return vdotq_s32(acc, a, b);
#else
    acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(a), vget_low_s8(b)));
    return vpadalq_s16(acc, vmull_high_s8(a, b));
#endif
}

/* Sum of the 32 products of two 32-byte int8 runs given as vector pairs. */
AI int32_t dot32(int8x16_t w0, int8x16_t w1, const int8_t *a)
{
    return vaddvq_s32(dot16(dot16(vdupq_n_s32(0), w0, vld1q_s8(a)), w1, vld1q_s8(a + 16)));
}

AI int8x16_t s8(uint8x16_t v) { return vreinterpretq_s8_u8(v); }

/* ---- activation quantizers ----------------------------------------------------------- */

/* Round half to even; NaN -> INT32_MIN (then -128 after saturation, as the reference). */
AI int32x4_t cvt_rne(float32x4_t v)
{
    return vbslq_s32(vceqq_f32(v, v), vcvtnq_s32_f32(v), vdupq_n_s32(INT32_MIN));
}

/* 16 int32 -> 16 int8 with saturation, in order. */
AI int8x16_t pack16(int32x4_t a, int32x4_t b, int32x4_t c, int32x4_t d)
{
    return vcombine_s8(vqmovn_s16(vcombine_s16(vqmovn_s32(a), vqmovn_s32(b))),
                       vqmovn_s16(vcombine_s16(vqmovn_s32(c), vqmovn_s32(d))));
}

/* Q8_0 (s false) and Q8_1 (s = F16(d * sum of the stored quants)). */
AI void quant_q8_x(const float *x, uint8_t *y, int64_t n, const bool s)
{
    const size_t bs = s ? sizeof(block_q8_1) : sizeof(block_q8_0);
    const size_t qs = s ? offsetof(block_q8_1, qs) : offsetof(block_q8_0, qs);
    for (int64_t i = 0; i < n / QK; i++, y += bs) {
        const float *xb = x + i * QK;
        float32x4_t v[8], m = vdupq_n_f32(0.f);
        uint32x4_t bad = vdupq_n_u32(0);
        for (int j = 0; j < 8; j++) {
            v[j] = vld1q_f32(xb + 4 * j);
            m = vmaxnmq_f32(m, vabsq_f32(v[j]));
            bad = vorrq_u32(bad, vmvnq_u32(vcltq_f32(vabsq_f32(v[j]), vdupq_n_f32(__builtin_inff()))));
        }
        if (vmaxvq_u32(bad)) {
            gm_act_block_nan(s ? GM_TYPE_Q8_1 : GM_TYPE_Q8_0, y);
            continue;
        }
        const float amax = vmaxnmvq_f32(m);
        const float d = amax / 127.f, id = q8_inv_scale(amax);
        const uint16_t dh = f2h(d);
        memcpy(y, &dh, 2);
        int8x16_t q[2];
        for (int h = 0; h < 2; h++)
            q[h] = pack16(cvt_rne(vmulq_n_f32(v[4 * h], id)), cvt_rne(vmulq_n_f32(v[4 * h + 1], id)),
                          cvt_rne(vmulq_n_f32(v[4 * h + 2], id)), cvt_rne(vmulq_n_f32(v[4 * h + 3], id)));
        vst1q_s8((int8_t *)(y + qs), q[0]);
        vst1q_s8((int8_t *)(y + qs + 16), q[1]);
        if (s) {
            const int sum = vaddlvq_s8(q[0]) + vaddlvq_s8(q[1]);
            const uint16_t sh = f2h((float)sum * d);
            memcpy(y + offsetof(block_q8_1, s), &sh, 2);
        }
    }
}

static void quant_q8_0(const float *x, void *y, int64_t n) { quant_q8_x(x, y, n, false); }
static void quant_q8_1(const float *x, void *y, int64_t n) { quant_q8_x(x, y, n, true); }

/* Q8_K as quantize_row_q8_K_ref: the scale comes from the first element of largest
 * magnitude (signed), clamp to 127 only (non-finite blocks never get here). */
static void quant_q8_k(const float *x, void *vy, int64_t n)
{
    block_q8_K *y = vy;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float *xb = x + i * QK_K;
        float32x4_t m = vdupq_n_f32(0.f);
        uint32x4_t bad = vdupq_n_u32(0);
        for (int j = 0; j < QK_K; j += 4) {
            const float32x4_t ax = vabsq_f32(vld1q_f32(xb + j));
            m = vmaxnmq_f32(m, ax);
            bad = vorrq_u32(bad, vmvnq_u32(vcltq_f32(ax, vdupq_n_f32(__builtin_inff()))));
        }
        if (vmaxvq_u32(bad)) {
            gm_act_block_nan(GM_TYPE_Q8_K, &y[i]);
            continue;
        }
        const float iscale = q8k_iscale(xb, vmaxnmvq_f32(m));
        if (iscale == 0.f) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        for (int j = 0; j < QK_K; j += 16) {
            int32x4_t q[4];
            for (int k = 0; k < 4; k++)
                q[k] = vminq_s32(vcvtnq_s32_f32(vmulq_n_f32(vld1q_f32(xb + j + 4 * k), iscale)),
                                 vdupq_n_s32(127));
            const int8x16_t p = pack16(q[0], q[1], q[2], q[3]);
            vst1q_s8(y[i].qs + j, p);
            y[i].bsums[j / 16] = (int16_t)vaddlvq_s8(p);
        }
        y[i].d = 1.f / iscale;
    }
}

static void quant_f16(const float *x, void *vy, int64_t n)
{
    uint16_t *y = vy;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4)
        vst1_u16(y + i, vreinterpret_u16_f16(vcvt_f16_f32(vld1q_f32(x + i))));
    for (; i < n; i++)
        y[i] = f2h(x[i]);
}

/* ---- float dots ---------------------------------------------------------------------- */

/* Eight elements as two float vectors. */
typedef struct f8 { float32x4_t lo, hi; } f8;

AI f8 ld_f32(const void *p, int64_t i)
{
    const float *f = (const float *)p + i;
    return (f8){ vld1q_f32(f), vld1q_f32(f + 4) };
}
AI f8 ld_f16(const void *p, int64_t i)
{
    const float16x8_t h = vreinterpretq_f16_u16(vld1q_u16((const uint16_t *)p + i));
    return (f8){ vcvt_f32_f16(vget_low_f16(h)), vcvt_high_f32_f16(h) };
}
AI f8 ld_bf16(const void *p, int64_t i)
{
    const uint16x8_t h = vld1q_u16((const uint16_t *)p + i);
    return (f8){ vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(h), 16)),
                 vreinterpretq_f32_u32(vshll_high_n_u16(h, 16)) };
}
AI float sc_f16(const void *p, int64_t i) { return h2f(((const uint16_t *)p)[i]); }

#define FLOAT_DOT(NAME, LD, SC)                                                           \
    static void NAME(int64_t n, float *s, const void *w, const void *a)                   \
    {                                                                                     \
        float32x4_t s0 = vdupq_n_f32(0.f), s1 = s0, s2 = s0, s3 = s0;                     \
        int64_t i = 0;                                                                    \
        for (; i + 16 <= n; i += 16) {                                                    \
            const f8 w0 = LD(w, i), a0 = LD(a, i), w1 = LD(w, i + 8), a1 = LD(a, i + 8);  \
            s0 = vfmaq_f32(s0, w0.lo, a0.lo);                                             \
            s1 = vfmaq_f32(s1, w0.hi, a0.hi);                                             \
            s2 = vfmaq_f32(s2, w1.lo, a1.lo);                                             \
            s3 = vfmaq_f32(s3, w1.hi, a1.hi);                                             \
        }                                                                                 \
        for (; i + 8 <= n; i += 8) {                                                      \
            const f8 w0 = LD(w, i), a0 = LD(a, i);                                        \
            s0 = vfmaq_f32(s0, w0.lo, a0.lo);                                             \
            s1 = vfmaq_f32(s1, w0.hi, a0.hi);                                             \
        }                                                                                 \
        float r = vaddvq_f32(vaddq_f32(vaddq_f32(s0, s1), vaddq_f32(s2, s3)));            \
        for (; i < n; i++)                                                                \
            r += SC(w, i) * SC(a, i);                                                     \
        *s = r;                                                                           \
    }

FLOAT_DOT(dot_f32, ld_f32, sc_f32)
FLOAT_DOT(dot_f16, ld_f16, sc_f16)
FLOAT_DOT(dot_bf16, ld_bf16, sc_bf16)

/* ---- Q4_0 / Q5_0 / Q8_0 x Q8_0, Q4_1 / Q5_1 x Q8_1 ---------------------------------- */

static const uint8_t bit_of_lane[16] = { 1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128 };

/* Byte i = 16 when bit i of the 16-bit h is set (the 5th bit of Q5 quants). */
AI uint8x16_t fifth_bits(uint32_t h)
{
    const uint8x16_t sel = vcombine_u8(vdup_n_u8((uint8_t)h), vdup_n_u8((uint8_t)(h >> 8)));
    return vandq_u8(vtstq_u8(sel, vld1q_u8(bit_of_lane)), vdupq_n_u8(16));
}

/* One weight block as 32 int8 in element order: q - offset (q for Q4_1/Q5_1). */
AI void fam_weights(int t, const uint8_t *blk, int8x16_t *w0, int8x16_t *w1)
{
    if (t == F_Q8_0) {
        *w0 = vld1q_s8((const int8_t *)blk + fam_qs(t));
        *w1 = vld1q_s8((const int8_t *)blk + fam_qs(t) + 16);
        return;
    }
    const uint8x16_t x = vld1q_u8(blk + fam_qs(t));
    uint8x16_t lo = vandq_u8(x, vdupq_n_u8(0x0F)), hi = vshrq_n_u8(x, 4);
    if (t == F_Q5_0 || t == F_Q5_1) {
        const uint32_t qh = gm_rd_u32(blk + fam_qh(t));
        lo = vorrq_u8(lo, fifth_bits(qh));
        hi = vorrq_u8(hi, fifth_bits(qh >> 16));
    }
    const int8x16_t bias = vdupq_n_s8((int8_t)fam_offset(t));
    *w0 = vsubq_s8(s8(lo), bias);
    *w1 = vsubq_s8(s8(hi), bias);
}

/* Per block as the reference: sumi * (d_w * d_a), or (d_w * d_a) * sumi + m_w * s_a. */
AI float fam_dot(int t, int64_t nb, const uint8_t *w, const uint8_t *a)
{
    const size_t bs = fam_bsize(t), as = fam_asize(t);
    float sumf = 0.f;
    for (int64_t b = 0; b < nb; b++, w += bs, a += as) {
        int8x16_t w0, w1;
        fam_weights(t, w, &w0, &w1);
        const float sumi = (float)dot32(w0, w1, (const int8_t *)(a + fam_aqs(t)));
        const float dd = h2f(gm_rd_u16(w)) * h2f(gm_rd_u16(a));
        if (fam_min(t))
            sumf += dd * sumi + h2f(gm_rd_u16(w + FAM_M)) * h2f(gm_rd_u16(a + FAM_AS));
        else
            sumf += sumi * dd;
    }
    return sumf;
}

#define FAM_DOT(NAME, T)                                                                  \
    static void NAME(int64_t n, float *s, const void *w, const void *a)                   \
    {                                                                                     \
        *s = fam_dot(T, n / QK, w, a);                                                    \
    }

FAM_DOT(dot_q4_0, F_Q4_0)
FAM_DOT(dot_q5_0, F_Q5_0)
FAM_DOT(dot_q8_0, F_Q8_0)
FAM_DOT(dot_q4_1, F_Q4_1)
FAM_DOT(dot_q5_1, F_Q5_1)

/* ---- K-quants x Q8_K ----------------------------------------------------------------- */

/* sum_k m[k] * bsums[k] over the 16 sub-blocks of 16 (m as 16 unsigned bytes). */
AI int32_t mins_x_bsums16(uint8x16_t m, const uint8_t *a)
{
    const int16_t *bs = q8k_bsums(a);
    const int16x8_t m0 = vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(m)));
    const int16x8_t m1 = vreinterpretq_s16_u16(vmovl_high_u8(m));
    const int16x8_t b0 = vld1q_s16(bs), b1 = vld1q_s16(bs + 8);
    int32x4_t p = vmull_s16(vget_low_s16(m0), vget_low_s16(b0));
    p = vmlal_high_s16(p, m0, b0);
    p = vmlal_s16(p, vget_low_s16(m1), vget_low_s16(b1));
    p = vmlal_high_s16(p, m1, b1);
    return vaddvq_s32(p);
}

/* Q4_K (qh NULL) and Q5_K: 8 sub-blocks of 32 with 6-bit scales and mins. */
AI float k45_dot(int64_t nb, const uint8_t *w, const uint8_t *a, const bool q5)
{
    const size_t bs = q5 ? sizeof(block_q5_K) : sizeof(block_q4_K);
    float sumf = 0.f;
    for (int64_t i = 0; i < nb; i++, w += bs, a += sizeof(block_q8_K)) {
        uint8_t sc[8], mn[8];
        q4k_scales(w + offsetof(block_q4_K, scales), sc, mn);
        /* 32-wide sub-block k spans bsums 2k and 2k+1: repeat each min twice */
        const uint8x8_t m8 = vld1_u8(mn);
        const int32_t sum_m = mins_x_bsums16(vzip1q_u8(vcombine_u8(m8, m8), vcombine_u8(m8, m8)), a);
        const uint8_t *qs = w + (q5 ? offsetof(block_q5_K, qs) : offsetof(block_q4_K, qs));
        const uint8_t *qh = w + offsetof(block_q5_K, qh);
        const uint8x16_t h0 = q5 ? vld1q_u8(qh) : vdupq_n_u8(0), h1 = q5 ? vld1q_u8(qh + 16) : vdupq_n_u8(0);
        const int8_t *qa = q8k_qs(a);
        int32_t sum_q = 0;
        for (int c = 0; c < 4; c++) {
            const uint8x16_t x0 = vld1q_u8(qs + 32 * c), x1 = vld1q_u8(qs + 32 * c + 16);
            uint8x16_t l0 = vandq_u8(x0, vdupq_n_u8(0x0F)), l1 = vandq_u8(x1, vdupq_n_u8(0x0F));
            uint8x16_t u0 = vshrq_n_u8(x0, 4), u1 = vshrq_n_u8(x1, 4);
            if (q5) { /* bit 2c of qh[l] tops the low nibbles, bit 2c+1 the high */
                const uint8x16_t bl = vdupq_n_u8((uint8_t)(1u << (2 * c))), bh = vdupq_n_u8((uint8_t)(2u << (2 * c)));
                const uint8x16_t sixteen = vdupq_n_u8(16);
                l0 = vorrq_u8(l0, vandq_u8(vtstq_u8(h0, bl), sixteen));
                l1 = vorrq_u8(l1, vandq_u8(vtstq_u8(h1, bl), sixteen));
                u0 = vorrq_u8(u0, vandq_u8(vtstq_u8(h0, bh), sixteen));
                u1 = vorrq_u8(u1, vandq_u8(vtstq_u8(h1, bh), sixteen));
            }
            sum_q += sc[2 * c] * dot32(s8(l0), s8(l1), qa + 64 * c);
            sum_q += sc[2 * c + 1] * dot32(s8(u0), s8(u1), qa + 64 * c + 32);
        }
        const float da = q8k_d(a);
        sumf += h2f(gm_rd_u16(w + offsetof(block_q4_K, d))) * da * (float)sum_q;
        sumf -= h2f(gm_rd_u16(w + offsetof(block_q4_K, dmin))) * da * (float)sum_m;
    }
    return sumf;
}

static void dot_q4_k(int64_t n, float *s, const void *w, const void *a) { *s = k45_dot(n / QK_K, w, a, false); }
static void dot_q5_k(int64_t n, float *s, const void *w, const void *a) { *s = k45_dot(n / QK_K, w, a, true); }

/* Q6_K: 16 bytes j of one 128-element half (ql at L, qh at H) as the unsigned 6-bit values
 * of elements l + 32p, p = 0..3 (sub-block 8h + 2p + j). */
AI void q6_unpack(const uint8_t *L, const uint8_t *H, int j, uint8x16_t q[4])
{
    const uint8x16_t m4 = vdupq_n_u8(0x0F), m30 = vdupq_n_u8(0x30);
    const uint8x16_t l0 = vld1q_u8(L + 16 * j), l2 = vld1q_u8(L + 32 + 16 * j), hb = vld1q_u8(H + 16 * j);
    q[0] = vorrq_u8(vandq_u8(l0, m4), vandq_u8(vshlq_n_u8(hb, 4), m30));
    q[1] = vorrq_u8(vandq_u8(l2, m4), vandq_u8(vshlq_n_u8(hb, 2), m30));
    q[2] = vorrq_u8(vshrq_n_u8(l0, 4), vandq_u8(hb, m30));
    q[3] = vorrq_u8(vshrq_n_u8(l2, 4), vandq_u8(vshrq_n_u8(hb, 2), m30));
}

/* Q6_K: 16 sub-blocks of 16, q = (4 low bits of ql | 2 bits of qh << 4) - 32, int8 scales. */
static void dot_q6_k(int64_t n, float *s, const void *vw, const void *va)
{
    const uint8_t *w = vw, *a = va;
    const int8x16_t off = vdupq_n_s8(32);
    float sumf = 0.f;
    for (int64_t i = 0; i < n / QK_K; i++, w += sizeof(block_q6_K), a += sizeof(block_q8_K)) {
        const int8_t *sc = (const int8_t *)w + offsetof(block_q6_K, scales), *qa = q8k_qs(a);
        int32_t sum_q = 0;
        for (int h = 0; h < 2; h++) {
            const uint8_t *L = w + offsetof(block_q6_K, ql) + 64 * h, *H = w + offsetof(block_q6_K, qh) + 32 * h;
            for (int j = 0; j < 2; j++) {
                uint8x16_t q[4]; /* element l+32p of this half is sub-block 8h + 2p + j */
                q6_unpack(L, H, j, q);
                for (int p = 0; p < 4; p++) {
                    const int k = 8 * h + 2 * p + j;
                    const int32x4_t d = dot16(vdupq_n_s32(0), vsubq_s8(s8(q[p]), off), vld1q_s8(qa + 16 * k));
                    sum_q += sc[k] * vaddvq_s32(d);
                }
            }
        }
        sumf += h2f(gm_rd_u16(w + offsetof(block_q6_K, d))) * q8k_d(a) * (float)sum_q;
    }
    *s = sumf;
}

/* Q2_K: 16 sub-blocks of 16, 2-bit quants, 4-bit scale and min per sub-block. */
static void dot_q2_k(int64_t n, float *s, const void *vw, const void *va)
{
    const uint8_t *w = vw, *a = va;
    const uint8x16_t m3 = vdupq_n_u8(3);
    float sumf = 0.f;
    for (int64_t i = 0; i < n / QK_K; i++, w += sizeof(block_q2_K), a += sizeof(block_q8_K)) {
        const uint8_t *sb = w + offsetof(block_q2_K, scales), *qs = w + offsetof(block_q2_K, qs);
        const uint8x16_t scales = vld1q_u8(sb);
        const int32_t sum_m = mins_x_bsums16(vshrq_n_u8(scales, 4), a);
        const int8_t *qa = q8k_qs(a);
        int32_t sum_q = 0;
        for (int h = 0; h < 2; h++) {
            const uint8x16_t x0 = vld1q_u8(qs + 32 * h), x1 = vld1q_u8(qs + 16 + 32 * h);
            for (int j = 0; j < 4; j++) {
                const int8x16_t sh = vdupq_n_s8((int8_t)(-2 * j)); /* negative: shift right */
                const int k = 8 * h + 2 * j;
                const int32x4_t d0 = dot16(vdupq_n_s32(0), s8(vandq_u8(vshlq_u8(x0, sh), m3)), vld1q_s8(qa + 16 * k));
                const int32x4_t d1 = dot16(vdupq_n_s32(0), s8(vandq_u8(vshlq_u8(x1, sh), m3)), vld1q_s8(qa + 16 * k + 16));
                sum_q += (sb[k] & 0xF) * vaddvq_s32(d0) + (sb[k + 1] & 0xF) * vaddvq_s32(d1);
            }
        }
        const float da = q8k_d(a);
        sumf += h2f(gm_rd_u16(w + offsetof(block_q2_K, d))) * da * (float)sum_q;
        sumf -= h2f(gm_rd_u16(w + offsetof(block_q2_K, dmin))) * da * (float)sum_m;
    }
    *s = sumf;
}

/* Q3_K: Q2_K's low bits, a high bit from hmask (clear: minus 4), signed 6-bit scales. */
static void dot_q3_k(int64_t n, float *s, const void *vw, const void *va)
{
    const uint8_t *w = vw, *a = va;
    const uint8x16_t m3 = vdupq_n_u8(3), four = vdupq_n_u8(4);
    float sumf = 0.f;
    for (int64_t i = 0; i < n / QK_K; i++, w += sizeof(block_q3_K), a += sizeof(block_q8_K)) {
        const uint8_t *sb = w + offsetof(block_q3_K, scales), *qs = w + offsetof(block_q3_K, qs);
        const uint8_t *hm = w + offsetof(block_q3_K, hmask);
        int sc[16];
        for (int k = 0; k < 16; k++) {
            const int low4 = k < 8 ? (sb[k] & 0xF) : (sb[k - 8] >> 4);
            sc[k] = (low4 | (((sb[8 + k % 4] >> (2 * (k / 4))) & 3) << 4)) - 32;
        }
        const uint8x16_t hm0 = vld1q_u8(hm), hm1 = vld1q_u8(hm + 16);
        const int8_t *qa = q8k_qs(a);
        int32_t sum_q = 0;
        for (int h = 0; h < 2; h++) {
            const uint8x16_t x0 = vld1q_u8(qs + 32 * h), x1 = vld1q_u8(qs + 16 + 32 * h);
            for (int j = 0; j < 4; j++) {
                const int8x16_t sh = vdupq_n_s8((int8_t)(-2 * j));
                const uint8x16_t bit = vdupq_n_u8((uint8_t)(1u << (4 * h + j)));
                const uint8x16_t q0 = vsubq_u8(vandq_u8(vshlq_u8(x0, sh), m3), vbicq_u8(four, vtstq_u8(hm0, bit)));
                const uint8x16_t q1 = vsubq_u8(vandq_u8(vshlq_u8(x1, sh), m3), vbicq_u8(four, vtstq_u8(hm1, bit)));
                const int k = 8 * h + 2 * j;
                sum_q += sc[k] * vaddvq_s32(dot16(vdupq_n_s32(0), s8(q0), vld1q_s8(qa + 16 * k)));
                sum_q += sc[k + 1] * vaddvq_s32(dot16(vdupq_n_s32(0), s8(q1), vld1q_s8(qa + 16 * k + 16)));
            }
        }
        sumf += h2f(gm_rd_u16(w + offsetof(block_q3_K, d))) * q8k_d(a) * (float)sum_q;
    }
    *s = sumf;
}

/* ---- K-quant tiles: each weight super-block is decoded once for up to 8 columns ------- */

/* One super-block as int8 quants in element order and per-16 scales and mins (the 32-wide
 * types repeat theirs), so one column loop serves every K type. */
typedef struct kq_dec {
    int8_t q[QK_K];
    int16_t sc[16], mn[16];
    float d, dmin;
} kq_dec;

AI void kq_decode_q45(const uint8_t *w, kq_dec *k, const bool q5)
{
    uint8_t sc[8], mn[8];
    q4k_scales(w + offsetof(block_q4_K, scales), sc, mn);
    for (int j = 0; j < 16; j++) {
        k->sc[j] = sc[j / 2];
        k->mn[j] = mn[j / 2];
    }
    k->d = h2f(gm_rd_u16(w + offsetof(block_q4_K, d)));
    k->dmin = h2f(gm_rd_u16(w + offsetof(block_q4_K, dmin)));
    const uint8_t *qs = w + (q5 ? offsetof(block_q5_K, qs) : offsetof(block_q4_K, qs));
    const uint8_t *qh = w + offsetof(block_q5_K, qh);
    const uint8x16_t h0 = q5 ? vld1q_u8(qh) : vdupq_n_u8(0), h1 = q5 ? vld1q_u8(qh + 16) : vdupq_n_u8(0);
    const uint8x16_t m4 = vdupq_n_u8(0x0F), sixteen = vdupq_n_u8(16);
    for (int c = 0; c < 4; c++) {
        const uint8x16_t x0 = vld1q_u8(qs + 32 * c), x1 = vld1q_u8(qs + 32 * c + 16);
        const uint8x16_t bl = vdupq_n_u8((uint8_t)(1u << (2 * c))), bh = vdupq_n_u8((uint8_t)(2u << (2 * c)));
        const uint8x16_t v[4] = {
            vorrq_u8(vandq_u8(x0, m4), vandq_u8(vtstq_u8(h0, bl), sixteen)),
            vorrq_u8(vandq_u8(x1, m4), vandq_u8(vtstq_u8(h1, bl), sixteen)),
            vorrq_u8(vshrq_n_u8(x0, 4), vandq_u8(vtstq_u8(h0, bh), sixteen)),
            vorrq_u8(vshrq_n_u8(x1, 4), vandq_u8(vtstq_u8(h1, bh), sixteen)),
        };
        for (int p = 0; p < 4; p++)
            vst1q_s8(k->q + 64 * c + 16 * p, s8(v[p]));
    }
}

AI void kq_decode_q6(const uint8_t *w, kq_dec *k)
{
    for (int j = 0; j < 16; j++)
        k->sc[j] = ((const int8_t *)w)[offsetof(block_q6_K, scales) + j];
    k->d = h2f(gm_rd_u16(w + offsetof(block_q6_K, d)));
    k->dmin = 0.f;
    for (int h = 0; h < 2; h++) {
        const uint8_t *L = w + offsetof(block_q6_K, ql) + 64 * h, *H = w + offsetof(block_q6_K, qh) + 32 * h;
        for (int j = 0; j < 2; j++) {
            uint8x16_t q[4];
            q6_unpack(L, H, j, q);
            for (int p = 0; p < 4; p++)
                vst1q_s8(k->q + 128 * h + 32 * p + 16 * j, vsubq_s8(s8(q[p]), vdupq_n_s8(32)));
        }
    }
}

/* Q2_K (q3 false) and Q3_K: 2-bit planes, Q3_K with the hmask bit (clear: minus 4). */
AI void kq_decode_q23(const uint8_t *w, kq_dec *k, const bool q3)
{
    const uint8x16_t m3 = vdupq_n_u8(3), four = vdupq_n_u8(4);
    const uint8_t *qs = w + (q3 ? offsetof(block_q3_K, qs) : offsetof(block_q2_K, qs));
    if (q3) {
        const uint8_t *sb = w + offsetof(block_q3_K, scales);
        for (int j = 0; j < 16; j++) {
            const int low4 = j < 8 ? (sb[j] & 0xF) : (sb[j - 8] >> 4);
            k->sc[j] = (int16_t)((low4 | (((sb[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32);
            k->mn[j] = 0;
        }
        k->d = h2f(gm_rd_u16(w + offsetof(block_q3_K, d)));
        k->dmin = 0.f;
    } else {
        const uint8_t *sb = w + offsetof(block_q2_K, scales);
        for (int j = 0; j < 16; j++) {
            k->sc[j] = sb[j] & 0xF;
            k->mn[j] = sb[j] >> 4;
        }
        k->d = h2f(gm_rd_u16(w + offsetof(block_q2_K, d)));
        k->dmin = h2f(gm_rd_u16(w + offsetof(block_q2_K, dmin)));
    }
    const uint8_t *hm = w + offsetof(block_q3_K, hmask);
    const uint8x16_t hm0 = q3 ? vld1q_u8(hm) : vdupq_n_u8(0), hm1 = q3 ? vld1q_u8(hm + 16) : vdupq_n_u8(0);
    for (int h = 0; h < 2; h++) {
        const uint8x16_t x0 = vld1q_u8(qs + 32 * h), x1 = vld1q_u8(qs + 32 * h + 16);
        for (int j = 0; j < 4; j++) {
            const int8x16_t sh = vdupq_n_s8((int8_t)(-2 * j));
            uint8x16_t q0 = vandq_u8(vshlq_u8(x0, sh), m3), q1 = vandq_u8(vshlq_u8(x1, sh), m3);
            if (q3) {
                const uint8x16_t bit = vdupq_n_u8((uint8_t)(1u << (4 * h + j)));
                q0 = vsubq_u8(q0, vbicq_u8(four, vtstq_u8(hm0, bit)));
                q1 = vsubq_u8(q1, vbicq_u8(four, vtstq_u8(hm1, bit)));
            }
            vst1q_s8(k->q + 128 * h + 32 * j, s8(q0));
            vst1q_s8(k->q + 128 * h + 32 * j + 16, s8(q1));
        }
    }
}

AI void kq_decode(int t, const uint8_t *w, kq_dec *k)
{
    switch (t) {
    case F_Q2_K: kq_decode_q23(w, k, false); break;
    case F_Q3_K: kq_decode_q23(w, k, true); break;
    case F_Q4_K: kq_decode_q45(w, k, false); break;
    case F_Q5_K: kq_decode_q45(w, k, true); break;
    default: kq_decode_q6(w, k); break;
    }
}

/* acc += one column's super-block, in the reference's order (scaled sums, then mins). */
AI float kq_column(int t, const kq_dec *k, const uint8_t *a, float acc)
{
    const int8_t *qa = q8k_qs(a);
    int32x4_t s = vdupq_n_s32(0);
    for (int j = 0; j < 16; j++)
        s = vmlaq_n_s32(s, dot16(vdupq_n_s32(0), vld1q_s8(k->q + 16 * j), vld1q_s8(qa + 16 * j)), k->sc[j]);
    const float da = q8k_d(a);
    acc += k->d * da * (float)vaddvq_s32(s);
    if (kq_min(t)) {
        const int16_t *bs = q8k_bsums(a);
        const int16x8_t m0 = vld1q_s16(k->mn), m1 = vld1q_s16(k->mn + 8);
        const int16x8_t b0 = vld1q_s16(bs), b1 = vld1q_s16(bs + 8);
        int32x4_t p = vmull_s16(vget_low_s16(m0), vget_low_s16(b0));
        p = vmlal_high_s16(p, m0, b0);
        p = vmlal_s16(p, vget_low_s16(m1), vget_low_s16(b1));
        p = vmlal_high_s16(p, m1, b1);
        acc -= k->dmin * da * (float)vaddvq_s32(p);
    }
    return acc;
}

AI void kq_gemm(int t, int64_t n, const uint8_t *w, size_t ldw, const uint8_t *a, size_t lda, float *y, size_t ldy,
                int nr, int nc)
{
    enum { CMAX = 8 };
    const size_t bs = kq_bsize(t);
    kq_dec k;
    for (int c0 = 0; c0 < nc; c0 += CMAX) {
        const int C = nc - c0 < CMAX ? nc - c0 : CMAX;
        for (int r = 0; r < nr; r++) {
            float acc[CMAX] = { 0 };
            for (int64_t b = 0; b < n / QK_K; b++) {
                kq_decode(t, w + (size_t)r * ldw + (size_t)b * bs, &k);
                for (int c = 0; c < C; c++)
                    acc[c] = kq_column(t, &k, a + (size_t)(c0 + c) * lda + (size_t)b * sizeof(block_q8_K), acc[c]);
            }
            for (int c = 0; c < C; c++)
                y[(size_t)(c0 + c) * ldy + (size_t)r] = acc[c];
        }
    }
}

#define KQ_GEMM(NAME, T)                                                                  \
    static void NAME(int64_t n, const void *w, size_t ldw, const void *a, size_t lda, float *y, size_t ldy, \
                     int nr, int nc)                                                      \
    {                                                                                     \
        kq_gemm(T, n, w, ldw, a, lda, y, ldy, nr, nc);                                    \
    }

KQ_GEMM(gemm_q2_k, F_Q2_K)
KQ_GEMM(gemm_q3_k, F_Q3_K)
KQ_GEMM(gemm_q4_k, F_Q4_K)
KQ_GEMM(gemm_q5_k, F_Q5_K)
KQ_GEMM(gemm_q6_k, F_Q6_K)

/* ---- element-wise ops (scalar oracle: src/model/ops.c) ------------------------------- */

static double op_sum_sq(const float *x, int64_t n)
{
    float64x2_t s0 = vdupq_n_f64(0.0), s1 = s0;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const float32x4_t v = vld1q_f32(x + i);
        const float32x4_t q = vmulq_f32(v, v); /* float squares, as the scalar loop */
        s0 = vaddq_f64(s0, vcvt_f64_f32(vget_low_f32(q)));
        s1 = vaddq_f64(s1, vcvt_high_f64_f32(q));
    }
    double r = vaddvq_f64(vaddq_f64(s0, s1));
    for (; i < n; i++)
        r += (double)(x[i] * x[i]);
    return r;
}

static void op_scale_mul(float *y, const float *x, float scale, const float *w, int64_t n)
{
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        float32x4_t v = vmulq_n_f32(vld1q_f32(x + i), scale);
        if (w)
            v = vmulq_f32(v, vld1q_f32(w + i));
        vst1q_f32(y + i, v);
    }
    for (; i < n; i++)
        y[i] = w ? (x[i] * scale) * w[i] : x[i] * scale;
}

static void op_round_f16(float *x, int64_t n)
{
    int64_t i = 0;
    for (; i + 4 <= n; i += 4)
        vst1q_f32(x + i, vcvt_f32_f16(vcvt_f16_f32(vld1q_f32(x + i))));
    for (; i < n; i++)
        x[i] = h2f(f2h(x[i]));
}

/* No gather on NEON: the F16 indices are converted four at a time, the table read per lane. */
static void op_geglu(float *y, const float *gate, const float *up, int64_t n, const uint16_t *tab)
{
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const float32x4_t g = vld1q_f32(gate + i);
        uint16_t idx[4], t[4];
        vst1_u16(idx, vreinterpret_u16_f16(vcvt_f16_f32(g)));
        for (int j = 0; j < 4; j++)
            t[j] = tab[idx[j]];
        float32x4_t v = vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(t)));
        /* g <= -10: 0; g >= 10 or NaN: g itself (NaN * up stays NaN, as the table's NaN) */
        v = vbslq_f32(vcleq_f32(g, vdupq_n_f32(-10.f)), vdupq_n_f32(0.f), v);
        const uint32x4_t big = vorrq_u32(vcgeq_f32(g, vdupq_n_f32(10.f)), vmvnq_u32(vceqq_f32(g, g)));
        v = vbslq_f32(big, g, v);
        vst1q_f32(y + i, vmulq_f32(v, vld1q_f32(up + i)));
    }
    for (; i < n; i++) {
        const float g = gate[i];
        float a;
        if (g <= -10.0f)
            a = 0.0f;
        else if (g >= 10.0f || g != g)
            a = g;
        else
            a = h2f(tab[f2h(g)]);
        y[i] = a * up[i];
    }
}

/* F16 rows against F32 rows in 4 x 2 tiles; the tail (n % 4) in scalar code. */
AI void f16f32_tile(const int R, const int C, int64_t n, const uint16_t *w, size_t ldw, const float *a,
                    size_t lda, float *y, size_t ldy)
{
    float32x4_t acc[4][2], wv[4];
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++)
            acc[r][c] = vdupq_n_f32(0.f);
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        for (int r = 0; r < R; r++)
            wv[r] = vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(w + (size_t)r * ldw + i)));
        for (int c = 0; c < C; c++) {
            const float32x4_t av = vld1q_f32(a + (size_t)c * lda + i);
            for (int r = 0; r < R; r++)
                acc[r][c] = vfmaq_f32(acc[r][c], wv[r], av);
        }
    }
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++) {
            float s = vaddvq_f32(acc[r][c]);
            for (int64_t j = i; j < n; j++)
                s += h2f(w[(size_t)r * ldw + (size_t)j]) * a[(size_t)c * lda + (size_t)j];
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

/* ---- table --------------------------------------------------------------------------- */

#define SET(k, T, Q, DOT)                                                                 \
    do {                                                                                  \
        (k)->type[GM_TYPE_##T].quantize = Q;                                              \
        (k)->type[GM_TYPE_##T].vec_dot = DOT;                                             \
        (k)->type[GM_TYPE_##T].gemm = NULL; /* 32-wide: driver loops vec_dot */           \
    } while (0)

static void neon_install(gm_kernels *k)
{
    k->op.sum_sq = op_sum_sq;
    k->op.scale_mul = op_scale_mul;
    k->op.round_f16 = op_round_f16;
    k->op.geglu = op_geglu;
    k->op.gemm_f16_f32 = op_gemm_f16_f32;
    k->type[GM_TYPE_F32].vec_dot = dot_f32;
    k->type[GM_TYPE_F16].quantize = quant_f16;
    k->type[GM_TYPE_F16].vec_dot = dot_f16;
    k->type[GM_TYPE_BF16].vec_dot = dot_bf16;
    SET(k, Q4_0, quant_q8_0, dot_q4_0);
    SET(k, Q5_0, quant_q8_0, dot_q5_0);
    SET(k, Q8_0, quant_q8_0, dot_q8_0);
    SET(k, Q4_1, quant_q8_1, dot_q4_1);
    SET(k, Q5_1, quant_q8_1, dot_q5_1);
    SET(k, Q2_K, quant_q8_k, dot_q2_k);
    (k)->type[GM_TYPE_Q2_K].gemm = gemm_q2_k;
    SET(k, Q3_K, quant_q8_k, dot_q3_k);
    (k)->type[GM_TYPE_Q3_K].gemm = gemm_q3_k;
    SET(k, Q4_K, quant_q8_k, dot_q4_k);
    (k)->type[GM_TYPE_Q4_K].gemm = gemm_q4_k;
    SET(k, Q5_K, quant_q8_k, dot_q5_k);
    (k)->type[GM_TYPE_Q5_K].gemm = gemm_q5_k;
    SET(k, Q6_K, quant_q8_k, dot_q6_k);
    (k)->type[GM_TYPE_Q6_K].gemm = gemm_q6_k;
}

#endif
