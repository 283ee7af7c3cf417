/* Public read-only inspection of GGUF files (the "Model files" section of gemma.h). */
#include "gemma.h"
#include "gguf.h"

#include "../tensor/types.h"
#include "../util/util.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct gemma_gguf {
    gguf_file *file;
    char *names;              /* NUL-terminated copies of every key, then every tensor name */
    const char **keys;        /* n_kv pointers into names */
    const char **tensor_names;
};

static size_t nul_copy(char *dst, gguf_str s)
{
    memcpy(dst, s.ptr, (size_t)s.len);
    dst[s.len] = '\0';
    return (size_t)s.len + 1;
}

/* Keys and names in the file are not NUL-terminated: copy them once so the API can hand
 * out C strings. Total size is bounded by the file size. */
static gemma_status copy_names(gemma_gguf *g, gemma_error *err)
{
    const gguf_ctx *c = g->file->ctx;
    uint64_t total = 0;
    for (uint64_t i = 0; i < c->n_kv; i++)
        total += c->kv[i].key.len + 1;
    for (uint64_t i = 0; i < c->n_tensors; i++)
        total += c->tensors[i].name.len + 1;
    g->names = malloc((size_t)total + 1);
    g->keys = gm_calloc((size_t)c->n_kv + 1, sizeof *g->keys);
    g->tensor_names = gm_calloc((size_t)c->n_tensors + 1, sizeof *g->tensor_names);
    if (!g->names || !g->keys || !g->tensor_names)
        return gm_fail(err, GEMMA_E_NOMEM, "out of memory for %llu bytes of names", (unsigned long long)total);
    size_t pos = 0;
    for (uint64_t i = 0; i < c->n_kv; i++) {
        g->keys[i] = g->names + pos;
        pos += nul_copy(g->names + pos, c->kv[i].key);
    }
    for (uint64_t i = 0; i < c->n_tensors; i++) {
        g->tensor_names[i] = g->names + pos;
        pos += nul_copy(g->names + pos, c->tensors[i].name);
    }
    return GEMMA_OK;
}

void gemma_gguf_close(gemma_gguf *g)
{
    if (!g)
        return;
    gguf_file_close(g->file);
    free(g->names);
    free((void *)g->keys);
    free((void *)g->tensor_names);
    free(g);
}

gemma_status gemma_gguf_open(const char *path, gemma_gguf **out, gemma_error *err)
{
    if (!out || !path)
        return gm_fail(err, GEMMA_E_INVALID_ARG, "gemma_gguf_open: NULL argument");
    *out = NULL;
    gemma_gguf *g = gm_calloc(1, sizeof *g);
    if (!g)
        return gm_fail(err, GEMMA_E_NOMEM, "out of memory opening '%s'", path);
    gemma_status st = gguf_file_open(path, true, &g->file, err);
    if (!st)
        st = copy_names(g, err);
    if (st) {
        gemma_gguf_close(g);
        return st;
    }
    *out = g;
    return GEMMA_OK;
}

static const gguf_ctx *ctx_of(const gemma_gguf *g) { return g ? g->file->ctx : NULL; }

uint32_t gemma_gguf_version(const gemma_gguf *g) { return g ? ctx_of(g)->version : 0; }
uint64_t gemma_gguf_file_size(const gemma_gguf *g) { return g ? ctx_of(g)->size : 0; }
uint64_t gemma_gguf_data_offset(const gemma_gguf *g) { return g ? ctx_of(g)->data_offset : 0; }
uint32_t gemma_gguf_alignment(const gemma_gguf *g) { return g ? ctx_of(g)->alignment : 0; }
size_t gemma_gguf_n_kv(const gemma_gguf *g) { return g ? (size_t)ctx_of(g)->n_kv : 0; }
size_t gemma_gguf_n_tensors(const gemma_gguf *g) { return g ? (size_t)ctx_of(g)->n_tensors : 0; }

static const gguf_kv *kv_at(const gemma_gguf *g, size_t i)
{
    return g && i < ctx_of(g)->n_kv ? &ctx_of(g)->kv[i] : NULL;
}

const char *gemma_gguf_kv_key(const gemma_gguf *g, size_t i) { return kv_at(g, i) ? g->keys[i] : NULL; }

int64_t gemma_gguf_find_key(const gemma_gguf *g, const char *key)
{
    const gguf_kv *kv = g ? gguf_find(ctx_of(g), key) : NULL;
    return kv ? (int64_t)(kv - ctx_of(g)->kv) : -1;
}

