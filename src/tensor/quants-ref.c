/* Scalar reference kernels: dequantization, activation quantization and dot products for
 * every weight type (docs: gemma-spec.md sections 2.3-2.5).
 *
 * These are the oracle for every SIMD kernel, so they favour clarity over speed. Each block
 * type has one "unpack" function that turns its bits into small integers plus integer
 * sub-block scales; dequantization and the dot product are both written on top of it.
 * Dequantization keeps the float operation order of ggml-quants.c (dequantize_row_*), so it
 * is bit-identical with llama.cpp; the dot products do integer sums per (sub-)block and
 * apply the float scales afterwards, as ggml's vec_dot kernels do.
 *
 * Every block is copied into a local struct before use: tensor data inside a GGUF file is
 * not guaranteed to be aligned for the structs' 2- or 4-byte fields.
 *
 * Contract for all entry points: n is a multiple of the type's block size (callers
 * guarantee it); the functions read exactly n / blck blocks and write exactly n outputs.
 */
#include "quants.h"

#include "util/util.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------- */
/* Unpacking of the 32-element blocks into int8 values q[32]: y[j] = q[j]*d (+ m).          */
/* ---------------------------------------------------------------------------------------- */

/* Q4_0, 18 bytes, y = (q - 8) * d:
 *
 *   byte  0      2                                 18
 *         +------+---------------------------------+
 *         | d f16| qs[16]                          |
 *         +------+---------------------------------+
 *   qs[j] = [7..4: q[j+16] | 3..0: q[j]]   (unsigned nibbles, bias 8)
 */
static void unpack_q4_0(const block_q4_0 *b, int8_t q[QK])
{
    for (int j = 0; j < QK / 2; j++) {
        q[j] = (int8_t)((b->qs[j] & 0xF) - 8);
        q[j + QK / 2] = (int8_t)((b->qs[j] >> 4) - 8);
    }
}

/* Q4_1, 20 bytes, y = q * d + m (q unsigned 0..15):
 *
 *   byte  0      2      4                          20
 *         +------+------+--------------------------+
 *         | d f16| m f16| qs[16]  (nibbles as Q4_0)|
 *         +------+------+--------------------------+
 */
static void unpack_q4_1(const block_q4_1 *b, int8_t q[QK])
{
    for (int j = 0; j < QK / 2; j++) {
        q[j] = (int8_t)(b->qs[j] & 0xF);
        q[j + QK / 2] = (int8_t)(b->qs[j] >> 4);
    }
}

/* The 5th bit of element j of a Q5 block is bit j of the little-endian u32 qh. */
static void unpack_5bit(const uint8_t qh4[4], const uint8_t qs[QK / 2], int bias, int8_t q[QK])
{
    const uint32_t qh = gm_rd_u32(qh4);
    for (int j = 0; j < QK / 2; j++) {
        const int h0 = (int)((qh >> j) & 1) << 4;
        const int h1 = (int)((qh >> (j + 16)) & 1) << 4;
        q[j] = (int8_t)(((qs[j] & 0xF) | h0) - bias);
        q[j + QK / 2] = (int8_t)(((qs[j] >> 4) | h1) - bias);
    }
}

/* Q5_0, 22 bytes, y = (q - 16) * d:
 *
 *   byte  0      2             6                   22
 *         +------+-------------+-------------------+
 *         | d f16| qh u32 (LE) | qs[16]            |
 *         +------+-------------+-------------------+
 *   q[j] = nibble of qs as in Q4_0 | (bit j of qh) << 4
 */
static void unpack_q5_0(const block_q5_0 *b, int8_t q[QK]) { unpack_5bit(b->qh, b->qs, 16, q); }

/* Q5_1, 24 bytes, y = q * d + m (q unsigned 0..31):
 *
 *   byte  0      2      4             8            24
 *         +------+------+-------------+------------+
 *         | d f16| m f16| qh u32 (LE) | qs[16]     |
 *         +------+------+-------------+------------+
 */
static void unpack_q5_1(const block_q5_1 *b, int8_t q[QK]) { unpack_5bit(b->qh, b->qs, 0, q); }

/* ---------------------------------------------------------------------------------------- */
/* Unpacking of the 256-element K-quant super-blocks into int8 q[256] and integer            */
/* sub-block scales (and mins): y[i] = (d * sc[k]) * q[i] - dmin * mn[k], k = sub-block.      */
/* ---------------------------------------------------------------------------------------- */

