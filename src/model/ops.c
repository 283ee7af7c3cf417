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

/* F16 x F16 dot with F32 accumulation: the ISA kernel when there is one. */
static float dot_f16(const gm_kernels *k, const uint16_t *a, const uint16_t *b, int64_t n)
{
    if (n <= 0)
        return 0.0f;
    if (k && k->type[GM_TYPE_F16].vec_dot) {
        float s;
        k->type[GM_TYPE_F16].vec_dot(n, &s, a, b);
        return s;
    }
    float s = 0.0f;
    for (int64_t i = 0; i < n; i++)
        s += gm_f16_to_f32(a[i]) * gm_f16_to_f32(b[i]);
    return s;
}

/* One query head of one token: scores over the visible keys, softmax, then V. Keys are
 * visited in position order; a ring cache may wrap once, giving two cell segments. */
static void attn_one(const gm_attn *a, int32_t t, int32_t h, int ith)
{
    const int32_t hd = a->head_dim;
    const int32_t p = a->pos0 + t;
    const int32_t k0 = (a->n_swa > 0 && p - a->n_swa + 1 > 0) ? p - a->n_swa + 1 : 0;
    const int32_t nk = p - k0 + 1;
    const int32_t g = h / (a->n_head / a->n_head_kv);
    const size_t kv_dim = (size_t)a->n_head_kv * (size_t)hd;
    float *s = a->scores + (size_t)ith * (size_t)a->max_keys;
    uint16_t *p16 = a->p16 + (size_t)ith * (size_t)a->max_keys;
    uint16_t *q16 = a->q16 + (size_t)ith * (size_t)hd;

    /* Q is rounded to F16 before the QK dot, as ggml does against an F16 cache. */
    gm_f32_to_f16_row(q16, a->q + (size_t)t * a->q_stride + (size_t)h * (size_t)hd, hd);
    for (int32_t i = 0; i < nk; i++) {
        const int32_t cell = (k0 + i) % a->cells;
        s[i] = dot_f16(a->kern, a->k + (size_t)cell * kv_dim + (size_t)g * (size_t)hd, q16, hd);
    }
    gm_softmax(s, nk);
    gm_f32_to_f16_row(p16, s, nk); /* probabilities enter the V product as F16 */

    const int32_t c0 = k0 % a->cells;
    const int32_t len1 = nk < a->cells - c0 ? nk : a->cells - c0;
    float *o = a->out + (size_t)t * a->out_stride + (size_t)h * (size_t)hd;
    for (int32_t d = 0; d < hd; d++) {
        const uint16_t *row = a->vt + ((size_t)g * (size_t)hd + (size_t)d) * (size_t)a->cells;
        o[d] = dot_f16(a->kern, row + c0, p16, len1) + dot_f16(a->kern, row, p16 + len1, nk - len1);
    }
}

void gm_attn_task(void *arg, int ith, int nth)
{
    const gm_attn *a = arg;
    const int64_t jobs = (int64_t)a->n_tok * a->n_head;
    for (int64_t j = ith; j < jobs; j += nth)
        attn_one(a, (int32_t)(j / a->n_head), (int32_t)(j % a->n_head), ith);
}