/* The parser accepts only the value types gemma_gguf_type names. */
gemma_gguf_type gemma_gguf_kv_type(const gemma_gguf *g, size_t i)
{
    const gguf_kv *kv = kv_at(g, i);
    return kv ? (gemma_gguf_type)kv->type : GEMMA_GGUF_INVALID;
}

gemma_gguf_type gemma_gguf_kv_elem_type(const gemma_gguf *g, size_t i)
{
    const gguf_kv *kv = kv_at(g, i);
    return kv && kv->type == GGUF_T_ARRAY ? (gemma_gguf_type)kv->arr_type : GEMMA_GGUF_INVALID;
}

uint64_t gemma_gguf_kv_count(const gemma_gguf *g, size_t i)
{
    const gguf_kv *kv = kv_at(g, i);
    return kv ? kv->n : 0;
}

const char *gemma_gguf_type_name(gemma_gguf_type type)
{
    return (int)type < 0 ? "INVALID" : gguf_vtype_name((uint32_t)type);
}

/* Element idx of a fixed-size integer/bool value; false for other types. */
static bool read_int(uint32_t type, const uint8_t *p, uint64_t idx, int64_t *out, bool *too_big)
{
    *too_big = false;
    switch (type) {
    case GGUF_T_UINT8: *out = p[idx]; return true;
    case GGUF_T_BOOL: *out = p[idx] != 0; return true;
    case GGUF_T_INT8: *out = (int8_t)p[idx]; return true;
    case GGUF_T_UINT16: *out = gm_rd_u16(p + 2 * idx); return true;
    case GGUF_T_INT16: *out = (int16_t)gm_rd_u16(p + 2 * idx); return true;
    case GGUF_T_UINT32: *out = gm_rd_u32(p + 4 * idx); return true;
    case GGUF_T_INT32: *out = (int32_t)gm_rd_u32(p + 4 * idx); return true;
    case GGUF_T_INT64: *out = (int64_t)gm_rd_u64(p + 8 * idx); return true;
    case GGUF_T_UINT64: {
        uint64_t v = gm_rd_u64(p + 8 * idx);
        *too_big = v > (uint64_t)INT64_MAX;
        *out = (int64_t)(v & (uint64_t)INT64_MAX);
        return true;
    }
    default: return false;
    }
}

gemma_status gemma_gguf_kv_get_int(const gemma_gguf *g, size_t i, uint64_t idx, int64_t *out)
{
    const gguf_kv *kv = kv_at(g, i);
    if (!kv || !out || idx >= kv->n)
        return GEMMA_E_INVALID_ARG;
    uint32_t type = kv->type == GGUF_T_ARRAY ? kv->arr_type : kv->type;
    bool too_big;
    if (!read_int(type, kv->data, idx, out, &too_big) || too_big)
        return GEMMA_E_INVALID_ARG;
    return GEMMA_OK;
}

/* ---- rendering values as text -------------------------------------------------------- */

