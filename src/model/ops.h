/* Element-wise and attention operations of the forward pass, written to reproduce the
 * roundings of llama.cpp's CPU backend (docs: gemma-spec.md 2.7). Allocation-free: callers
 * pass every buffer. */
#ifndef GM_OPS_H
#define GM_OPS_H

#include "../tensor/kernels.h"
#include "../util/util.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* y = x * (1/sqrtf(mean(x^2) + eps)) * w, the sum of squares in double; w may be NULL
 * (no weight). y may alias x. */
void gm_rmsnorm(float *y, const float *x, const float *w, int64_t n, float eps);

/* cs[2i] = cos, cs[2i+1] = sin of pair i < n_rot/2 at position pos, theta updated
 * iteratively in float; freq_factors (n_rot/2 divisors) may be NULL. */
void gm_rope_cache(float *cs, int32_t pos, int32_t n_rot, float base, float freq_scale,
                   const float *freq_factors);
/* NEOX rotation of n_head heads of head_dim floats each: pairs (i, i + n_rot/2). */
void gm_rope_neox(float *x, int32_t n_head, int32_t head_dim, int32_t n_rot, const float *cs);

/* Fills tab[65536]: F16 GELU (tanh form) of every F16 value. */
void gm_gelu_table_init(uint16_t *tab);
/* y[i] = gelu(gate[i]) * up[i] through the F16 table; y may alias gate or up. */
void gm_geglu(float *y, const float *gate, const float *up, int64_t n, const uint16_t *tab);

/* In-place softmax with a double sum (masked entries may be -INFINITY). */
void gm_softmax(float *x, int64_t n);
/* x = cap * tanhf(x / cap). */
void gm_softcap(float *x, int64_t n, float cap);

/* Branch-light F32 -> F16 (round to nearest even, same bits as gm_f32_to_f16 and F16C) and
 * F16 -> F32, for the hot loops; NaN and the rare cases go through the util functions. */
static inline uint16_t gm_f16_from_f32_fast(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    const uint32_t sign = (u >> 16) & 0x8000u;
    u &= 0x7fffffffu;
    if (u >= 0x47800000u) /* >= 65536: Inf (or NaN) */
        return u > 0x7f800000u ? gm_f32_to_f16(f) : (uint16_t)(sign | 0x7c00u);
    if (u < 0x38800000u) { /* F16 subnormal or zero: let an FP add do the rounding */
        float a;
        memcpy(&a, &u, 4);
        a += 0.5f;
        uint32_t v;
        memcpy(&v, &a, 4);
        return (uint16_t)(sign | (v - 0x3f000000u));
    }
    /* rebias the exponent, round to nearest even on the 13 dropped bits (may carry to Inf) */
    u += 0xc8000fffu + ((u >> 13) & 1u);
    return (uint16_t)(sign | (u >> 13));
}

static inline float gm_f16_to_f32_fast(uint16_t h)
{
    const uint32_t e = (h >> 10) & 0x1fu;
    if (e == 0 || e == 0x1f)
        return gm_f16_to_f32(h);
    const uint32_t u = ((uint32_t)(h & 0x8000u) << 16) | ((((uint32_t)h & 0x7fffu) << 13) + 0x38000000u);
    float f;
    memcpy(&f, &u, 4);
    return f;
}

void gm_f32_to_f16_row(uint16_t *y, const float *x, int64_t n);
void gm_f16_to_f32_row(float *y, const uint16_t *x, int64_t n);

/* The same ops through the kernel table's ISA versions (k may be NULL: the scalar code). */
void gm_rmsnorm_k(const gm_kernels *k, float *y, const float *x, const float *w, int64_t n, float eps);
void gm_geglu_k(const gm_kernels *k, float *y, const float *gate, const float *up, int64_t n,
                const uint16_t *tab);
/* gm_rmsnorm_k of each of n_head heads of hd floats, all with the same weight w (or none). */
void gm_norm_heads(const gm_kernels *k, float *y, const float *x, const float *w, int32_t n_head, int32_t hd,
                   float eps);

/* Attention of a batch of queries over an F16 KV cache. */
typedef struct gm_attn {
    const float *q;       /* [n_tok][n_head * head_dim], already scaled */
    size_t q_stride;      /* floats between tokens */
    float *out;           /* [n_tok][n_head * head_dim] */
    size_t out_stride;
    int32_t n_tok, pos0;
    int32_t n_head, n_head_kv, head_dim;
    int32_t n_swa;        /* > 0: key p0 visible from query p1 iff p1 - p0 < n_swa */
    const uint16_t *k;    /* [cells][n_head_kv * head_dim] */
    const uint16_t *vt;   /* [n_head_kv * head_dim][cells] (transposed) */
    int32_t cells;        /* position p lives in cell p % cells */
    /* Queries are taken q_block tokens at a time. Per-thread work: scores (then
     * probabilities), F16-rounded Q and a partial output. */
    int32_t q_block;
    float *scores;        /* nth * q_block * max_keys */
    float *qr;            /* nth * q_block * head_dim */
    float *tmp;           /* nth * q_block * head_dim */
    int32_t max_keys;
    const gm_kernels *kern;
} gm_attn;

/* Task for gm_parallel: one (block of q_block tokens, head) pair at a time, interleaved
 * over threads. Same numerics as one query at a time (masks, F16 Q and probabilities). */
void gm_attn_task(void *arg, int ith, int nth);

/* Single-token attentions of different sessions (a batched decode step): n entries of one
 * layer (same head counts), each with n_tok = 1 over its own cache and position. */
typedef struct gm_attn_set {
    const gm_attn *a;
    int32_t n;
} gm_attn_set;

/* Task for gm_parallel: (entry, head) pairs interleaved over threads; each entry's result
 * is the one gm_attn_task gives for it alone. */
void gm_attn_set_task(void *arg, int ith, int nth);

#endif
