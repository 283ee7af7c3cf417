#include "ops.h"

#include "../util/util.h"

#include <math.h>

void gm_rmsnorm(float *y, const float *x, const float *w, int64_t n, float eps)
{
    double sum = 0.0; /* ggml accumulates the float squares in double */
    for (int64_t i = 0; i < n; i++)
        sum += (double)(x[i] * x[i]);
    const float mean = (float)(sum / (double)n);
    const float scale = 1.0f / sqrtf(mean + eps);
    if (w) {
        for (int64_t i = 0; i < n; i++)
            y[i] = (x[i] * scale) * w[i];
    } else {
        for (int64_t i = 0; i < n; i++)
            y[i] = x[i] * scale;
    }
}

void gm_rope_cache(float *cs, int32_t pos, int32_t n_rot, float base, float freq_scale,
                   const float *freq_factors)
{
    const float theta_scale = powf(base, -2.0f / (float)n_rot);
    float theta = (float)pos; /* updated in float, pair by pair, as ggml does */
    for (int32_t i = 0; i < n_rot / 2; i++) {
        const float ff = freq_factors ? freq_factors[i] : 1.0f;
        const float t = freq_scale * (theta / ff);
        cs[2 * i] = cosf(t);
        cs[2 * i + 1] = sinf(t);
        theta *= theta_scale;
    }
}

void gm_rope_neox(float *x, int32_t n_head, int32_t head_dim, int32_t n_rot, const float *cs)
{
    const int32_t half = n_rot / 2;
    for (int32_t h = 0; h < n_head; h++) {
        float *v = x + (size_t)h * (size_t)head_dim;
        for (int32_t i = 0; i < half; i++) {
            const float c = cs[2 * i], s = cs[2 * i + 1];
            const float x0 = v[i], x1 = v[i + half];
            v[i] = x0 * c - x1 * s;
            v[i + half] = x0 * s + x1 * c;
        }
    }
}

void gm_gelu_table_init(uint16_t *tab)
{
    for (uint32_t h = 0; h < 65536; h++) {
        const float v = gm_f16_to_f32((uint16_t)h);
        const float g = 0.5f * v * (1.0f + tanhf(0.79788456080286535587989211986876f * v *
                                                  (1.0f + 0.044715f * v * v)));
        tab[h] = gm_f32_to_f16(g);
    }
}

void gm_geglu(float *y, const float *gate, const float *up, int64_t n, const uint16_t *tab)
{
    for (int64_t i = 0; i < n; i++) {
        const float g = gate[i];
        float a;
        if (g <= -10.0f)
            a = 0.0f;
        else if (g >= 10.0f)
            a = g;
        else
            a = gm_f16_to_f32_fast(tab[gm_f16_from_f32_fast(g)]);
        y[i] = a * up[i];
    }
}

void gm_softmax(float *x, int64_t n)
{
    float max = -INFINITY;
    for (int64_t i = 0; i < n; i++)
        max = x[i] > max ? x[i] : max;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) {
        const float e = expf(x[i] - max);
        x[i] = e;
        sum += (double)e;
    }
    const float inv = (float)(1.0 / sum);
    for (int64_t i = 0; i < n; i++)
        x[i] *= inv;
}

void gm_softcap(float *x, int64_t n, float cap)
{
    const float inv = 1.0f / cap;
    for (int64_t i = 0; i < n; i++)
        x[i] = tanhf(x[i] * inv) * cap;
}

void gm_f32_to_f16_row(uint16_t *y, const float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = gm_f16_from_f32_fast(x[i]);
}

void gm_f16_to_f32_row(float *y, const uint16_t *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = gm_f16_to_f32_fast(x[i]);
}

/* Kernel-table versions of the ops above: the same results (sums of squares up to double
 * rounding), through the ISA code when the table has it. */
void gm_rmsnorm_k(const gm_kernels *k, float *y, const float *x, const float *w, int64_t n, float eps)
{
    if (!k || !k->op.sum_sq || !k->op.scale_mul) {
        gm_rmsnorm(y, x, w, n, eps);
        return;
    }
    const float mean = (float)(k->op.sum_sq(x, n) / (double)n);
    k->op.scale_mul(y, x, 1.0f / sqrtf(mean + eps), w, n);
}

void gm_geglu_k(const gm_kernels *k, float *y, const float *gate, const float *up, int64_t n,
                const uint16_t *tab)
{
    if (k && k->op.geglu)
        k->op.geglu(y, gate, up, n, tab);
    else
        gm_geglu(y, gate, up, n, tab);
}

void gm_norm_heads(const gm_kernels *k, float *y, const float *x, const float *w, int32_t n_head, int32_t hd,
                   float eps)
{
    for (int32_t h = 0; h < n_head; h++)
        gm_rmsnorm_k(k, y + (size_t)h * (size_t)hd, x + (size_t)h * (size_t)hd, w, hd, eps);
}

/* x = F32(F16(x)): values about to enter an F16 product. */
static void round_f16(const gm_kernels *k, float *x, int64_t n)
{
    if (k && k->op.round_f16) {
        k->op.round_f16(x, n);
        return;
    }
    for (int64_t i = 0; i < n; i++)
        x[i] = gm_f16_to_f32_fast(gm_f16_from_f32_fast(x[i]));
}

/* y[c*ldy + r] = dot(F16 row r of w, F32 row c of a) over n elements (row strides in
 * elements): the ISA tile kernel when there is one. */