typedef struct sbuf {
    char *p;
    size_t cap, len;
    bool cut;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n)
{
    if (b->cap == 0) {
        b->cut = b->cut || n > 0;
        return;
    }
    size_t room = b->cap - 1 - b->len;
    if (n > room) {
        n = room;
        b->cut = true;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_printf(sbuf *b, const char *fmt, ...) GM_PRINTF(2, 3);
static void sb_printf(sbuf *b, const char *fmt, ...)
{
    char tmp[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0)
        sb_put(b, tmp, GM_MIN((size_t)n, sizeof tmp - 1));
}

/* A string element of an array: quoted, escaped, at most 64 bytes of it. */
static void sb_quoted(sbuf *b, gguf_str s)
{
    sb_put(b, "\"", 1);
    uint64_t n = GM_MIN(s.len, 64);
    for (uint64_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (c == '"' || c == '\\')
            sb_printf(b, "\\%c", c);
        else if (c == '\n')
            sb_put(b, "\\n", 2);
        else if (c < 0x20 || c == 0x7f)
            sb_printf(b, "\\x%02x", c);
        else
            sb_put(b, (const char *)&s.ptr[i], 1);
    }
    sb_put(b, n < s.len ? "...\"" : "\"", n < s.len ? 4 : 1);
}

static void sb_scalar(sbuf *b, uint32_t type, const uint8_t *p, uint64_t idx)
{
    int64_t v;
    bool too_big;
    if (type == GGUF_T_BOOL)
        sb_printf(b, "%s", p[idx] ? "true" : "false");
    else if (type == GGUF_T_FLOAT32)
        sb_printf(b, "%.9g", (double)gm_rd_f32(p + 4 * idx));
    else if (type == GGUF_T_FLOAT64) {
        double d;
        memcpy(&d, p + 8 * idx, 8);
        sb_printf(b, "%.17g", d);
    } else if (type == GGUF_T_UINT64)
        sb_printf(b, "%" PRIu64, gm_rd_u64(p + 8 * idx));
    else if (read_int(type, p, idx, &v, &too_big))
        sb_printf(b, "%" PRId64, v);
}

#define GM_ARRAY_PREVIEW 8

gemma_status gemma_gguf_kv_to_string(const gemma_gguf *g, size_t i, char *buf, size_t cap)
{
    const gguf_kv *kv = kv_at(g, i);
    if (!kv || (!buf && cap))
        return GEMMA_E_INVALID_ARG;
    sbuf b = {buf, cap, 0, false};
    if (cap)
        buf[0] = '\0';
    if (kv->type == GGUF_T_STRING) {
        sb_put(&b, (const char *)kv->data + 8, (size_t)gm_rd_u64(kv->data));
    } else if (kv->type != GGUF_T_ARRAY) {
        sb_scalar(&b, kv->type, kv->data, 0);
    } else {
        sb_printf(&b, "[%" PRIu64 " x %s]", kv->n, gguf_vtype_name(kv->arr_type));
        uint64_t n = GM_MIN(kv->n, GM_ARRAY_PREVIEW);
        for (uint64_t k = 0; k < n; k++) {
            sb_put(&b, k ? ", " : " ", k ? 2 : 1);
            if (kv->arr_type == GGUF_T_STRING)
                sb_quoted(&b, kv->strs[k]);
            else
                sb_scalar(&b, kv->arr_type, kv->data, k);
        }
        if (n < kv->n)
            sb_put(&b, ", ...", 5);
    }
    return b.cut ? GEMMA_E_BUFFER_TOO_SMALL : GEMMA_OK;
}

/* ---- typed lookups ------------------------------------------------------------------- */

gemma_status gemma_gguf_get_u32(const gemma_gguf *g, const char *key, uint32_t *out)
{
    if (!g || !key || !out)
        return GEMMA_E_INVALID_ARG;
    return gguf_get_u32(ctx_of(g), key, out, NULL);
}

gemma_status gemma_gguf_get_f32(const gemma_gguf *g, const char *key, float *out)
{
    if (!g || !key || !out)
        return GEMMA_E_INVALID_ARG;
    return gguf_get_f32(ctx_of(g), key, out, NULL);
}

gemma_status gemma_gguf_get_str(const gemma_gguf *g, const char *key, const char **str, size_t *len)
{
    if (!g || !key || !str || !len)
        return GEMMA_E_INVALID_ARG;
    gguf_str s;
    gemma_status st = gguf_get_str(ctx_of(g), key, &s, NULL);
    if (!st) {
        *str = s.ptr;
        *len = (size_t)s.len;
    }
    return st;
}

gemma_status gemma_gguf_tensor(const gemma_gguf *g, size_t i, gemma_tensor_info *dst)
{
    if (!g || !dst || i >= ctx_of(g)->n_tensors)
        return GEMMA_E_INVALID_ARG;
    const gguf_tensor *t = &ctx_of(g)->tensors[i];
    const gm_type_traits *tt = gm_type_get(t->type); /* non-NULL: the parser checked */
    gemma_tensor_info full = {.size = sizeof full}, *out = &full;
    out->name = g->tensor_names[i];
    out->type_name = tt ? tt->name : "?";
    out->type = t->type;
    out->n_dims = (int32_t)t->n_dims;
    out->n_elements = 1;
    for (int d = 0; d < 4; d++) {
        out->ne[d] = t->ne[d];
        out->n_elements *= (uint64_t)t->ne[d]; /* the parser checked it fits */
    }
    out->offset = t->offset;
    out->nbytes = t->nbytes;
    return gm_abi_write(dst, dst->size, out, sizeof *out, GM_ABI_MIN(gemma_tensor_info, nbytes));
}