/* Q2_K, 84 bytes, 16 sub-blocks of 16:
 *
 *   byte  0            16                      80     82     84
 *         +------------+-----------------------+------+------+
 *         | scales[16] | qs[64]                | d f16|dmin16|
 *         +------------+-----------------------+------+------+
 *   scales[k] = [7..4: mn[k] | 3..0: sc[k]]
 *   half h (0,1) uses qs[32h .. 32h+31]; within it, shift s = 2j (j = 0..3) holds
 *   sub-block 8h+2j in bits s+1..s of qs[32h+l] and sub-block 8h+2j+1 in qs[32h+16+l], l < 16.
 */
static void unpack_q2_K(const block_q2_K *b, int8_t q[QK_K], int sc[16], int mn[16])
{
    for (int k = 0; k < 16; k++) {
        sc[k] = b->scales[k] & 0xF;
        mn[k] = b->scales[k] >> 4;
    }
    for (int h = 0; h < 2; h++) {
        const uint8_t *qs = b->qs + 32 * h;
        for (int j = 0; j < 4; j++) {
            int8_t *y = q + 128 * h + 32 * j;
            for (int l = 0; l < 32; l++) y[l] = (int8_t)((qs[l] >> (2 * j)) & 3);
        }
    }
}

/* Q3_K, 110 bytes, 16 sub-blocks of 16, 3-bit values biased by 4 and signed 6-bit scales:
 *
 *   byte  0           32                 96            108    110
 *         +-----------+------------------+-------------+------+
 *         | hmask[32] | qs[64]           | scales[12]  | d f16|
 *         +-----------+------------------+-------------+------+
 *   low 2 bits: packed like Q2_K (half h, shift 2j);
 *   high bit: bit (4h+j) of hmask[l] (sub-block 8h+2j) or hmask[16+l] (sub-block 8h+2j+1);
 *   q = low2 - (high bit ? 0 : 4), so q is in -4..3.
 *   scales: sc[k] = (low4 | hi2 << 4) - 32 with
 *     low4 = k < 8 ? scales[k] & 0xF : scales[k-8] >> 4
 *     hi2  = (scales[8 + k%4] >> (2*(k/4))) & 3
 */
static void unpack_q3_K(const block_q3_K *b, int8_t q[QK_K], int sc[16])
{
    for (int k = 0; k < 16; k++) {
        const int low4 = k < 8 ? (b->scales[k] & 0xF) : (b->scales[k - 8] >> 4);
        const int hi2 = (b->scales[8 + k % 4] >> (2 * (k / 4))) & 3;
        sc[k] = (low4 | (hi2 << 4)) - 32;
    }
    for (int h = 0; h < 2; h++) {
        const uint8_t *qs = b->qs + 32 * h;
        for (int j = 0; j < 4; j++) {
            const uint8_t m = (uint8_t)(1u << (4 * h + j));
            int8_t *y = q + 128 * h + 32 * j;
            for (int l = 0; l < 32; l++)
                y[l] = (int8_t)(((qs[l] >> (2 * j)) & 3) - ((b->hmask[l] & m) ? 0 : 4));
        }
    }
}

/* The 12-byte field of Q4_K/Q5_K holding eight 6-bit (scale, min) pairs:
 *
 *   bytes 0..3 : [7..6: sc[4+j] bits 5..4 | 5..0: sc[j]]       j = 0..3
 *   bytes 4..7 : [7..6: mn[4+j] bits 5..4 | 5..0: mn[j]]
 *   bytes 8..11: [7..4: mn[4+j] bits 3..0 | 3..0: sc[4+j] bits 3..0]
 */
static void scale_min_k4(const uint8_t s[12], int sc[8], int mn[8])
{
    for (int j = 0; j < 4; j++) {
        sc[j] = s[j] & 63;
        mn[j] = s[j + 4] & 63;
        sc[j + 4] = (s[j + 8] & 0xF) | ((s[j] >> 6) << 4);
        mn[j + 4] = (s[j + 8] >> 4) | ((s[j + 4] >> 6) << 4);
    }
}

/* Q4_K, 144 bytes, 8 sub-blocks of 32:
 *
 *   byte  0      2      4            16                                144
 *         +------+------+------------+----------------------------------+
 *         | d f16|dmin16| scales[12] | qs[128]                          |
 *         +------+------+------------+----------------------------------+
 *   chunk c (0..3) = qs[32c .. 32c+31]: low nibbles are sub-block 2c, high nibbles 2c+1.
 */
