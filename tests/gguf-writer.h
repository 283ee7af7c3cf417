/* A small GGUF builder for tests and fuzz seeds (header-only; test code, not library code).
 *
 *   gguf_writer w;
 *   gw_init(&w, 3);
 *   gw_kv_str(&w, "general.architecture", "gemma3");
 *   gw_kv_u32(&w, "gemma3.block_count", 1);
 *   int64_t ne[2] = {4, 2};
 *   gw_tensor(&w, "t.weight", 2, ne, 0, 4 * 4 * 2, NULL);   // type 0 = F32, zero data
 *   gw_finish(&w);             // w.buf[0..w.len) is the file
 *   ...
 *   gw_free(&w);
 *
 * Metadata is written as it is declared (so tests can emit malformed records with gw_key
 * plus raw gw_u32/gw_u64 writes); tensor infos and data are written by gw_finish, which
 * lays the data out densely at w.alignment (default 32; add the general.alignment key
 * yourself if you want it in the file) and records where each field of each tensor info
 * landed, so tests can patch bytes afterwards. Allocation failure sets w.failed.
 */
#ifndef GM_GGUF_WRITER_H
#define GM_GGUF_WRITER_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct gw_tensor_rec {
    char *name;
    size_t name_len;
    uint32_t n_dims;
    int64_t ne[4];
    uint32_t type;
    uint64_t nbytes;
    void *data;        /* copy of the caller's bytes, or NULL for zeros */
    uint64_t offset;   /* relative to the data section, set by gw_finish */
    /* File positions of the record's fields, set by gw_finish. */
    size_t pos_name, pos_ndims, pos_ne, pos_type, pos_offset;
} gw_tensor_rec;

typedef struct gguf_writer {
    uint8_t *buf;
    size_t len, cap;
    uint64_t n_kv;
    size_t kv_pos[256];  /* file position of the first 256 metadata records */
    gw_tensor_rec *t;
    size_t n_t, cap_t;
    uint32_t alignment;
    size_t data_offset;  /* set by gw_finish */
    bool failed;
} gguf_writer;

static void gw_raw(gguf_writer *w, const void *p, size_t n)
{
    if (w->failed)
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
    if (n)
        memcpy(w->buf + w->len, p, n);
    w->len += n;
}

static void gw_u8(gguf_writer *w, uint8_t v) { gw_raw(w, &v, 1); }
static void gw_u32(gguf_writer *w, uint32_t v) { gw_raw(w, &v, 4); } /* little-endian hosts */
static void gw_u64(gguf_writer *w, uint64_t v) { gw_raw(w, &v, 8); }
static void gw_f32(gguf_writer *w, float v) { gw_raw(w, &v, 4); }
static void gw_strn(gguf_writer *w, const char *s, size_t n)
{
    gw_u64(w, n);
    gw_raw(w, s, n);
}
static void gw_str(gguf_writer *w, const char *s) { gw_strn(w, s, strlen(s)); }

/* Overwrites bytes already written (for patching a finished file). */
static void gw_patch_u32(uint8_t *buf, size_t pos, uint32_t v) { memcpy(buf + pos, &v, 4); }
static void gw_patch_u64(uint8_t *buf, size_t pos, uint64_t v) { memcpy(buf + pos, &v, 8); }

static void gw_init(gguf_writer *w, uint32_t version)
{
    memset(w, 0, sizeof *w);
    w->alignment = 32;
    gw_raw(w, "GGUF", 4);
    gw_u32(w, version);
    gw_u64(w, 0); /* n_tensors, patched by gw_finish */
    gw_u64(w, 0); /* n_kv, patched as records are added */
}

/* Starts a metadata record: key and value type. The caller writes the value. */
static void gw_keyn(gguf_writer *w, const char *key, size_t key_len, uint32_t type)
{
    if (w->n_kv < sizeof w->kv_pos / sizeof w->kv_pos[0])
        w->kv_pos[w->n_kv] = w->len;
    w->n_kv++;
    gw_strn(w, key, key_len);
    gw_u32(w, type);
    if (!w->failed)
        gw_patch_u64(w->buf, 16, w->n_kv);
}
static void gw_key(gguf_writer *w, const char *key, uint32_t type) { gw_keyn(w, key, strlen(key), type); }

static void gw_kv_u32(gguf_writer *w, const char *key, uint32_t v) { gw_key(w, key, 4); gw_u32(w, v); }
static void gw_kv_i32(gguf_writer *w, const char *key, int32_t v) { gw_key(w, key, 5); gw_u32(w, (uint32_t)v); }
static void gw_kv_f32(gguf_writer *w, const char *key, float v) { gw_key(w, key, 6); gw_f32(w, v); }
static void gw_kv_bool(gguf_writer *w, const char *key, bool v) { gw_key(w, key, 7); gw_u8(w, v ? 1 : 0); }
static void gw_kv_str(gguf_writer *w, const char *key, const char *v) { gw_key(w, key, 8); gw_str(w, v); }
static void gw_kv_u64(gguf_writer *w, const char *key, uint64_t v) { gw_key(w, key, 10); gw_u64(w, v); }

/* Array of fixed-size elements (elem_size bytes each, already little-endian). */
static void gw_kv_arr(gguf_writer *w, const char *key, uint32_t elem_type, uint64_t n, const void *data,
                      size_t elem_size)
{
    gw_key(w, key, 9);
    gw_u32(w, elem_type);
    gw_u64(w, n);
    gw_raw(w, data, (size_t)n * elem_size);
}

