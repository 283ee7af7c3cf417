/* A small GGUF writer for tests, fuzz targets and fuzz seeds (header-only; test code, not
 * library code).
 *
 *   gguf_writer w;
 *   gw_init(&w, 3);
 *   gw_kv_str(&w, "general.architecture", "gemma3");
 *   gw_tensor_add(&w, "t.weight", GM_TYPE_F32, 2, 4, 2, 1, 1); // size from type, pattern data
 *   gw_finish(&w);             // w.buf[0..w.len) is the file
 *   ...
 *   gw_free(&w);
 *
 * Metadata is written as it is declared, so tests can emit malformed records with gw_key
 * plus raw gw_u32/gw_u64 writes. Tensor infos and data are written by gw_finish, which lays
 * the data out densely at w.alignment (default 32; add the general.alignment key yourself
 * to put it in the file) and records where each tensor's fields landed, so tests can patch
 * bytes afterwards. gw_finish may be called again (after changing tensors or patching the
 * header): it rewrites everything after the metadata. gw_from_ctx rewrites a parsed file
 * through hooks that drop or change records, so tests can produce exactly one defect at a
 * time. Allocation failure sets w.failed. */
#ifndef GM_GGUF_WRITER_H
#define GM_GGUF_WRITER_H

#include "gguf/gguf.h"
#include "tensor/types.h"
#include "util/util.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct gw_tensor_rec {
    char name[128];
    uint32_t type;
    uint32_t n_dims;
    int64_t ne[4];
    /* 0: the size follows from type and shape, and without data the tensor gets a pattern
     * of small values (gw_fill); otherwise exactly this many bytes, zeros without data. */
    uint64_t nbytes;
    const void *data; /* borrowed until gw_finish; copied up to the size, the rest zero */
    size_t data_len;
    /* Set by gw_finish: offset in the data section, file positions of ne[] and offset. */
    uint64_t offset;
    size_t pos_ne, pos_offset;
} gw_tensor_rec;

typedef struct gguf_writer {
    uint8_t *buf;
    size_t len, cap;
    bool failed;
    uint64_t n_kv;
    gw_tensor_rec *t;
    size_t n_t, cap_t;
    uint32_t alignment;
    size_t kv_end;      /* end of the metadata, set by the first gw_finish */
    size_t data_offset; /* set by gw_finish */
} gguf_writer;

/* Appends bytes. Also usable alone as a byte buffer: gguf_writer b = {0}. */
static inline void gw_raw(gguf_writer *w, const void *p, size_t n)
{
    if (w->failed || n == 0)
        return;
    if (w->len + n > w->cap) {
        size_t cap = w->cap ? w->cap : 256;
        while (cap < w->len + n)
            cap *= 2;
        uint8_t *nb = realloc(w->buf, cap);
        if (!nb) {
            w->failed = true;
            return;
        }
        w->buf = nb;
        w->cap = cap;
    }
    memcpy(w->buf + w->len, p, n);
    w->len += n;
}

static inline void gw_u8(gguf_writer *w, uint8_t v) { gw_raw(w, &v, 1); }
static inline void gw_u32(gguf_writer *w, uint32_t v) { gw_raw(w, &v, 4); } /* little-endian hosts */
static inline void gw_u64(gguf_writer *w, uint64_t v) { gw_raw(w, &v, 8); }
static inline void gw_f32(gguf_writer *w, float v) { gw_raw(w, &v, 4); }
static inline void gw_strn(gguf_writer *w, const char *s, size_t n)
{
    gw_u64(w, n);
    gw_raw(w, s, n);
}
static inline void gw_str(gguf_writer *w, const char *s) { gw_strn(w, s, strlen(s)); }

/* Overwrites bytes already written (for patching a finished file). */
static inline void gw_patch_u32(uint8_t *buf, size_t pos, uint32_t v) { memcpy(buf + pos, &v, 4); }
static inline void gw_patch_u64(uint8_t *buf, size_t pos, uint64_t v) { memcpy(buf + pos, &v, 8); }

