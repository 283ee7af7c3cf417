/* A small GGUF writer for fuzz seeds and robustness tests (header-only, static functions).
 *
 * Builds files from scratch (gb_model + gb_kv_* + gb_tensor_add) or rewrites a parsed file
 * (gb_from_ctx with hooks that drop or change records), so tests can produce exactly one
 * defect at a time: a missing tensor, a wrong shape, a bad hyper-parameter. Not library
 * code: on allocation failure it sets oom and the caller gets NULL from gb_finish. */
#ifndef GM_FUZZ_GGUF_BUILD_H
#define GM_FUZZ_GGUF_BUILD_H

#include "gguf/gguf.h"
#include "tensor/types.h"
#include "util/util.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct gb_buf {
    uint8_t *p;
    size_t n, cap;
    bool oom;
} gb_buf;

static void gb_put(gb_buf *b, const void *d, size_t n)
{
    if (b->oom || n == 0)
        return;
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n)
            cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}
static void gb_u8(gb_buf *b, uint8_t v) { gb_put(b, &v, 1); }
static void gb_u32(gb_buf *b, uint32_t v) { gb_put(b, &v, 4); }
static void gb_u64(gb_buf *b, uint64_t v) { gb_put(b, &v, 8); }
static void gb_f32(gb_buf *b, float v) { gb_put(b, &v, 4); }
static void gb_strn(gb_buf *b, const char *s, size_t n)
{
    gb_u64(b, n);
    gb_put(b, s, n);
}
static void gb_str(gb_buf *b, const char *s) { gb_strn(b, s, strlen(s)); }

#define GB_MAX_TENSORS 512

typedef struct gb_tensor {
    char name[128];
    uint32_t type;
    uint32_t n_dims;
    int64_t ne[4];
    const void *data; /* NULL: filled with a deterministic pattern of small values */
    size_t data_len;  /* bytes available at data (copied up to nbytes, rest zero) */
} gb_tensor;

typedef struct gb_model {
    uint32_t version;
    gb_buf kv; /* serialized KV records */
    uint64_t n_kv;
    gb_tensor t[GB_MAX_TENSORS];
    size_t n_t;
    uint32_t alignment; /* used for the layout; write general.alignment yourself to change it */
} gb_model;

static void gb_init(gb_model *m)
{
    memset(m, 0, sizeof *m);
    m->version = 3;
    m->alignment = 32;
}
static void gb_release(gb_model *m) { free(m->kv.p); }

static void gb_key(gb_model *m, const char *key, uint32_t type)
{
    gb_str(&m->kv, key);
    gb_u32(&m->kv, type);
    m->n_kv++;
}
static void gb_kv_u32(gb_model *m, const char *k, uint32_t v) { gb_key(m, k, GGUF_T_UINT32); gb_u32(&m->kv, v); }
static void gb_kv_i32(gb_model *m, const char *k, int32_t v) { gb_key(m, k, GGUF_T_INT32); gb_u32(&m->kv, (uint32_t)v); }
static void gb_kv_f32(gb_model *m, const char *k, float v) { gb_key(m, k, GGUF_T_FLOAT32); gb_f32(&m->kv, v); }
static void gb_kv_bool(gb_model *m, const char *k, bool v) { gb_key(m, k, GGUF_T_BOOL); gb_u8(&m->kv, v); }
static void gb_kv_str(gb_model *m, const char *k, const char *v) { gb_key(m, k, GGUF_T_STRING); gb_str(&m->kv, v); }
/* Array of fixed-size elements (elem_size bytes each, little-endian in memory). */
static void gb_kv_arr(gb_model *m, const char *k, uint32_t elem_type, const void *data, uint64_t n,
                      size_t elem_size)
{
    gb_key(m, k, GGUF_T_ARRAY);
    gb_u32(&m->kv, elem_type);
    gb_u64(&m->kv, n);
    gb_put(&m->kv, data, (size_t)n * elem_size);
}
static void gb_kv_arr_str(gb_model *m, const char *k, const char *const *s, uint64_t n)
{
    gb_key(m, k, GGUF_T_ARRAY);
    gb_u32(&m->kv, GGUF_T_STRING);
    gb_u64(&m->kv, n);
    for (uint64_t i = 0; i < n; i++)
        gb_str(&m->kv, s[i]);
}