static void gemm_f16_f32(const gm_kernels *k, int64_t n, const uint16_t *w, size_t ldw, const float *a,
                         size_t lda, float *y, size_t ldy, int nr, int nc)
{
    if (k && k->op.gemm_f16_f32 && n > 0) {
        k->op.gemm_f16_f32(n, w, ldw, a, lda, y, ldy, nr, nc);
        return;
    }
    for (int c = 0; c < nc; c++)
        for (int r = 0; r < nr; r++) {
            float acc = 0.0f;
            for (int64_t i = 0; i < n; i++)
                acc += gm_f16_to_f32_fast(w[(size_t)r * ldw + (size_t)i]) * a[(size_t)c * lda + (size_t)i];
            y[(size_t)c * ldy + (size_t)r] = acc;
        }
}

/* First key position visible from query position p. */
static int32_t first_key(const gm_attn *a, int32_t p)
{
    return (a->n_swa > 0 && p - a->n_swa + 1 > 0) ? p - a->n_swa + 1 : 0;
}

/* One query head for a block of tq consecutive tokens from t0. The block sees keys
 * [k_lo, k_hi] (the union of its queries' ranges); scores of the whole block come from one
 * tile product, then each query's softmax runs over exactly its own visible keys and the
 * others get probability 0. Q and the probabilities are rounded to F16 (as ggml does
 * against an F16 cache) but kept as floats, so only the cache side needs converting. Keys
 * sit in one or two cell segments (a ring may wrap). */
static void attn_block(const gm_attn *a, int32_t t0, int32_t tq, int32_t h, int ith)
{
    const int32_t hd = a->head_dim;
    const int32_t k_lo = first_key(a, a->pos0 + t0), k_hi = a->pos0 + t0 + tq - 1;
    const int32_t nk = k_hi - k_lo + 1;
    const int32_t g = h / (a->n_head / a->n_head_kv);
    const size_t kv_dim = (size_t)a->n_head_kv * (size_t)hd, blk = (size_t)a->q_block;
    float *s = a->scores + (size_t)ith * blk * (size_t)a->max_keys;
    float *q = a->qr + (size_t)ith * blk * (size_t)hd;
    float *tmp = a->tmp + (size_t)ith * blk * (size_t)hd;
    const int32_t c0 = k_lo % a->cells;
    const int32_t len1 = nk < a->cells - c0 ? nk : a->cells - c0, len2 = nk - len1;

    for (int32_t i = 0; i < tq; i++) {
        memcpy(q + (size_t)i * (size_t)hd, a->q + (size_t)(t0 + i) * a->q_stride + (size_t)h * (size_t)hd,
               (size_t)hd * sizeof(float));
    }
    round_f16(a->kern, q, (int64_t)tq * hd);
    const uint16_t *kg = a->k + (size_t)g * (size_t)hd;
    gemm_f16_f32(a->kern, hd, kg + (size_t)c0 * kv_dim, kv_dim, q, (size_t)hd, s, (size_t)nk, len1, tq);
    if (len2 > 0)
        gemm_f16_f32(a->kern, hd, kg, kv_dim, q, (size_t)hd, s + len1, (size_t)nk, len2, tq);
    for (int32_t i = 0; i < tq; i++) {
        const int32_t p = a->pos0 + t0 + i, lo = first_key(a, p) - k_lo, hi = p - k_lo + 1;
        float *si = s + (size_t)i * (size_t)nk;
        gm_softmax(si + lo, hi - lo);
        round_f16(a->kern, si + lo, hi - lo);
        memset(si, 0, (size_t)lo * sizeof(float));
        memset(si + hi, 0, (size_t)(nk - hi) * sizeof(float));
    }
    const uint16_t *vg = a->vt + (size_t)g * (size_t)hd * (size_t)a->cells;
    float *o = a->out + (size_t)t0 * a->out_stride + (size_t)h * (size_t)hd;
    gemm_f16_f32(a->kern, len1, vg + c0, (size_t)a->cells, s, (size_t)nk, o, a->out_stride, hd, tq);
    if (len2 > 0) {
        gemm_f16_f32(a->kern, len2, vg, (size_t)a->cells, s + len1, (size_t)nk, tmp, (size_t)hd, hd, tq);
        for (int32_t i = 0; i < tq; i++)
            for (int32_t d = 0; d < hd; d++)
                o[(size_t)i * a->out_stride + (size_t)d] += tmp[(size_t)i * (size_t)hd + (size_t)d];
    }
}

void gm_attn_task(void *arg, int ith, int nth)
{
    const gm_attn *a = arg;
    const int32_t nb = (a->n_tok + a->q_block - 1) / a->q_block;
    /* Later blocks see more keys: hand them out first, interleaved over threads. */
    const int64_t jobs = (int64_t)nb * a->n_head;
    for (int64_t j = ith; j < jobs; j += nth) {
        const int32_t b = nb - 1 - (int32_t)(j / a->n_head), h = (int32_t)(j % a->n_head);
        const int32_t t0 = b * a->q_block;
        attn_block(a, t0, GM_MIN(a->q_block, a->n_tok - t0), h, ith);
    }
}

void gm_attn_set_task(void *arg, int ith, int nth)
{
    const gm_attn_set *set = arg;
    const int64_t H = set->n > 0 ? set->a[0].n_head : 0;
    for (int64_t j = ith; j < (int64_t)set->n * H; j += nth)
        attn_block(&set->a[j / H], 0, 1, (int32_t)(j % H), ith);
}