static inline void gw_init(gguf_writer *w, uint32_t version)
{
    memset(w, 0, sizeof *w);
    w->alignment = 32;
    gw_raw(w, "GGUF", 4);
    gw_u32(w, version);
    gw_u64(w, 0); /* n_tensors, patched by gw_finish */
    gw_u64(w, 0); /* n_kv, patched as records are added */
}

static inline void gw_free(gguf_writer *w)
{
    free(w->t);
    free(w->buf);
    memset(w, 0, sizeof *w);
}

/* Starts a metadata record: key and value type. The caller writes the value. */
static inline void gw_keyn(gguf_writer *w, const char *key, size_t key_len, uint32_t type)
{
    w->n_kv++;
    gw_strn(w, key, key_len);
    gw_u32(w, type);
    if (!w->failed)
        gw_patch_u64(w->buf, 16, w->n_kv);
}
static inline void gw_key(gguf_writer *w, const char *key, uint32_t type) { gw_keyn(w, key, strlen(key), type); }

static inline void gw_kv_u32(gguf_writer *w, const char *k, uint32_t v) { gw_key(w, k, GGUF_T_UINT32); gw_u32(w, v); }
static inline void gw_kv_i32(gguf_writer *w, const char *k, int32_t v) { gw_key(w, k, GGUF_T_INT32); gw_u32(w, (uint32_t)v); }
static inline void gw_kv_f32(gguf_writer *w, const char *k, float v) { gw_key(w, k, GGUF_T_FLOAT32); gw_f32(w, v); }
static inline void gw_kv_bool(gguf_writer *w, const char *k, bool v) { gw_key(w, k, GGUF_T_BOOL); gw_u8(w, v ? 1 : 0); }
static inline void gw_kv_str(gguf_writer *w, const char *k, const char *v) { gw_key(w, k, GGUF_T_STRING); gw_str(w, v); }
static inline void gw_kv_u64(gguf_writer *w, const char *k, uint64_t v) { gw_key(w, k, GGUF_T_UINT64); gw_u64(w, v); }

/* Array of fixed-size elements (elem_size bytes each, little-endian in memory). */
static inline void gw_kv_arr(gguf_writer *w, const char *k, uint32_t elem_type, const void *data, uint64_t n,
                      size_t elem_size)
{
    gw_key(w, k, GGUF_T_ARRAY);
    gw_u32(w, elem_type);
    gw_u64(w, n);
    gw_raw(w, data, (size_t)n * elem_size);
}

static inline void gw_kv_arr_str(gguf_writer *w, const char *k, const char *const *s, uint64_t n)
{
    gw_key(w, k, GGUF_T_ARRAY);
    gw_u32(w, GGUF_T_STRING);
    gw_u64(w, n);
    for (uint64_t i = 0; i < n; i++)
        gw_str(w, s[i]);
}

/* A new zeroed tensor record (NULL on allocation failure); valid until the next one. */
static inline gw_tensor_rec *gw_push(gguf_writer *w)
{
    if (w->n_t == w->cap_t) {
        size_t cap = w->cap_t ? 2 * w->cap_t : 16;
        gw_tensor_rec *nt = realloc(w->t, cap * sizeof *nt);
        if (!nt) {
            w->failed = true;
            return NULL;
        }
        w->t = nt;
        w->cap_t = cap;
    }
    gw_tensor_rec *t = &w->t[w->n_t++];
    memset(t, 0, sizeof *t);
    return t;
}

/* Declares a tensor whose size follows from type and shape (written by gw_finish). */
static inline gw_tensor_rec *gw_tensor_add(gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                                    int64_t ne0, int64_t ne1, int64_t ne2, int64_t ne3)
{
    gw_tensor_rec *t = gw_push(w);
    if (!t)
        return NULL;
    snprintf(t->name, sizeof t->name, "%s", name);
    t->type = type;
    t->n_dims = n_dims;
    t->ne[0] = ne0; t->ne[1] = ne1; t->ne[2] = ne2; t->ne[3] = ne3;
    return t;
}