static void unpack_q4_K(const block_q4_K *b, int8_t q[QK_K], int sc[8], int mn[8])
{
    scale_min_k4(b->scales, sc, mn);
    for (int c = 0; c < 4; c++) {
        for (int l = 0; l < 32; l++) {
            q[64 * c + l] = (int8_t)(b->qs[32 * c + l] & 0xF);
            q[64 * c + 32 + l] = (int8_t)(b->qs[32 * c + l] >> 4);
        }
    }
}

/* Q5_K, 176 bytes, 8 sub-blocks of 32:
 *
 *   byte  0      2      4            16          48                     176
 *         +------+------+------------+-----------+-----------------------+
 *         | d f16|dmin16| scales[12] | qh[32]    | qs[128]               |
 *         +------+------+------------+-----------+-----------------------+
 *   nibbles as Q4_K; the 5th bit of element l of sub-block k is bit k of qh[l].
 */
static void unpack_q5_K(const block_q5_K *b, int8_t q[QK_K], int sc[8], int mn[8])
{
    scale_min_k4(b->scales, sc, mn);
    for (int c = 0; c < 4; c++) {
        for (int l = 0; l < 32; l++) {
            const int h0 = (b->qh[l] >> (2 * c)) & 1;
            const int h1 = (b->qh[l] >> (2 * c + 1)) & 1;
            q[64 * c + l] = (int8_t)((b->qs[32 * c + l] & 0xF) + 16 * h0);
            q[64 * c + 32 + l] = (int8_t)((b->qs[32 * c + l] >> 4) + 16 * h1);
        }
    }
}

/* Q6_K, 210 bytes, 16 sub-blocks of 16 with signed 8-bit scales, q in -32..31:
 *
 *   byte  0                   128              192          208    210
 *         +-------------------+----------------+------------+------+
 *         | ql[128]           | qh[64]         | scales[16] | d f16|
 *         +-------------------+----------------+------------+------+
 *   half h (0,1): L = ql + 64h, H = qh + 32h, outputs Y = 128h ..; for l in 0..31
 *     Y[l]    = (L[l]    & 0xF) | ((H[l] >> 0) & 3) << 4
 *     Y[l+32] = (L[l+32] & 0xF) | ((H[l] >> 2) & 3) << 4
 *     Y[l+64] = (L[l]    >> 4)  | ((H[l] >> 4) & 3) << 4
 *     Y[l+96] = (L[l+32] >> 4)  | ((H[l] >> 6) & 3) << 4      (all minus 32)
 */