static void gw_kv_arr_str(gguf_writer *w, const char *key, uint64_t n, const char *const *strs)
{
    gw_key(w, key, 9);
    gw_u32(w, 8);
    gw_u64(w, n);
    for (uint64_t i = 0; i < n; i++)
        gw_str(w, strs[i]);
}

/* Declares a tensor (written by gw_finish). data may be NULL (zeros). Returns its index. */
static size_t gw_tensor(gguf_writer *w, const char *name, uint32_t n_dims, const int64_t *ne, uint32_t type,
                        uint64_t nbytes, const void *data)
{
    if (w->n_t == w->cap_t) {
        size_t cap = w->cap_t ? 2 * w->cap_t : 16;
        gw_tensor_rec *nt = realloc(w->t, cap * sizeof *nt);
        if (!nt) {
            w->failed = true;
            return 0;
        }
        w->t = nt;
        w->cap_t = cap;
    }
    gw_tensor_rec *t = &w->t[w->n_t];
    memset(t, 0, sizeof *t);
    t->name_len = strlen(name);
    t->name = malloc(t->name_len + 1);
    t->data = data && nbytes ? malloc((size_t)nbytes) : NULL;
    if (!t->name || (data && nbytes && !t->data)) {
        free(t->name);
        free(t->data);
        w->failed = true;
        return 0;
    }
    memcpy(t->name, name, t->name_len + 1);
    if (t->data)
        memcpy(t->data, data, (size_t)nbytes);
    t->n_dims = n_dims;
    for (int d = 0; d < 4; d++)
        t->ne[d] = d < (int)n_dims && ne ? ne[d] : 1;
    t->type = type;
    t->nbytes = nbytes;
    return w->n_t++;
}

#define GW_MIN_PAD(a, b) ((a) < (b) ? (a) : (b))

static void gw_pad(gguf_writer *w, size_t to)
{
    static const uint8_t zeros[64];
    while (!w->failed && w->len % to)
        gw_raw(w, zeros, GW_MIN_PAD(to - w->len % to, sizeof zeros));
}

/* Writes the tensor table and the data section. Returns false on allocation failure. */
static bool gw_finish(gguf_writer *w)
{
    uint64_t off = 0, a = w->alignment ? w->alignment : 32;
    for (size_t i = 0; i < w->n_t; i++) {
        gw_tensor_rec *t = &w->t[i];
        t->offset = off;
        off += (t->nbytes + a - 1) / a * a;
        t->pos_name = w->len;
        gw_strn(w, t->name, t->name_len);
        t->pos_ndims = w->len;
        gw_u32(w, t->n_dims);
        t->pos_ne = w->len;
        for (uint32_t d = 0; d < t->n_dims && d < 4; d++)
            gw_u64(w, (uint64_t)t->ne[d]);
        t->pos_type = w->len;
        gw_u32(w, t->type);
        t->pos_offset = w->len;
        gw_u64(w, t->offset);
    }
    if (!w->failed)
        gw_patch_u64(w->buf, 8, w->n_t);
    if (w->n_t)
        gw_pad(w, (size_t)a);
    w->data_offset = w->len;
    for (size_t i = 0; i < w->n_t; i++) {
        gw_tensor_rec *t = &w->t[i];
        for (uint64_t k = 0; k < t->nbytes && !w->failed; k++) /* zeros when no data */
            gw_u8(w, t->data ? ((uint8_t *)t->data)[k] : 0);
        gw_pad(w, (size_t)a);
    }
    return !w->failed;
}

static void gw_free(gguf_writer *w)
{
    for (size_t i = 0; i < w->n_t; i++) {
        free(w->t[i].name);
        free(w->t[i].data);
    }
    free(w->t);
    free(w->buf);
    memset(w, 0, sizeof *w);
}

static bool gw_write_file(const gguf_writer *w, const char *path)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return false;
    bool ok = fwrite(w->buf, 1, w->len, f) == w->len;
    return fclose(f) == 0 && ok;
}

/* A small valid file with every kind of metadata value and three F32 tensors (1-D, 2-D
 * and 4-D) that tests and fuzzers can start from. Key 0 is general.architecture. */
static bool gw_build_sample(gguf_writer *w)
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
    gw_kv_arr_str(w, "tokenizer.ggml.tokens", 4, toks);
    const float scores[4] = {0, 0, 0, -1.5f};
    gw_kv_arr(w, "tokenizer.ggml.scores", 6, 4, scores, 4);
    const int32_t ff[2] = {16, 32};
    gw_kv_arr(w, "gemma3.feed_forward_length", 5, 2, ff, 4);
    const uint8_t pat[2] = {1, 0};
    gw_kv_arr(w, "gemma3.attention.sliding_window_pattern", 7, 2, pat, 1);
    float norm[8];
    for (int i = 0; i < 8; i++)
        norm[i] = (float)i;
    int64_t ne1[1] = {8}, ne2[2] = {8, 4}, ne4[4] = {4, 2, 2, 2};
    gw_tensor(w, "output_norm.weight", 1, ne1, 0, sizeof norm, norm);
    gw_tensor(w, "token_embd.weight", 2, ne2, 0, 8 * 4 * 4, NULL);
    gw_tensor(w, "sample.t4", 4, ne4, 0, 4 * 2 * 2 * 2 * 4, NULL);
    return gw_finish(w);
}

#endif