/* Declares a tensor of exactly nbytes bytes: data (borrowed until gw_finish) or zeros. */
static inline gw_tensor_rec *gw_tensor(gguf_writer *w, const char *name, uint32_t n_dims, const int64_t *ne,
                                uint32_t type, uint64_t nbytes, const void *data)
{
    int64_t d[4];
    for (int i = 0; i < 4; i++)
        d[i] = i < (int)n_dims && ne ? ne[i] : 1;
    gw_tensor_rec *t = gw_tensor_add(w, name, type, n_dims, d[0], d[1], d[2], d[3]);
    if (t) {
        t->nbytes = nbytes;
        t->data = data;
        t->data_len = data ? (size_t)nbytes : 0;
    }
    return t;
}

static inline uint64_t gw_tensor_nbytes(const gw_tensor_rec *t)
{
    if (t->nbytes)
        return t->nbytes;
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

/* Fills a tensor with small values so a forward pass stays finite: F32 / F16 get values in
 * [-0.25, 0.25] (norm weights near 1), quantized types get bytes from a fixed generator. */
static inline void gw_fill(const gw_tensor_rec *t, uint8_t *dst, uint64_t nbytes)
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

static inline void gw_zeros(gguf_writer *w, uint64_t n)
{
    static const uint8_t zeros[64];
    for (; n && !w->failed; n -= GM_MIN(n, sizeof zeros))
        gw_raw(w, zeros, (size_t)GM_MIN(n, sizeof zeros));
}
static inline void gw_pad(gguf_writer *w, size_t to) { gw_zeros(w, (to - w->len % to) % to); }

/* Writes the tensor table and the data section (again, if called before). Returns false on
 * allocation failure. */
static inline bool gw_finish(gguf_writer *w)
{
    if (w->kv_end)
        w->len = w->kv_end;
    else
        w->kv_end = w->len;
    uint64_t off = 0, a = w->alignment ? w->alignment : 32;
    for (size_t i = 0; i < w->n_t; i++) {
        gw_tensor_rec *t = &w->t[i];
        t->offset = off;
        off += (gw_tensor_nbytes(t) + a - 1) / a * a;
        gw_str(w, t->name);
        gw_u32(w, t->n_dims);
        t->pos_ne = w->len;
        for (uint32_t d = 0; d < t->n_dims && d < 4; d++)
            gw_u64(w, (uint64_t)t->ne[d]);
        gw_u32(w, t->type);
        t->pos_offset = w->len;
        gw_u64(w, t->offset);
    }
    if (!w->failed)
        gw_patch_u64(w->buf, 8, w->n_t);
    gw_pad(w, (size_t)a);
    w->data_offset = w->len;
    for (size_t i = 0; i < w->n_t && !w->failed; i++) {
        const gw_tensor_rec *t = &w->t[i];
        uint64_t nb = gw_tensor_nbytes(t);
        size_t start = w->len, copy = t->data ? (size_t)GM_MIN(t->data_len, nb) : 0;
        gw_raw(w, t->data, copy);
        gw_zeros(w, nb - copy);
        if (!w->failed && !t->data && !t->nbytes)
            gw_fill(t, w->buf + start, nb);
        gw_pad(w, (size_t)a);
    }
    return !w->failed;
}

/* Finishes, hands over the file (caller frees; NULL on allocation failure) and frees the
 * rest of the writer. */
static inline uint8_t *gw_take(gguf_writer *w, size_t *len)
{
    uint8_t *p = NULL;
    if (gw_finish(w)) {
        p = w->buf;
        *len = w->len;
        w->buf = NULL;
    }
    gw_free(w);
    return p;
}

static inline bool gw_write_file(const gguf_writer *w, const char *path)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return false;
    bool ok = fwrite(w->buf, 1, w->len, f) == w->len;
    return fclose(f) == 0 && ok;
}