static void unpack_q6_K(const block_q6_K *b, int8_t q[QK_K], int sc[16])
{
    for (int k = 0; k < 16; k++) sc[k] = b->scales[k];
    for (int h = 0; h < 2; h++) {
        const uint8_t *L = b->ql + 64 * h, *H = b->qh + 32 * h;
        int8_t *Y = q + 128 * h;
        for (int l = 0; l < 32; l++) {
            Y[l] = (int8_t)(((L[l] & 0xF) | (((H[l] >> 0) & 3) << 4)) - 32);
            Y[l + 32] = (int8_t)(((L[l + 32] & 0xF) | (((H[l] >> 2) & 3) << 4)) - 32);
            Y[l + 64] = (int8_t)(((L[l] >> 4) | (((H[l] >> 4) & 3) << 4)) - 32);
            Y[l + 96] = (int8_t)(((L[l + 32] >> 4) | (((H[l] >> 6) & 3) << 4)) - 32);
        }
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Dequantization                                                                             */
/* ---------------------------------------------------------------------------------------- */

/* Loads block i of a row (any alignment) into a local struct. */
#define LOAD_BLOCK(dst, src, i) memcpy(&(dst), (const uint8_t *)(src) + (size_t)(i) * sizeof(dst), sizeof(dst))

/* y = q * d (+ m), the order of dequantize_row_q4_0 .. q8_0. */
static void deq_block32(const int8_t q[QK], float d, float m, bool has_min, float *y)
{
    for (int j = 0; j < QK; j++) y[j] = has_min ? (float)q[j] * d + m : (float)q[j] * d;
}

/* K-quants: y = (d * sc) * q - (dmin * mn), per sub-block of width w. */
static void deq_block_k(const int8_t q[QK_K], const int *sc, const int *mn, int w, float d, float dmin,
                        float *y)
{
    for (int k = 0; k < QK_K / w; k++) {
        const float dl = d * (float)sc[k];
        const float ml = mn ? dmin * (float)mn[k] : 0.0f;
        for (int l = 0; l < w; l++) y[k * w + l] = mn ? dl * (float)q[k * w + l] - ml : dl * (float)q[k * w + l];
    }
}

static void dequant_32(gm_type type, const void *src, float *y, int64_t nb)
{
    int8_t q[QK];
    for (int64_t i = 0; i < nb; i++, y += QK) {
        switch (type) {
        case GM_TYPE_Q4_0: { block_q4_0 b; LOAD_BLOCK(b, src, i); unpack_q4_0(&b, q);
            deq_block32(q, gm_f16_to_f32(b.d), 0, false, y); break; }
        case GM_TYPE_Q4_1: { block_q4_1 b; LOAD_BLOCK(b, src, i); unpack_q4_1(&b, q);
            deq_block32(q, gm_f16_to_f32(b.d), gm_f16_to_f32(b.m), true, y); break; }
        case GM_TYPE_Q5_0: { block_q5_0 b; LOAD_BLOCK(b, src, i); unpack_q5_0(&b, q);
            deq_block32(q, gm_f16_to_f32(b.d), 0, false, y); break; }
        case GM_TYPE_Q5_1: { block_q5_1 b; LOAD_BLOCK(b, src, i); unpack_q5_1(&b, q);
            deq_block32(q, gm_f16_to_f32(b.d), gm_f16_to_f32(b.m), true, y); break; }
        case GM_TYPE_Q8_0: { block_q8_0 b; LOAD_BLOCK(b, src, i);
            deq_block32(b.qs, gm_f16_to_f32(b.d), 0, false, y); break; }
        case GM_TYPE_Q8_1: { block_q8_1 b; LOAD_BLOCK(b, src, i);
            deq_block32(b.qs, gm_f16_to_f32(b.d), 0, false, y); break; }
        default: memset(y, 0, QK * sizeof *y); break;
        }
    }
}

static void dequant_k(gm_type type, const void *src, float *y, int64_t nb)
{
    int8_t q[QK_K];
    int sc[16], mn[16];
    for (int64_t i = 0; i < nb; i++, y += QK_K) {
        switch (type) {
        case GM_TYPE_Q2_K: { block_q2_K b; LOAD_BLOCK(b, src, i); unpack_q2_K(&b, q, sc, mn);
            deq_block_k(q, sc, mn, 16, gm_f16_to_f32(b.d), gm_f16_to_f32(b.dmin), y); break; }
        case GM_TYPE_Q3_K: { block_q3_K b; LOAD_BLOCK(b, src, i); unpack_q3_K(&b, q, sc);
            deq_block_k(q, sc, NULL, 16, gm_f16_to_f32(b.d), 0, y); break; }
        case GM_TYPE_Q4_K: { block_q4_K b; LOAD_BLOCK(b, src, i); unpack_q4_K(&b, q, sc, mn);
            deq_block_k(q, sc, mn, 32, gm_f16_to_f32(b.d), gm_f16_to_f32(b.dmin), y); break; }
        case GM_TYPE_Q5_K: { block_q5_K b; LOAD_BLOCK(b, src, i); unpack_q5_K(&b, q, sc, mn);
            deq_block_k(q, sc, mn, 32, gm_f16_to_f32(b.d), gm_f16_to_f32(b.dmin), y); break; }
        case GM_TYPE_Q6_K: { block_q6_K b; LOAD_BLOCK(b, src, i); unpack_q6_K(&b, q, sc);
            deq_block_k(q, sc, NULL, 16, gm_f16_to_f32(b.d), 0, y); break; }
        case GM_TYPE_Q8_K: { block_q8_K b; LOAD_BLOCK(b, src, i);
            for (int j = 0; j < QK_K; j++) y[j] = b.d * (float)b.qs[j];
            break; }
        default: memset(y, 0, QK_K * sizeof *y); break;
        }
    }
}

void gm_dequant_row_ref(gm_type type, const void *src, float *dst, int64_t n)
{
    const uint8_t *p = src;
    switch (type) {
    case GM_TYPE_F32: memcpy(dst, src, (size_t)n * sizeof(float)); return;
    case GM_TYPE_F16: for (int64_t i = 0; i < n; i++) dst[i] = gm_f16_to_f32(gm_rd_u16(p + 2 * i)); return;
    case GM_TYPE_BF16: for (int64_t i = 0; i < n; i++) dst[i] = gm_bf16_to_f32(gm_rd_u16(p + 2 * i)); return;
    case GM_TYPE_Q4_0: case GM_TYPE_Q4_1: case GM_TYPE_Q5_0: case GM_TYPE_Q5_1:
    case GM_TYPE_Q8_0: case GM_TYPE_Q8_1:
        dequant_32(type, src, dst, n / QK); return;
    case GM_TYPE_Q2_K: case GM_TYPE_Q3_K: case GM_TYPE_Q4_K: case GM_TYPE_Q5_K:
    case GM_TYPE_Q6_K: case GM_TYPE_Q8_K:
        dequant_k(type, src, dst, n / QK_K); return;
    default: memset(dst, 0, (size_t)n * sizeof *dst); return; /* not a type we compute with */
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Activation quantization                                                                    */
/* ---------------------------------------------------------------------------------------- */

/* float -> int8 with saturation; NaN becomes -128 like x86 cvtps_epi32 + packs. Keeps the
 * conversion defined for non-finite input. */
static int8_t sat_i8(float r)
{
    if (!(r == r)) return INT8_MIN;
    if (r >= 127.0f) return 127;
    if (r <= -128.0f) return -128;
    return (int8_t)r;
}

void gm_act_block_nan(gm_type act_type, void *y)
{
    const uint16_t h = 0x7E00; /* F16 quiet NaN */
    switch (act_type) {
    case GM_TYPE_Q8_0: { block_q8_0 b; memset(&b, 0, sizeof b); b.d = h; memcpy(y, &b, sizeof b); return; }
    case GM_TYPE_Q8_1: { block_q8_1 b; memset(&b, 0, sizeof b); b.d = b.s = h; memcpy(y, &b, sizeof b); return; }
    case GM_TYPE_Q8_K: { block_q8_K b; memset(&b, 0, sizeof b); b.d = NAN; memcpy(y, &b, sizeof b); return; }
    default: return;
    }
}

static bool all_finite(const float *x, int n)
{
    for (int j = 0; j < n; j++)
        if (!isfinite(x[j])) return false;
    return true;
}

/* 127/amax, or 0 when that overflows (amax 0 or tiny): the block quantizes to zero. */
static float q8_inv_scale(float amax)
{
    const float id = 127.f / amax;
    return isfinite(id) ? id : 0.0f;
}

/* Q8_0 as ggml's x86 AVX2 quantize_row_q8_0: id = 127/amax in f32 (not 1/F16(d)), rounding
 * half to even (nearbyintf in the default rounding mode, as _mm256_round_ps). */
static void quantize_q8_0(const float *x, void *dst, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, x += QK) {
        block_q8_0 b;
        if (!all_finite(x, QK)) { gm_act_block_nan(GM_TYPE_Q8_0, (uint8_t *)dst + (size_t)i * sizeof b); continue; }
        float amax = 0.0f;
        for (int j = 0; j < QK; j++) amax = fmaxf(amax, fabsf(x[j]));
        const float d = amax / 127.f;
        const float id = q8_inv_scale(amax);
        b.d = gm_f32_to_f16(d);
        for (int j = 0; j < QK; j++) b.qs[j] = sat_i8(nearbyintf(x[j] * id));
        memcpy((uint8_t *)dst + (size_t)i * sizeof b, &b, sizeof b);
    }
}

/* Q8_1 as ggml's x86 AVX2 quantize_row_q8_1 (the engine we compare against): the Q8_0
 * rounding above, plus s = F16(sum*d). (The portable reference uses roundf instead.) */
static void quantize_q8_1(const float *x, void *dst, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, x += QK) {
        block_q8_1 b;
        if (!all_finite(x, QK)) { gm_act_block_nan(GM_TYPE_Q8_1, (uint8_t *)dst + (size_t)i * sizeof b); continue; }
        float amax = 0.0f;
        for (int j = 0; j < QK; j++) amax = fmaxf(amax, fabsf(x[j]));
        const float d = amax / 127.f;
        const float id = q8_inv_scale(amax);
        b.d = gm_f32_to_f16(d);
        int sum = 0;
        for (int j = 0; j < QK; j++) {
            b.qs[j] = sat_i8(nearbyintf(x[j] * id));
            sum += b.qs[j];
        }
        b.s = gm_f32_to_f16((float)sum * d);
        memcpy((uint8_t *)dst + (size_t)i * sizeof b, &b, sizeof b);
    }
}

/* ggml's nearest_int: adding 1.5*2^23 leaves round-half-to-even(v) in the low mantissa
 * bits (valid for |v| < 2^22; the Q8_K inputs are within +-127). */
static int nearest_int(float v)
{
    const float f = v + 12582912.f;
    int32_t i;
    memcpy(&i, &f, sizeof i);
    return (i & 0x007fffff) - 0x00400000;
}

/* Q8_K as quantize_row_q8_K_ref: scale from the signed element of largest magnitude, so d
 * may be negative; bsums are the sums of 16 consecutive quants. */
static void quantize_q8_K(const float *x, void *dst, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, x += QK_K) {
        block_q8_K b;
        if (!all_finite(x, QK_K)) { gm_act_block_nan(GM_TYPE_Q8_K, (uint8_t *)dst + (size_t)i * sizeof b); continue; }
        memset(&b, 0, sizeof b);
        float max = 0, amax = 0;
        for (int j = 0; j < QK_K; j++) {
            const float ax = fabsf(x[j]);
            if (ax > amax) { amax = ax; max = x[j]; }
        }
        const float iscale = -127.f / max;
        if (isfinite(iscale)) { /* else amax is 0 or tiny: all zero */
            for (int j = 0; j < QK_K; j++) {
                const int v = nearest_int(iscale * x[j]);
                b.qs[j] = (int8_t)GM_MAX(-128, GM_MIN(127, v));
            }
            for (int k = 0; k < QK_K / 16; k++) {
                int sum = 0;
                for (int l = 0; l < 16; l++) sum += b.qs[16 * k + l];
                b.bsums[k] = (int16_t)sum;
            }
            b.d = 1 / iscale;
        }
        memcpy((uint8_t *)dst + (size_t)i * sizeof b, &b, sizeof b);
    }
}

void gm_quantize_row_ref(gm_type act_type, const float *src, void *dst, int64_t n)
{
    uint8_t *p = dst;
    switch (act_type) {
    case GM_TYPE_F32: memcpy(dst, src, (size_t)n * sizeof(float)); return;
    case GM_TYPE_F16:
        for (int64_t i = 0; i < n; i++) { const uint16_t h = gm_f32_to_f16(src[i]); memcpy(p + 2 * i, &h, 2); }
        return;
    case GM_TYPE_BF16:
        for (int64_t i = 0; i < n; i++) { const uint16_t h = gm_f32_to_bf16(src[i]); memcpy(p + 2 * i, &h, 2); }
        return;
    case GM_TYPE_Q8_0: quantize_q8_0(src, dst, n / QK); return;
    case GM_TYPE_Q8_1: quantize_q8_1(src, dst, n / QK); return;
    case GM_TYPE_Q8_K: quantize_q8_K(src, dst, n / QK_K); return;
    default: return; /* not an activation type */
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Dot products                                                                               */
/* ---------------------------------------------------------------------------------------- */

static int32_t isum(const int8_t *a, const int8_t *b, int n)
{
    int32_t s = 0;
    for (int i = 0; i < n; i++) s += (int32_t)a[i] * b[i];
    return s;
}

/* Q4_0/Q5_0/Q8_0 . Q8_0: per block sumi * (d_w * d_a). */
static float dot_x_q8_0(gm_type wtype, int64_t nb, const void *w, const void *a)
{
    float sumf = 0.0f;
    int8_t q[QK];
    for (int64_t i = 0; i < nb; i++) {
        block_q8_0 ba;
        LOAD_BLOCK(ba, a, i);
        uint16_t dw;
        switch (wtype) {
        case GM_TYPE_Q4_0: { block_q4_0 b; LOAD_BLOCK(b, w, i); unpack_q4_0(&b, q); dw = b.d; break; }
        case GM_TYPE_Q5_0: { block_q5_0 b; LOAD_BLOCK(b, w, i); unpack_q5_0(&b, q); dw = b.d; break; }
        default: { block_q8_0 b; LOAD_BLOCK(b, w, i); memcpy(q, b.qs, QK); dw = b.d; break; }
        }
        sumf += (float)isum(q, ba.qs, QK) * (gm_f16_to_f32(dw) * gm_f16_to_f32(ba.d));
    }
    return sumf;
}

/* Q4_1/Q5_1 . Q8_1: per block d_w*d_a*sumi + m_w*s_a, where s_a = d_a * sum(q_a). */
static float dot_x_q8_1(gm_type wtype, int64_t nb, const void *w, const void *a)
{
    float sumf = 0.0f;
    int8_t q[QK];
    for (int64_t i = 0; i < nb; i++) {
        block_q8_1 ba;
        LOAD_BLOCK(ba, a, i);
        uint16_t dw, mw;
        if (wtype == GM_TYPE_Q4_1) {
            block_q4_1 b; LOAD_BLOCK(b, w, i); unpack_q4_1(&b, q); dw = b.d; mw = b.m;
        } else {
            block_q5_1 b; LOAD_BLOCK(b, w, i); unpack_q5_1(&b, q); dw = b.d; mw = b.m;
        }
        sumf += (gm_f16_to_f32(dw) * gm_f16_to_f32(ba.d)) * (float)isum(q, ba.qs, QK) +
                gm_f16_to_f32(mw) * gm_f16_to_f32(ba.s);
    }
    return sumf;
}

/* K-quants . Q8_K, per super-block:
 *   d_w*d_a * sum_k sc[k] * sum(q_w*q_a over sub-block k)  -  dmin_w*d_a * sum_k mn[k] * bsums(k)
 * where bsums(k) is the activation sum over sub-block k (two 16-sums for 32-wide ones). */
static float dot_k_q8_K(gm_type wtype, int64_t nb, const void *w, const void *a)
{
    float sumf = 0.0f;
    int8_t q[QK_K];
    int sc[16], mn[16];
    for (int64_t i = 0; i < nb; i++) {
        block_q8_K ba;
        LOAD_BLOCK(ba, a, i);
        uint16_t d = 0, dmin = 0;
        int width = 16;
        bool has_min = true;
        switch (wtype) {
        case GM_TYPE_Q2_K: { block_q2_K b; LOAD_BLOCK(b, w, i); unpack_q2_K(&b, q, sc, mn); d = b.d; dmin = b.dmin; break; }
        case GM_TYPE_Q3_K: { block_q3_K b; LOAD_BLOCK(b, w, i); unpack_q3_K(&b, q, sc); d = b.d; has_min = false; break; }
        case GM_TYPE_Q4_K: { block_q4_K b; LOAD_BLOCK(b, w, i); unpack_q4_K(&b, q, sc, mn); d = b.d; dmin = b.dmin; width = 32; break; }
        case GM_TYPE_Q5_K: { block_q5_K b; LOAD_BLOCK(b, w, i); unpack_q5_K(&b, q, sc, mn); d = b.d; dmin = b.dmin; width = 32; break; }
        default: { block_q6_K b; LOAD_BLOCK(b, w, i); unpack_q6_K(&b, q, sc); d = b.d; has_min = false; break; }
        }
        int32_t sum_q = 0, sum_m = 0;
        for (int k = 0; k < QK_K / width; k++) {
            sum_q += sc[k] * isum(q + k * width, ba.qs + k * width, width);
            if (has_min) {
                int32_t bs = 0;
                for (int j = k * width / 16; j < (k + 1) * width / 16; j++) bs += ba.bsums[j];
                sum_m += mn[k] * bs;
            }
        }
        sumf += gm_f16_to_f32(d) * ba.d * (float)sum_q;
        if (has_min) sumf -= gm_f16_to_f32(dmin) * ba.d * (float)sum_m;
    }
    return sumf;
}

float gm_vec_dot_ref(gm_type wtype, int64_t n, const void *w, const void *a)
{
    const uint8_t *pw = w, *pa = a;
    float sumf = 0.0f;
    switch (wtype) {
    case GM_TYPE_F32:
        for (int64_t i = 0; i < n; i++) sumf += gm_rd_f32(pw + 4 * i) * gm_rd_f32(pa + 4 * i);
        return sumf;
    case GM_TYPE_F16: /* products of two halves are exact in float; accumulate in float */
        for (int64_t i = 0; i < n; i++)
            sumf += gm_f16_to_f32(gm_rd_u16(pw + 2 * i)) * gm_f16_to_f32(gm_rd_u16(pa + 2 * i));
        return sumf;
    case GM_TYPE_BF16:
        for (int64_t i = 0; i < n; i++)
            sumf += gm_bf16_to_f32(gm_rd_u16(pw + 2 * i)) * gm_bf16_to_f32(gm_rd_u16(pa + 2 * i));
        return sumf;
    case GM_TYPE_Q4_0: case GM_TYPE_Q5_0: case GM_TYPE_Q8_0:
        return dot_x_q8_0(wtype, n / QK, w, a);
    case GM_TYPE_Q4_1: case GM_TYPE_Q5_1:
        return dot_x_q8_1(wtype, n / QK, w, a);
    case GM_TYPE_Q2_K: case GM_TYPE_Q3_K: case GM_TYPE_Q4_K: case GM_TYPE_Q5_K: case GM_TYPE_Q6_K:
        return dot_k_q8_K(wtype, n / QK_K, w, a);
    default: return 0.0f; /* not a weight type */
    }
}

int gm_block_scale_fields(gm_type wtype, size_t off[2])
{
#define F2(B, a, b) return (off[0] = offsetof(B, a), off[1] = offsetof(B, b), 2)
#define F1(B, a) return (off[0] = offsetof(B, a), 1)
    switch (wtype) {
    case GM_TYPE_Q4_0: F1(block_q4_0, d);
    case GM_TYPE_Q4_1: F2(block_q4_1, d, m);
    case GM_TYPE_Q5_0: F1(block_q5_0, d);
    case GM_TYPE_Q5_1: F2(block_q5_1, d, m);
    case GM_TYPE_Q8_0: F1(block_q8_0, d);
    case GM_TYPE_Q2_K: F2(block_q2_K, d, dmin);
    case GM_TYPE_Q3_K: F1(block_q3_K, d);
    case GM_TYPE_Q4_K: F2(block_q4_K, d, dmin);
    case GM_TYPE_Q5_K: F2(block_q5_K, d, dmin);
    case GM_TYPE_Q6_K: F1(block_q6_K, d);
    default: return 0;
    }
#undef F1
#undef F2
}

/* ---------------------------------------------------------------------------------------- */
/* Type-bound entry points for the kernel table                                               */
/* ---------------------------------------------------------------------------------------- */

/* Every type listed once: activation types (quantizers) and weight types (dots). */
#define REF_ACT_TYPES(X) X(F32) X(F16) X(BF16) X(Q8_0) X(Q8_1) X(Q8_K)
#define REF_WEIGHT_TYPES(X)                                                                  \
    X(F32) X(F16) X(BF16) X(Q4_0) X(Q4_1) X(Q5_0) X(Q5_1) X(Q8_0) X(Q2_K) X(Q3_K) X(Q4_K)   \
    X(Q5_K) X(Q6_K)

#define REF_QUANT(T)                                                                         \
    static void ref_quant_##T(const float *x, void *y, int64_t n) { gm_quantize_row_ref(GM_TYPE_##T, x, y, n); }
#define REF_DOT(T)                                                                           \
    static void ref_dot_##T(int64_t n, float *s, const void *w, const void *a)               \
    {                                                                                        \
        *s = gm_vec_dot_ref(GM_TYPE_##T, n, w, a);                                           \
    }
#define REF_QUANT_SLOT(T) [GM_TYPE_##T] = ref_quant_##T,
#define REF_DOT_SLOT(T) [GM_TYPE_##T] = ref_dot_##T,

REF_ACT_TYPES(REF_QUANT)
REF_WEIGHT_TYPES(REF_DOT)

static const gm_quantize_fn ref_quants[GM_TYPE_COUNT] = { REF_ACT_TYPES(REF_QUANT_SLOT) };
static const gm_vec_dot_fn ref_dots[GM_TYPE_COUNT] = { REF_WEIGHT_TYPES(REF_DOT_SLOT) };

gm_quantize_fn gm_quantize_ref_fn(gm_type act_type)
{
    return (unsigned)act_type < GM_TYPE_COUNT ? ref_quants[act_type] : NULL;
}

gm_vec_dot_fn gm_vec_dot_ref_fn(gm_type wtype)
{
    return (unsigned)wtype < GM_TYPE_COUNT ? ref_dots[wtype] : NULL;
}