static gb_tensor *gb_tensor_add(gb_model *m, const char *name, uint32_t type, uint32_t n_dims,
                                int64_t ne0, int64_t ne1, int64_t ne2, int64_t ne3)
{
    if (m->n_t >= GB_MAX_TENSORS)
        return NULL;
    gb_tensor *t = &m->t[m->n_t++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->type = type;
    t->n_dims = n_dims;
    t->ne[0] = ne0; t->ne[1] = ne1; t->ne[2] = ne2; t->ne[3] = ne3;
    return t;
}

static uint64_t gb_tensor_nbytes(const gb_tensor *t)
{
    const gm_type_traits *tr = gm_type_get(t->type);
    if (!tr || tr->blck == 0)
        return 0;
    /* Invalid shapes (tests write them on purpose) get no data rather than a huge buffer. */
    for (int i = 0; i < 4; i++)
        if (t->ne[i] <= 0)
            return 0;
    uint64_t n = (uint64_t)t->ne[0] / tr->blck * tr->type_size;
    for (int i = 1; i < 4; i++)
        if (__builtin_mul_overflow(n, (uint64_t)t->ne[i], &n))
            return 0;
    return n > ((uint64_t)1 << 30) ? 0 : n;
}

static size_t gb_align(size_t x, uint32_t a) { return (x + a - 1) / a * a; }

/* Fills a tensor with small values so a forward pass stays finite: F32 / F16 get values in
 * [-0.25, 0.25] (norm weights near 1), quantized types get bytes from a fixed generator. */
static void gb_fill(const gb_tensor *t, uint8_t *dst, uint64_t nbytes)
{
    uint32_t s = 2166136261u;
    for (const char *c = t->name; *c; c++)
        s = (s ^ (uint8_t)*c) * 16777619u;
    bool norm = strstr(t->name, "norm") != NULL;
    if (t->type == GM_TYPE_F32) {
        for (uint64_t i = 0; i + 4 <= nbytes; i += 4) {
            s = s * 1664525u + 1013904223u;
            float v = norm ? 1.0f : ((float)(s >> 8) / 16777216.0f - 0.5f) * 0.5f;
            memcpy(dst + i, &v, 4);
        }
    } else if (t->type == GM_TYPE_F16) {
        for (uint64_t i = 0; i + 2 <= nbytes; i += 2) {
            s = s * 1664525u + 1013904223u;
            /* sign, small exponent (2^-6 .. 2^-3), random mantissa */
            uint16_t h = (uint16_t)(((s >> 31) << 15) | ((9u + ((s >> 20) & 3u)) << 10) | ((s >> 8) & 0x3ffu));
            if (norm)
                h = 0x3c00;
            memcpy(dst + i, &h, 2);
        }
    } else {
        for (uint64_t i = 0; i < nbytes; i++) {
            s = s * 1664525u + 1013904223u;
            dst[i] = (uint8_t)(s >> 24);
        }
        /* Block scales of the small quant types are F16 in the first two bytes: keep them
         * tiny and finite so dequantized values stay small. */
        const gm_type_traits *tr = gm_type_get(t->type);
        if (tr && (t->type == GM_TYPE_Q8_0 || t->type == GM_TYPE_Q4_0 || t->type == GM_TYPE_Q4_1 ||
                   t->type == GM_TYPE_Q5_0 || t->type == GM_TYPE_Q5_1)) {
            for (uint64_t i = 0; i + tr->type_size <= nbytes; i += tr->type_size) {
                uint16_t h = 0x1c00; /* 2^-8 */
                memcpy(dst + i, &h, 2);
            }
        }
    }
}

/* Serializes the model; returns a malloc'ed buffer (caller frees) or NULL. */
static uint8_t *gb_finish(gb_model *m, size_t *len)
{
    gb_buf b = {0};
    gb_put(&b, "GGUF", 4);
    gb_u32(&b, m->version);
    gb_u64(&b, m->n_t);
    gb_u64(&b, m->n_kv);
    gb_put(&b, m->kv.p, m->kv.n);
    if (m->kv.oom)
        b.oom = true;
    uint64_t off = 0;
    uint64_t offs[GB_MAX_TENSORS];
    for (size_t i = 0; i < m->n_t; i++) {
        const gb_tensor *t = &m->t[i];
        gb_str(&b, t->name);
        gb_u32(&b, t->n_dims);
        for (uint32_t d = 0; d < t->n_dims && d < 4; d++)
            gb_u64(&b, (uint64_t)t->ne[d]);
        gb_u32(&b, t->type);
        gb_u64(&b, off);
        offs[i] = off;
        off = gb_align(off + gb_tensor_nbytes(t), m->alignment);
    }
    size_t data_start = gb_align(b.n, m->alignment);
    static const uint8_t zeros[64];
    while (b.n < data_start && !b.oom)
        gb_put(&b, zeros, GM_MIN(data_start - b.n, sizeof zeros));
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    size_t total = data_start + (size_t)off;
    uint8_t *p = realloc(b.p, total ? total : 1);
    if (!p) {
        free(b.p);
        return NULL;
    }
    memset(p + data_start, 0, (size_t)off);
    for (size_t i = 0; i < m->n_t; i++) {
        const gb_tensor *t = &m->t[i];
        uint64_t nb = gb_tensor_nbytes(t);
        uint8_t *dst = p + data_start + offs[i];
        if (t->data)
            memcpy(dst, t->data, (size_t)(t->data_len < nb ? t->data_len : nb));
        else
            gb_fill(t, dst, nb);
    }
    *len = total;
    return p;
}

/* Serialized size of a KV record's value (after the u32 type), from the parsed index. */
static uint64_t gb_value_size(const gguf_kv *kv)
{
    static const uint8_t sz[GGUF_T_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    uint32_t type = kv->type == GGUF_T_ARRAY ? kv->arr_type : kv->type;
    uint64_t n = kv->type == GGUF_T_ARRAY ? kv->n : 1;
    uint64_t head = kv->type == GGUF_T_ARRAY ? 12 : 0;
    if (type == GGUF_T_STRING) {
        uint64_t total = 0;
        if (kv->type == GGUF_T_ARRAY) {
            for (uint64_t i = 0; i < n; i++)
                total += 8 + kv->strs[i].len;
        } else {
            total = 8 + gm_rd_u64(kv->data);
        }
        return head + total;
    }
    return head + n * (type < GGUF_T_COUNT ? sz[type] : 0);
}

/* Rewriting a parsed file. kv_hook: return true to drop the record (it may add its own
 * replacement with gb_kv_*). t_hook: return true to drop the tensor; it may edit *t
 * (shape, type, name) before it is written; data is copied from the source tensor. */
typedef bool (*gb_kv_hook)(void *user, gb_model *m, const gguf_kv *kv);
typedef bool (*gb_t_hook)(void *user, gb_tensor *t);

static bool gb_key_is(const gguf_kv *kv, const char *key)
{
    return kv->key.len == strlen(key) && memcmp(kv->key.ptr, key, kv->key.len) == 0;
}

static void gb_from_ctx(gb_model *m, const gguf_ctx *c, gb_kv_hook kh, gb_t_hook th, void *user)
{
    gb_init(m);
    m->version = c->version;
    m->alignment = c->alignment;
    for (uint64_t i = 0; i < c->n_kv; i++) {
        const gguf_kv *kv = &c->kv[i];
        if (kh && kh(user, m, kv))
            continue;
        gb_strn(&m->kv, kv->key.ptr, (size_t)kv->key.len);
        gb_u32(&m->kv, kv->type);
        gb_put(&m->kv, kv->data - (kv->type == GGUF_T_ARRAY ? 12 : 0), (size_t)gb_value_size(kv));
        m->n_kv++;
    }
    for (uint64_t i = 0; i < c->n_tensors && m->n_t < GB_MAX_TENSORS; i++) {
        const gguf_tensor *s = &c->tensors[i];
        gb_tensor t;
        memset(&t, 0, sizeof t);
        snprintf(t.name, sizeof t.name, "%.*s", (int)s->name.len, s->name.ptr);
        t.type = s->type;
        t.n_dims = s->n_dims;
        memcpy(t.ne, s->ne, sizeof t.ne);
        t.data = s->data;
        t.data_len = (size_t)s->nbytes;
        if (th && th(user, &t))
            continue;
        m->t[m->n_t++] = t;
    }
}

/* ---- tiny models ------------------------------------------------------------------- */

/* Copies the tokenizer.* records of src (a parsed model) into m. */
static bool gb_copy_tokenizer_hook(void *user, gb_model *m, const gguf_kv *kv)
{
    (void)user;
    (void)m;
    return !(kv->key.len > 10 && memcmp(kv->key.ptr, "tokenizer.", 10) == 0);
}

typedef struct gb_tiny_opts {
    uint32_t weight_type; /* type of the 2-D matrices (F32, F16, Q8_0, Q4_0, ...) */
    uint32_t n_layer;     /* default 2 */
    uint32_t n_embd;      /* default 32 (must suit weight_type's block size) */
    uint32_t n_ff;        /* default 64 */
    uint32_t n_ctx;       /* default 64 */
} gb_tiny_opts;

/* A small but complete Gemma 3 model: tokenizer records copied from vocab_src (a parsed
 * Gemma 3 GGUF, e.g. ../shared/testdata/g3-f32.gguf), 2 heads / 1 KV head of width 16,
 * sliding window 4, every second layer global. Returns the serialized file or NULL. */
static uint8_t *gb_tiny_gemma3(const gguf_ctx *vocab_src, const gb_tiny_opts *o, size_t *len)
{
    static gb_model m; /* large (tensor table): keep it off the stack */
    gb_init(&m);
    uint32_t L = o && o->n_layer ? o->n_layer : 2, E = o && o->n_embd ? o->n_embd : 32;
    uint32_t F = o && o->n_ff ? o->n_ff : 64, C = o && o->n_ctx ? o->n_ctx : 64;
    uint32_t WT = o ? o->weight_type : GM_TYPE_F32;
    uint32_t H = 2, HKV = 1, HD = 16;
    uint64_t n_vocab = 0;
    const gguf_kv *toks = gguf_find(vocab_src, "tokenizer.ggml.tokens");
    if (toks && toks->type == GGUF_T_ARRAY)
        n_vocab = toks->n;
    gb_kv_str(&m, "general.architecture", "gemma3");
    gb_kv_str(&m, "general.name", "tiny-fuzz-gemma3");
    gb_kv_u32(&m, "gemma3.context_length", C);
    gb_kv_u32(&m, "gemma3.embedding_length", E);
    gb_kv_u32(&m, "gemma3.block_count", L);
    gb_kv_u32(&m, "gemma3.feed_forward_length", F);
    gb_kv_u32(&m, "gemma3.attention.head_count", H);
    gb_kv_u32(&m, "gemma3.attention.head_count_kv", HKV);
    gb_kv_u32(&m, "gemma3.attention.key_length", HD);
    gb_kv_u32(&m, "gemma3.attention.value_length", HD);
    gb_kv_f32(&m, "gemma3.attention.layer_norm_rms_epsilon", 1e-6f);
    gb_kv_u32(&m, "gemma3.attention.sliding_window", 4);
    gb_kv_u32(&m, "gemma3.attention.sliding_window_pattern", 2);
    gb_kv_f32(&m, "gemma3.rope.freq_base", 1e6f);
    gb_kv_f32(&m, "gemma3.rope.freq_base_swa", 1e4f);
    /* tokenizer records, verbatim */
    gb_model tmp_kv;
    gb_from_ctx(&tmp_kv, vocab_src, gb_copy_tokenizer_hook, NULL, NULL);
    gb_put(&m.kv, tmp_kv.kv.p, tmp_kv.kv.n);
    m.n_kv += tmp_kv.n_kv;
    m.kv.oom |= tmp_kv.kv.oom;
    gb_release(&tmp_kv);
    gb_tensor_add(&m, "token_embd.weight", WT, 2, E, (int64_t)n_vocab, 1, 1);
    gb_tensor_add(&m, "output_norm.weight", GM_TYPE_F32, 1, E, 1, 1, 1);
    char n[96];
#define GB_T(suffix, type, nd, a, b)                                        \
    do {                                                                    \
        snprintf(n, sizeof n, "blk.%u.%s", il, suffix);                     \
        gb_tensor_add(&m, n, type, nd, a, b, 1, 1);                         \
    } while (0)
    for (uint32_t il = 0; il < L; il++) {
        GB_T("attn_norm.weight", GM_TYPE_F32, 1, E, 1);
        GB_T("attn_q.weight", WT, 2, E, H * HD);
        GB_T("attn_k.weight", WT, 2, E, HKV * HD);
        GB_T("attn_v.weight", WT, 2, E, HKV * HD);
        GB_T("attn_q_norm.weight", GM_TYPE_F32, 1, HD, 1);
        GB_T("attn_k_norm.weight", GM_TYPE_F32, 1, HD, 1);
        GB_T("attn_output.weight", WT, 2, H * HD, E);
        GB_T("post_attention_norm.weight", GM_TYPE_F32, 1, E, 1);
        GB_T("ffn_norm.weight", GM_TYPE_F32, 1, E, 1);
        GB_T("ffn_gate.weight", WT, 2, E, F);
        GB_T("ffn_up.weight", WT, 2, E, F);
        GB_T("ffn_down.weight", WT, 2, F, E);
        GB_T("post_ffw_norm.weight", GM_TYPE_F32, 1, E, 1);
    }
#undef GB_T
    uint8_t *p = gb_finish(&m, len);
    gb_release(&m);
    return p;
}

#endif