/* ---- rewriting a parsed file --------------------------------------------------------- */

/* Serialized size of a KV record's value (after the u32 type), from the parsed index. */
static inline uint64_t gw_value_size(const gguf_kv *kv)
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

/* kv_hook: return true to drop the record (it may add its own replacement with gw_kv_*).
 * t_hook: return true to drop the tensor; it may edit *t (shape, type, name) before it is
 * written; data is copied from the source tensor. */
typedef bool (*gw_kv_hook)(void *user, gguf_writer *w, const gguf_kv *kv);
typedef bool (*gw_t_hook)(void *user, gw_tensor_rec *t);

static inline bool gw_key_is(const gguf_kv *kv, const char *key)
{
    return kv->key.len == strlen(key) && memcmp(kv->key.ptr, key, kv->key.len) == 0;
}

/* Copies the metadata records of c that kh does not drop. */
static inline void gw_copy_kv(gguf_writer *w, const gguf_ctx *c, gw_kv_hook kh, void *user)
{
    for (uint64_t i = 0; i < c->n_kv; i++) {
        const gguf_kv *kv = &c->kv[i];
        if (kh && kh(user, w, kv))
            continue;
        gw_keyn(w, kv->key.ptr, (size_t)kv->key.len, kv->type);
        gw_raw(w, kv->data - (kv->type == GGUF_T_ARRAY ? 12 : 0), (size_t)gw_value_size(kv));
    }
}

static inline void gw_from_ctx(gguf_writer *w, const gguf_ctx *c, gw_kv_hook kh, gw_t_hook th, void *user)
{
    gw_init(w, c->version);
    w->alignment = c->alignment;
    gw_copy_kv(w, c, kh, user);
    for (uint64_t i = 0; i < c->n_tensors; i++) {
        const gguf_tensor *s = &c->tensors[i];
        gw_tensor_rec t;
        memset(&t, 0, sizeof t);
        snprintf(t.name, sizeof t.name, "%.*s", (int)s->name.len, s->name.ptr);
        t.type = s->type;
        t.n_dims = s->n_dims;
        memcpy(t.ne, s->ne, sizeof t.ne);
        t.data = s->data;
        t.data_len = (size_t)s->nbytes;
        if (th && th(user, &t))
            continue;
        gw_tensor_rec *d = gw_push(w);
        if (d)
            *d = t;
    }
}

/* ---- ready-made files ----------------------------------------------------------------- */

/* A small valid file with every kind of metadata value and three F32 tensors (1-D, 2-D
 * and 4-D) that tests and fuzzers can start from. Key 0 is general.architecture. */
static inline bool gw_build_sample(gguf_writer *w)
{
    gw_init(w, 3);
    gw_kv_str(w, "general.architecture", "gemma3");
    gw_kv_str(w, "general.name", "sample");
    gw_kv_u32(w, "general.alignment", 32);
    gw_kv_u32(w, "gemma3.block_count", 2);
    gw_kv_u32(w, "gemma3.embedding_length", 8);
    gw_kv_f32(w, "gemma3.attention.layer_norm_rms_epsilon", 1e-6f);
    gw_kv_bool(w, "tokenizer.ggml.add_bos_token", true);
    gw_kv_u64(w, "sample.u64", 12345678901234ull);
    gw_kv_i32(w, "sample.i32", -7);
    const char *toks[] = {"<pad>", "<eos>", "<bos>", "a\"b\n"};
    gw_kv_arr_str(w, "tokenizer.ggml.tokens", toks, 4);
    const float scores[4] = {0, 0, 0, -1.5f};
    gw_kv_arr(w, "tokenizer.ggml.scores", GGUF_T_FLOAT32, scores, 4, 4);
    const int32_t ff[2] = {16, 32};
    gw_kv_arr(w, "gemma3.feed_forward_length", GGUF_T_INT32, ff, 2, 4);
    const uint8_t pat[2] = {1, 0};
    gw_kv_arr(w, "gemma3.attention.sliding_window_pattern", GGUF_T_BOOL, pat, 2, 1);
    float norm[8];
    for (int i = 0; i < 8; i++)
        norm[i] = (float)i;
    int64_t ne1[1] = {8}, ne2[2] = {8, 4}, ne4[4] = {4, 2, 2, 2};
    gw_tensor(w, "output_norm.weight", 1, ne1, GM_TYPE_F32, sizeof norm, norm);
    gw_tensor(w, "token_embd.weight", 2, ne2, GM_TYPE_F32, 8 * 4 * 4, NULL);
    gw_tensor(w, "sample.t4", 4, ne4, GM_TYPE_F32, 4 * 2 * 2 * 2 * 4, NULL);
    return gw_finish(w);
}

/* Keeps only the tokenizer.* records. */
static inline bool gw_tokenizer_only_hook(void *user, gguf_writer *w, const gguf_kv *kv)
{
    (void)user;
    (void)w;
    return !(kv->key.len > 10 && memcmp(kv->key.ptr, "tokenizer.", 10) == 0);
}

typedef struct gw_tiny_opts {
    uint32_t weight_type; /* type of the 2-D matrices (F32, F16, Q8_0, Q4_0, ...) */
    uint32_t n_layer;     /* default 2 */
    uint32_t n_embd;      /* default 32 (must suit weight_type's block size) */
    uint32_t n_ff;        /* default 64 */
    uint32_t n_ctx;       /* default 64 */
} gw_tiny_opts;

/* Tensor blk.<il>.<suffix> of the tiny models below (writer m, name buffer n, layer il). */
#define GW_T(suffix, type, nd, a, b)                                        \
    do {                                                                    \
        snprintf(n, sizeof n, "blk.%u.%s", il, suffix);                     \
        gw_tensor_add(&m, n, type, nd, a, b, 1, 1);                         \
    } while (0)

/* A small but complete Gemma 3 model: tokenizer records copied from vocab_src (a parsed
 * Gemma 3 GGUF, e.g. ../shared/testdata/g3-f32.gguf), 2 heads / 1 KV head of width 16,
 * sliding window 4, every second layer global. Returns the serialized file or NULL. */
static inline uint8_t *gw_tiny_gemma3(const gguf_ctx *vocab_src, const gw_tiny_opts *o, size_t *len)
{
    gguf_writer m;
    gw_init(&m, 3);
    uint32_t L = o && o->n_layer ? o->n_layer : 2, E = o && o->n_embd ? o->n_embd : 32;
    uint32_t F = o && o->n_ff ? o->n_ff : 64, C = o && o->n_ctx ? o->n_ctx : 64;
    uint32_t WT = o ? o->weight_type : GM_TYPE_F32;
    uint32_t H = 2, HKV = 1, HD = 16;
    uint64_t n_vocab = 0;
    const gguf_kv *toks = gguf_find(vocab_src, "tokenizer.ggml.tokens");
    if (toks && toks->type == GGUF_T_ARRAY)
        n_vocab = toks->n;
    gw_kv_str(&m, "general.architecture", "gemma3");
    gw_kv_str(&m, "general.name", "tiny-fuzz-gemma3");
    gw_kv_u32(&m, "gemma3.context_length", C);
    gw_kv_u32(&m, "gemma3.embedding_length", E);
    gw_kv_u32(&m, "gemma3.block_count", L);
    gw_kv_u32(&m, "gemma3.feed_forward_length", F);
    gw_kv_u32(&m, "gemma3.attention.head_count", H);
    gw_kv_u32(&m, "gemma3.attention.head_count_kv", HKV);
    gw_kv_u32(&m, "gemma3.attention.key_length", HD);
    gw_kv_u32(&m, "gemma3.attention.value_length", HD);
    gw_kv_f32(&m, "gemma3.attention.layer_norm_rms_epsilon", 1e-6f);
    gw_kv_u32(&m, "gemma3.attention.sliding_window", 4);
    gw_kv_u32(&m, "gemma3.attention.sliding_window_pattern", 2);
    gw_kv_f32(&m, "gemma3.rope.freq_base", 1e6f);
    gw_kv_f32(&m, "gemma3.rope.freq_base_swa", 1e4f);
    gw_copy_kv(&m, vocab_src, gw_tokenizer_only_hook, NULL);
    gw_tensor_add(&m, "token_embd.weight", WT, 2, E, (int64_t)n_vocab, 1, 1);
    gw_tensor_add(&m, "output_norm.weight", GM_TYPE_F32, 1, E, 1, 1, 1);
    char n[96];
    for (uint32_t il = 0; il < L; il++) {
        GW_T("attn_norm.weight", GM_TYPE_F32, 1, E, 1);
        GW_T("attn_q.weight", WT, 2, E, H * HD);
        GW_T("attn_k.weight", WT, 2, E, HKV * HD);
        GW_T("attn_v.weight", WT, 2, E, HKV * HD);
        GW_T("attn_q_norm.weight", GM_TYPE_F32, 1, HD, 1);
        GW_T("attn_k_norm.weight", GM_TYPE_F32, 1, HD, 1);
        GW_T("attn_output.weight", WT, 2, H * HD, E);
        GW_T("post_attention_norm.weight", GM_TYPE_F32, 1, E, 1);
        GW_T("ffn_norm.weight", GM_TYPE_F32, 1, E, 1);
        GW_T("ffn_gate.weight", WT, 2, E, F);
        GW_T("ffn_up.weight", WT, 2, E, F);
        GW_T("ffn_down.weight", WT, 2, F, E);
        GW_T("post_ffw_norm.weight", GM_TYPE_F32, 1, E, 1);
    }
    return gw_take(&m, len);
}

/* A small but complete dense Gemma 4 model (tokenizer records copied from vocab_src):
 * n_layer layers alternating local / global (at least 4; the last two read the cache of
 * the two before them), 2 heads / 1 KV head of width 16 (local) and 32 (global),
 * per-layer inputs of width 32, no attn_v on layer 1 (V = K), an output scale on layer 1,
 * sliding window 4. Returns the serialized file or NULL. */
static inline uint8_t *gw_tiny_gemma4(const gguf_ctx *vocab_src, const gw_tiny_opts *o, size_t *len)
{
    gguf_writer m;
    gw_init(&m, 3);
    uint32_t L = o && o->n_layer >= 4 ? o->n_layer : 4, E = o && o->n_embd ? o->n_embd : 32;
    uint32_t F = o && o->n_ff ? o->n_ff : 64, C = o && o->n_ctx ? o->n_ctx : 64;
    uint32_t WT = o ? o->weight_type : GM_TYPE_F32;
    const uint32_t H = 2, HKV = 1, HD_L = 16, HD_G = 32, PL = 32, SHARED = 2;
    uint8_t pat[64];
    L = L < 64 ? L : 64;
    uint64_t n_vocab = 0;
    const gguf_kv *toks = gguf_find(vocab_src, "tokenizer.ggml.tokens");
    if (toks && toks->type == GGUF_T_ARRAY)
        n_vocab = toks->n;
    for (uint32_t il = 0; il < L; il++)
        pat[il] = il % 2 == 0;
    gw_kv_str(&m, "general.architecture", "gemma4");
    gw_kv_str(&m, "general.name", "tiny-fuzz-gemma4");
    gw_kv_u32(&m, "gemma4.context_length", C);
    gw_kv_u32(&m, "gemma4.embedding_length", E);
    gw_kv_u32(&m, "gemma4.block_count", L);
    gw_kv_u32(&m, "gemma4.feed_forward_length", F);
    gw_kv_u32(&m, "gemma4.embedding_length_per_layer_input", PL);
    gw_kv_u32(&m, "gemma4.attention.head_count", H);
    gw_kv_u32(&m, "gemma4.attention.head_count_kv", HKV);
    gw_kv_u32(&m, "gemma4.attention.key_length", HD_G);
    gw_kv_u32(&m, "gemma4.attention.value_length", HD_G);
    gw_kv_u32(&m, "gemma4.attention.key_length_swa", HD_L);
    gw_kv_u32(&m, "gemma4.attention.value_length_swa", HD_L);
    gw_kv_u32(&m, "gemma4.rope.dimension_count", HD_G);
    gw_kv_u32(&m, "gemma4.rope.dimension_count_swa", HD_L);
    gw_kv_f32(&m, "gemma4.attention.layer_norm_rms_epsilon", 1e-6f);
    gw_kv_u32(&m, "gemma4.attention.sliding_window", 4);
    gw_kv_arr(&m, "gemma4.attention.sliding_window_pattern", GGUF_T_BOOL, pat, L, 1);
    gw_kv_u32(&m, "gemma4.attention.shared_kv_layers", SHARED);
    gw_kv_f32(&m, "gemma4.rope.freq_base", 1e6f);
    gw_kv_f32(&m, "gemma4.rope.freq_base_swa", 1e4f);
    gw_kv_f32(&m, "gemma4.final_logit_softcapping", 30.0f);
    gw_copy_kv(&m, vocab_src, gw_tokenizer_only_hook, NULL);
    gw_tensor_add(&m, "token_embd.weight", WT, 2, E, (int64_t)n_vocab, 1, 1);
    gw_tensor_add(&m, "output_norm.weight", GM_TYPE_F32, 1, E, 1, 1, 1);
    gw_tensor_add(&m, "per_layer_token_embd.weight", WT, 2, PL * L, (int64_t)n_vocab, 1, 1);
    gw_tensor_add(&m, "per_layer_model_proj.weight", WT, 2, E, PL * L, 1, 1);
    gw_tensor_add(&m, "per_layer_proj_norm.weight", GM_TYPE_F32, 1, PL, 1, 1, 1);
    gw_tensor_add(&m, "rope_freqs.weight", GM_TYPE_F32, 1, HD_G / 2, 1, 1, 1);
    char n[96];
    for (uint32_t il = 0; il < L; il++) {
        const uint32_t hd = pat[il] ? HD_L : HD_G;
        const bool own_kv = il < L - SHARED;
        GW_T("attn_norm.weight", GM_TYPE_F32, 1, E, 1);
        GW_T("attn_q.weight", WT, 2, E, H * hd);
        if (own_kv) {
            GW_T("attn_k.weight", WT, 2, E, HKV * hd);
            if (il != 1)
                GW_T("attn_v.weight", WT, 2, E, HKV * hd);
            GW_T("attn_k_norm.weight", GM_TYPE_F32, 1, hd, 1);
        }
        GW_T("attn_q_norm.weight", GM_TYPE_F32, 1, hd, 1);
        GW_T("attn_output.weight", WT, 2, H * hd, E);
        GW_T("post_attention_norm.weight", GM_TYPE_F32, 1, E, 1);
        if (il == 1)
            GW_T("layer_output_scale.weight", GM_TYPE_F32, 1, 1, 1);
        GW_T("ffn_norm.weight", GM_TYPE_F32, 1, E, 1);
        GW_T("ffn_gate.weight", WT, 2, E, F);
        GW_T("ffn_up.weight", WT, 2, E, F);
        GW_T("ffn_down.weight", WT, 2, F, E);
        GW_T("post_ffw_norm.weight", GM_TYPE_F32, 1, E, 1);
        GW_T("inp_gate.weight", WT, 2, E, PL);
        GW_T("proj.weight", WT, 2, PL, E);
        GW_T("post_norm.weight", GM_TYPE_F32, 1, E, 1);
    }
    return gw_take(&m, len);
}

#undef GW_T

#endif
