/* GGUF v2/v3 parser: a pure function over untrusted bytes (gemma-spec.md sections 1.1-1.4).
 *
 * Every read goes through one bounded cursor; every size is computed with checked u64
 * arithmetic; counts are compared with the bytes actually left before anything is
 * allocated from them. Each rejection names the record and byte offset involved.
 */
#include "gguf.h"
#include "gguf-internal.h"

#include "../tensor/types.h"
#include "../util/util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GGUF_MAGIC "GGUF"
#define GGUF_DEFAULT_ALIGNMENT 32u
#define GGUF_MAX_NAME 64u              /* ggml's GGML_MAX_NAME: names hold at most 63 bytes */
#define GGUF_MAX_NE ((uint64_t)1 << 62) /* largest dimension we accept */
/* Smallest possible records: key (8-byte length + 1 byte) + u32 type + 1-byte value, and
 * name (8 + 1) + u32 n_dims + one u64 dim + u32 type + u64 offset. */
#define GGUF_MIN_KV_BYTES 14u
#define GGUF_MIN_TENSOR_BYTES 33u

gguf_limits gguf_default_limits(void)
{
    gguf_limits l = {
        .max_string = (uint64_t)64 << 20,
        .max_array = (uint64_t)16 << 20,
        .max_kv = 65536,
        .max_tensors = 65536,
        .max_alignment = 1u << 20,
    };
    return l;
}

const char *gguf_vtype_name(uint32_t type)
{
    static const char *const names[GGUF_T_COUNT] = {
        "UINT8", "INT8", "UINT16", "INT16", "UINT32", "INT32", "FLOAT32",
        "BOOL", "STRING", "ARRAY", "UINT64", "INT64", "FLOAT64",
    };
    return type < GGUF_T_COUNT ? names[type] : "INVALID";
}

/* Size of one scalar value of a fixed-size type; 0 for STRING/ARRAY/invalid. */
static uint64_t vtype_size(uint32_t type)
{
    switch (type) {
    case GGUF_T_UINT8: case GGUF_T_INT8: case GGUF_T_BOOL: return 1;
    case GGUF_T_UINT16: case GGUF_T_INT16: return 2;
    case GGUF_T_UINT32: case GGUF_T_INT32: case GGUF_T_FLOAT32: return 4;
    case GGUF_T_UINT64: case GGUF_T_INT64: case GGUF_T_FLOAT64: return 8;
    default: return 0;
    }
}

/* ---- name hash (keys and tensor names) --------------------------------------------- */

static uint64_t hash_bytes(const char *p, uint64_t n)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (uint64_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)p[i]) * 1099511628211ull;
    return h;
}

static bool str_eq(gguf_str a, const char *b, uint64_t blen)
{
    return a.len == blen && (blen == 0 || memcmp(a.ptr, b, (size_t)blen) == 0);
}

static gemma_status hash_init(gm_name_hash *h, uint64_t n)
{
    uint64_t cap = 16;
    while (cap < n * 2)
        cap *= 2; /* n <= 2^32 by the caps, so this cannot overflow */
    h->slots = gm_calloc((size_t)cap, sizeof *h->slots);
    h->mask = cap - 1;
    return h->slots ? GEMMA_OK : GEMMA_E_NOMEM;
}

/* Index of the name among names[] (strided records), or UINT32_MAX when absent; when
 * insert_idx != UINT32_MAX and the name is absent, it is inserted with that index. */
static uint32_t hash_lookup(const gm_name_hash *h, const void *base, size_t stride,
                            const char *name, uint64_t len, uint32_t insert_idx)
{
    if (!h->slots)
        return UINT32_MAX;
    uint64_t i = hash_bytes(name, len) & h->mask;
    for (;;) {
        uint32_t s = h->slots[i];
        if (s == 0) {
            if (insert_idx != UINT32_MAX)
                h->slots[i] = insert_idx + 1;
            return UINT32_MAX;
        }
        const gguf_str *rec = (const gguf_str *)((const char *)base + (size_t)(s - 1) * stride);
        if (str_eq(*rec, name, len))
            return s - 1;
        i = (i + 1) & h->mask;
    }
}

const gguf_kv *gguf_find(const gguf_ctx *ctx, const char *key)
{
    if (!ctx || !key)
        return NULL;
    const gm_gguf_impl *im = (const gm_gguf_impl *)ctx;
    uint32_t i = hash_lookup(&im->kv_hash, ctx->kv, sizeof *ctx->kv, key, strlen(key), UINT32_MAX);
    return i == UINT32_MAX ? NULL : &ctx->kv[i];
}

const gguf_tensor *gguf_find_tensor(const gguf_ctx *ctx, const char *name)
{
    if (!ctx || !name)
        return NULL;
    const gm_gguf_impl *im = (const gm_gguf_impl *)ctx;
    uint32_t i = hash_lookup(&im->tensor_hash, ctx->tensors, sizeof *ctx->tensors, name,
                             strlen(name), UINT32_MAX);
    return i == UINT32_MAX ? NULL : &ctx->tensors[i];
}

/* ---- the bounded cursor --------------------------------------------------------------- */

typedef struct parser {
    const uint8_t *buf;
    uint64_t len;
    uint64_t pos;
    gguf_limits lim;
    gemma_error *err;
    char where[192]; /* "metadata key #5 ('general.name') at offset 200" */
} parser;

static gemma_status pfail(parser *P, gemma_status code, const char *fmt, ...) GM_PRINTF(3, 4);
static gemma_status pfail(parser *P, gemma_status code, const char *fmt, ...)
{
    char msg[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (P->where[0])
        return gm_fail(P->err, code, "%s: %s", P->where, msg);
    return gm_fail(P->err, code, "%s", msg);
}

static uint64_t remaining(const parser *P) { return P->len - P->pos; }

static gemma_status need(parser *P, uint64_t n, const char *what)
{
    if (n > remaining(P))
        return pfail(P, GEMMA_E_FORMAT, "truncated: %s needs %llu bytes at offset %llu, but the file ends at %llu",
                     what, (unsigned long long)n, (unsigned long long)P->pos,
                     (unsigned long long)P->len);
    return GEMMA_OK;
}

static gemma_status rd_u32(parser *P, uint32_t *v, const char *what)
{
    gemma_status st = need(P, 4, what);
    if (st == GEMMA_OK) {
        *v = gm_rd_u32(P->buf + P->pos);
        P->pos += 4;
    }
    return st;
}

static gemma_status rd_u64(parser *P, uint64_t *v, const char *what)
{
    gemma_status st = need(P, 8, what);
    if (st == GEMMA_OK) {
        *v = gm_rd_u64(P->buf + P->pos);
        P->pos += 8;
    }
    return st;
}

/* what names the string for messages; NULL when P->where already says it all. */
static gemma_status rd_str(parser *P, gguf_str *s, const char *what)
{
    char ctx[96] = "";
    if (what)
        snprintf(ctx, sizeof ctx, "%s at offset %llu: ", what, (unsigned long long)P->pos);
    uint64_t n;
    gemma_status st = rd_u64(P, &n, what ? what : "string length");
    if (st)
        return st;
    if (n > P->lim.max_string) {
        uint64_t m = P->lim.max_string;
        if (m >= (1u << 20) && m % (1u << 20) == 0)
            return pfail(P, GEMMA_E_FORMAT, "%sstring length %llu exceeds the %llu MiB limit", ctx,
                         (unsigned long long)n, (unsigned long long)(m >> 20));
        return pfail(P, GEMMA_E_FORMAT, "%sstring length %llu exceeds the limit of %llu bytes", ctx,
                     (unsigned long long)n, (unsigned long long)m);
    }
    if (n > remaining(P))
        return pfail(P, GEMMA_E_FORMAT, "%sstring length %llu runs past end of file (%llu bytes left)",
                     ctx, (unsigned long long)n, (unsigned long long)remaining(P));
    s->ptr = (const char *)(P->buf + P->pos);
    s->len = n;
    P->pos += n;
    return GEMMA_OK;
}

/* Printable, bounded copy of a name from the file, for messages. */
void gm_gguf_name(gguf_str s, char out[GM_GGUF_NAME_BUF])
{
    size_t n = 0;
    for (uint64_t i = 0; i < s.len && n + 4 < GM_GGUF_NAME_BUF; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        out[n++] = c >= 0x20 && c < 0x7f ? (char)c : '?'; /* messages stay printable ASCII */
    }
    if (s.len > GM_GGUF_NAME_BUF - 5) {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
}

/* ---- header --------------------------------------------------------------------------- */

static gemma_status parse_header(parser *P, gguf_ctx *ctx)
{
    if (P->len < 4)
        return pfail(P, GEMMA_E_FORMAT, "file is too small to be GGUF (%llu bytes)", (unsigned long long)P->len);
    if (memcmp(P->buf, GGUF_MAGIC, 4) != 0) {
        const uint8_t *m = P->buf;
        return pfail(P, GEMMA_E_FORMAT, "bad magic at offset 0: expected 'GGUF' (47 47 55 46), found %02x %02x %02x %02x; not a GGUF file",
                     m[0], m[1], m[2], m[3]);
    }
    P->pos = 4;
    uint32_t v;
    gemma_status st = rd_u32(P, &v, "header version");
    if (st)
        return st;
    if (v == 0)
        return pfail(P, GEMMA_E_FORMAT, "header at offset 4: invalid GGUF version 0");
    if ((v & 0xffffu) == 0)
        return pfail(P, GEMMA_E_FORMAT, "header at offset 4: version 0x%08x looks byte-swapped: the file is big-endian, only little-endian GGUF is supported", v);
    if (v == 1)
        return pfail(P, GEMMA_E_FORMAT, "header at offset 4: GGUF version 1 is no longer supported; re-convert the model (versions 2 and 3 are)");
    if (v > 3)
        return pfail(P, GEMMA_E_FORMAT, "header at offset 4: unsupported GGUF version %u (this reader supports 2 and 3)", v);
    ctx->version = v;
    if ((st = rd_u64(P, &ctx->n_tensors, "header tensor count")) || (st = rd_u64(P, &ctx->n_kv, "header metadata count")))
        return st;
    /* Early rejection: every record takes at least a minimum number of bytes. */
    if (ctx->n_kv > P->lim.max_kv)
        return pfail(P, GEMMA_E_FORMAT, "header at offset 16: metadata count %llu exceeds the limit of %llu",
                     (unsigned long long)ctx->n_kv, (unsigned long long)P->lim.max_kv);
    if (ctx->n_tensors > P->lim.max_tensors)
        return pfail(P, GEMMA_E_FORMAT, "header at offset 8: tensor count %llu exceeds the limit of %llu",
                     (unsigned long long)ctx->n_tensors, (unsigned long long)P->lim.max_tensors);
    uint64_t need_kv = ctx->n_kv * GGUF_MIN_KV_BYTES, need_t = ctx->n_tensors * GGUF_MIN_TENSOR_BYTES;
    if (need_kv > remaining(P))
        return pfail(P, GEMMA_E_FORMAT, "header at offset 16: metadata count %llu cannot fit in the %llu bytes left in the file",
                     (unsigned long long)ctx->n_kv, (unsigned long long)remaining(P));
    if (need_kv + need_t > remaining(P))
        return pfail(P, GEMMA_E_FORMAT, "header at offset 8: tensor count %llu cannot fit, with %llu metadata records, in the %llu bytes left in the file",
                     (unsigned long long)ctx->n_tensors, (unsigned long long)ctx->n_kv,
                     (unsigned long long)remaining(P));
    return GEMMA_OK;
}

/* ---- metadata ------------------------------------------------------------------------- */

static gemma_status parse_array(parser *P, gguf_kv *kv)
{
    uint64_t at = P->pos;
    gemma_status st = rd_u32(P, &kv->arr_type, "array element type");
    if (st || (st = rd_u64(P, &kv->n, "array count")))
        return st;
    if (kv->arr_type == GGUF_T_ARRAY)
        return pfail(P, GEMMA_E_FORMAT, "nested array at offset %llu: arrays of arrays are not allowed",
                     (unsigned long long)at);
    if (kv->arr_type >= GGUF_T_COUNT)
        return pfail(P, GEMMA_E_FORMAT, "array at offset %llu: invalid element type id %u (valid ids are 0..12)",
                     (unsigned long long)at, kv->arr_type);
    if (kv->n > P->lim.max_array)
        return pfail(P, GEMMA_E_FORMAT, "array at offset %llu: element count %llu exceeds the limit of %llu",
                     (unsigned long long)at, (unsigned long long)kv->n, (unsigned long long)P->lim.max_array);
    kv->data = P->buf + P->pos;
    if (kv->arr_type != GGUF_T_STRING) {
        uint64_t bytes = kv->n * vtype_size(kv->arr_type); /* n <= max_array: no overflow */
        if (bytes > remaining(P))
            return pfail(P, GEMMA_E_FORMAT, "array at offset %llu: %llu elements of %s need %llu bytes, past end of file (%llu bytes left)",
                         (unsigned long long)at, (unsigned long long)kv->n, gguf_vtype_name(kv->arr_type),
                         (unsigned long long)bytes, (unsigned long long)remaining(P));
        P->pos += bytes;
        return GEMMA_OK;
    }
    /* Each string needs at least its 8-byte length: check before allocating. */
    if (kv->n * 8 > remaining(P))
        return pfail(P, GEMMA_E_FORMAT, "array at offset %llu: %llu strings cannot fit in the %llu bytes left",
                     (unsigned long long)at, (unsigned long long)kv->n, (unsigned long long)remaining(P));
    gguf_str *strs = gm_calloc(kv->n ? (size_t)kv->n : 1, sizeof *strs);
    if (!strs)
        return pfail(P, GEMMA_E_NOMEM, "out of memory for %llu strings", (unsigned long long)kv->n);
    kv->strs = strs;
    for (uint64_t i = 0; i < kv->n; i++)
        if ((st = rd_str(P, &strs[i], "array string")))
            return st;
    return GEMMA_OK;
}

static gemma_status parse_value(parser *P, gguf_kv *kv)
{
    if (kv->type == GGUF_T_ARRAY)
        return parse_array(P, kv);
    kv->n = 1;
    kv->data = P->buf + P->pos;
    if (kv->type == GGUF_T_STRING) {
        gguf_str s;
        return rd_str(P, &s, "string value");
    }
    gemma_status st = need(P, vtype_size(kv->type), gguf_vtype_name(kv->type));
    if (st == GEMMA_OK)
        P->pos += vtype_size(kv->type);
    return st;
}

static gemma_status parse_kvs(parser *P, gguf_ctx *ctx, gm_gguf_impl *im)
{
    gemma_status st;
    if ((st = hash_init(&im->kv_hash, ctx->n_kv)))
        return pfail(P, st, "out of memory for the metadata index");
    for (uint64_t i = 0; i < ctx->n_kv; i++) {
        gguf_kv *kv = &ctx->kv[i];
        kv->offset = P->pos;
        snprintf(P->where, sizeof P->where, "metadata key #%llu at offset %llu",
                 (unsigned long long)i, (unsigned long long)kv->offset);
        if ((st = rd_str(P, &kv->key, NULL)))
            return st;
        if (kv->key.len == 0)
            return pfail(P, GEMMA_E_FORMAT, "empty key");
        char name[GM_GGUF_NAME_BUF];
        gm_gguf_name(kv->key, name);
        snprintf(P->where, sizeof P->where, "metadata key #%llu '%s' at offset %llu",
                 (unsigned long long)i, name, (unsigned long long)kv->offset);
        uint32_t prev = hash_lookup(&im->kv_hash, ctx->kv, sizeof *kv, kv->key.ptr, kv->key.len, (uint32_t)i);
        if (prev != UINT32_MAX)
            return pfail(P, GEMMA_E_FORMAT, "duplicate key (first defined at offset %llu)",
                         (unsigned long long)ctx->kv[prev].offset);
        if ((st = rd_u32(P, &kv->type, "value type")))
            return st;
        if (kv->type >= GGUF_T_COUNT)
            return pfail(P, GEMMA_E_FORMAT, "invalid value type id %u (valid ids are 0..12)", kv->type);
        if ((st = parse_value(P, kv)))
            return st;
    }
    P->where[0] = '\0';
    return GEMMA_OK;
}

static gemma_status read_alignment(parser *P, gguf_ctx *ctx)
{
    ctx->alignment = GGUF_DEFAULT_ALIGNMENT;
    const gguf_kv *kv = gguf_find(ctx, "general.alignment");
    if (!kv)
        return GEMMA_OK;
    unsigned long long at = (unsigned long long)kv->offset;
    if (kv->type != GGUF_T_UINT32)
        return pfail(P, GEMMA_E_FORMAT, "key 'general.alignment' at offset %llu: type %s, expected UINT32",
                     at, gguf_vtype_name(kv->type));
    uint32_t a = gm_rd_u32(kv->data);
    if (a == 0 || (a & (a - 1)) != 0)
        return pfail(P, GEMMA_E_FORMAT, "key 'general.alignment' at offset %llu: alignment %u is not a nonzero power of two",
                     at, a);
    if (a > P->lim.max_alignment)
        return pfail(P, GEMMA_E_FORMAT, "key 'general.alignment' at offset %llu: alignment %u exceeds the limit of %u",
                     at, a, P->lim.max_alignment);
    ctx->alignment = a;
    return GEMMA_OK;
}

/* ---- tensor table --------------------------------------------------------------------- */

static gemma_status tensor_size(parser *P, gguf_tensor *t)
{
    const gm_type_traits *tt = gm_type_get(t->type);
    if (!tt)
        return pfail(P, GEMMA_E_FORMAT, "unknown or removed tensor type id %u", t->type);
    if ((uint64_t)t->ne[0] % tt->blck != 0)
        return pfail(P, GEMMA_E_FORMAT, "ne[0] = %lld is not a multiple of the %s block size %u",
                     (long long)t->ne[0], tt->name, tt->blck);
    uint64_t nel = 1, nbytes = (uint64_t)t->ne[0] / tt->blck;
    bool ok = gm_mul_u64(nbytes, tt->type_size, &nbytes);
    for (int d = 0; d < GGUF_MAX_DIMS && ok; d++)
        ok = gm_mul_u64(nel, (uint64_t)t->ne[d], &nel) && (d == 0 || gm_mul_u64(nbytes, (uint64_t)t->ne[d], &nbytes));
    if (!ok || nel > (uint64_t)INT64_MAX || nbytes > (uint64_t)SIZE_MAX)
        return pfail(P, GEMMA_E_FORMAT, "shape [%lld, %lld, %lld, %lld] overflows: element count or byte size is not representable",
                     (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2], (long long)t->ne[3]);
    t->nbytes = nbytes;
    return GEMMA_OK;
}

static gemma_status parse_tensor(parser *P, gguf_ctx *ctx, gm_gguf_impl *im, uint64_t i)
{
    gguf_tensor *t = &ctx->tensors[i];
    uint64_t at = P->pos;
    snprintf(P->where, sizeof P->where, "tensor info #%llu at offset %llu", (unsigned long long)i,
             (unsigned long long)at);
    gemma_status st = rd_str(P, &t->name, NULL);
    if (st)
        return st;
    if (t->name.len == 0)
        return pfail(P, GEMMA_E_FORMAT, "empty tensor name");
    char name[GM_GGUF_NAME_BUF];
    gm_gguf_name(t->name, name);
    if (t->name.len >= GGUF_MAX_NAME)
        return pfail(P, GEMMA_E_FORMAT, "tensor name '%s' is %llu bytes long; the limit is %u",
                     name, (unsigned long long)t->name.len, GGUF_MAX_NAME - 1);
    snprintf(P->where, sizeof P->where, "tensor '%s' (info #%llu at offset %llu)", name,
             (unsigned long long)i, (unsigned long long)at);
    uint32_t prev = hash_lookup(&im->tensor_hash, ctx->tensors, sizeof *t, t->name.ptr, t->name.len, (uint32_t)i);
    if (prev != UINT32_MAX)
        return pfail(P, GEMMA_E_FORMAT, "duplicate tensor name (first defined by tensor info #%u)", prev);
    if ((st = rd_u32(P, &t->n_dims, "n_dims")))
        return st;
    if (t->n_dims < 1 || t->n_dims > GGUF_MAX_DIMS) /* checked before ne[] is written */
        return pfail(P, GEMMA_E_FORMAT, "n_dims = %u at offset %llu, expected 1..%d",
                     t->n_dims, (unsigned long long)(P->pos - 4), GGUF_MAX_DIMS);
    for (int d = 0; d < GGUF_MAX_DIMS; d++)
        t->ne[d] = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) {
        uint64_t v;
        if ((st = rd_u64(P, &v, "dimension")))
            return st;
        if (v == 0 || v > GGUF_MAX_NE)
            return pfail(P, GEMMA_E_FORMAT, "dimension ne[%u] = %llu at offset %llu is out of range [1, 2^62]",
                         d, (unsigned long long)v, (unsigned long long)(P->pos - 8));
        t->ne[d] = (int64_t)v;
    }
    if ((st = rd_u32(P, &t->type, "tensor type")) || (st = tensor_size(P, t)))
        return st;
    if ((st = rd_u64(P, &t->offset, "tensor data offset")))
        return st;
    if (t->offset % ctx->alignment != 0)
        return pfail(P, GEMMA_E_FORMAT, "data offset %llu is not a multiple of the alignment %u",
                     (unsigned long long)t->offset, ctx->alignment);
    return GEMMA_OK;
}

typedef struct span {
    uint64_t off, end;
    uint32_t idx;
} span;

static int span_cmp(const void *a, const void *b)
{
    const span *x = a, *y = b;
    return x->off < y->off ? -1 : x->off > y->off ? 1 : (x->idx > y->idx) - (x->idx < y->idx);
}

/* Data inside the file and no two tensors sharing a byte. */
static gemma_status check_data(parser *P, gguf_ctx *ctx)
{
    for (uint64_t i = 0; i < ctx->n_tensors; i++) {
        gguf_tensor *t = &ctx->tensors[i];
        char name[GM_GGUF_NAME_BUF];
        gm_gguf_name(t->name, name);
        uint64_t start, end;
        if (!gm_add_u64(ctx->data_offset, t->offset, &start) || !gm_add_u64(start, t->nbytes, &end))
            return pfail(P, GEMMA_E_FORMAT, "tensor '%s': data offset %llu + size %llu overflows",
                         name, (unsigned long long)t->offset, (unsigned long long)t->nbytes);
        if (end > P->len)
            return pfail(P, GEMMA_E_FORMAT, "tensor '%s': data ends at %llu, past end of file (%llu)",
                         name, (unsigned long long)end, (unsigned long long)P->len);
        t->data = P->buf + start;
    }
    if (ctx->n_tensors < 2)
        return GEMMA_OK;
    span *s = gm_malloc_array((size_t)ctx->n_tensors, sizeof *s);
    if (!s)
        return pfail(P, GEMMA_E_NOMEM, "out of memory sorting %llu tensors", (unsigned long long)ctx->n_tensors);
    for (uint64_t i = 0; i < ctx->n_tensors; i++)
        s[i] = (span){ctx->tensors[i].offset, ctx->tensors[i].offset + ctx->tensors[i].nbytes, (uint32_t)i};
    qsort(s, (size_t)ctx->n_tensors, sizeof *s, span_cmp);
    gemma_status st = GEMMA_OK;
    for (uint64_t i = 1; i < ctx->n_tensors && !st; i++) {
        if (s[i].off >= s[i - 1].end)
            continue;
        char a[GM_GGUF_NAME_BUF], b[GM_GGUF_NAME_BUF];
        gm_gguf_name(ctx->tensors[s[i].idx].name, a);
        gm_gguf_name(ctx->tensors[s[i - 1].idx].name, b);
        st = pfail(P, GEMMA_E_FORMAT, "tensor '%s' at data offset %llu overlaps tensor '%s' (data offsets %llu..%llu)",
                   a, (unsigned long long)s[i].off, b, (unsigned long long)s[i - 1].off,
                   (unsigned long long)s[i - 1].end);
    }
    free(s);
    return st;
}

static gemma_status parse_tensors(parser *P, gguf_ctx *ctx, gm_gguf_impl *im)
{
    gemma_status st;
    if ((st = hash_init(&im->tensor_hash, ctx->n_tensors)))
        return pfail(P, st, "out of memory for the tensor index");
    for (uint64_t i = 0; i < ctx->n_tensors; i++)
        if ((st = parse_tensor(P, ctx, im, i)))
            return st;
    P->where[0] = '\0';
    /* Data starts at the next multiple of the alignment (alignment <= 2^20: no overflow). */
    uint64_t a = ctx->alignment;
    ctx->data_offset = (P->pos + a - 1) / a * a;
    if (ctx->n_tensors == 0) {
        ctx->data_offset = GM_MIN(ctx->data_offset, P->len);
        return GEMMA_OK;
    }
    if (ctx->data_offset > P->len)
        return pfail(P, GEMMA_E_FORMAT, "tensor data section starts at %llu, past end of file (%llu)",
                     (unsigned long long)ctx->data_offset, (unsigned long long)P->len);
    return check_data(P, ctx);
}

/* ---- entry points --------------------------------------------------------------------- */

void gguf_free(gguf_ctx *ctx)
{
    if (!ctx)
        return;
    gm_gguf_impl *im = (gm_gguf_impl *)ctx;
    if (ctx->kv)
        for (uint64_t i = 0; i < ctx->n_kv; i++)
            free((void *)ctx->kv[i].strs);
    free(ctx->kv);
    free(ctx->tensors);
    free(im->kv_hash.slots);
    free(im->tensor_hash.slots);
    free(im);
}

gemma_status gguf_parse(const void *buf, size_t len, const gguf_limits *limits, gguf_ctx **out,
                        gemma_error *err)
{
    if (!out)
        return gm_fail(err, GEMMA_E_INVALID_ARG, "gguf_parse: out is NULL");
    *out = NULL;
    if (!buf && len)
        return gm_fail(err, GEMMA_E_INVALID_ARG, "gguf_parse: buffer is NULL");
    parser P = {.buf = buf, .len = len, .lim = limits ? *limits : gguf_default_limits(), .err = err};
    /* The hash tables index with u32. */
    P.lim.max_kv = GM_MIN(P.lim.max_kv, (uint64_t)UINT32_MAX / 4);
    P.lim.max_tensors = GM_MIN(P.lim.max_tensors, (uint64_t)UINT32_MAX / 4);
    P.lim.max_array = GM_MIN(P.lim.max_array, (uint64_t)1 << 40);
    gm_gguf_impl *im = gm_calloc(1, sizeof *im);
    if (!im)
        return gm_fail(err, GEMMA_E_NOMEM, "out of memory for the GGUF index");
    gguf_ctx *ctx = &im->pub;
    ctx->base = buf;
    ctx->size = len;
    gemma_status st = parse_header(&P, ctx);
    if (!st) {
        ctx->kv = gm_calloc(ctx->n_kv ? (size_t)ctx->n_kv : 1, sizeof *ctx->kv);
        ctx->tensors = gm_calloc(ctx->n_tensors ? (size_t)ctx->n_tensors : 1, sizeof *ctx->tensors);
        if (!ctx->kv || !ctx->tensors)
            st = gm_fail(err, GEMMA_E_NOMEM, "out of memory for %llu metadata and %llu tensor records",
                         (unsigned long long)ctx->n_kv, (unsigned long long)ctx->n_tensors);
    }
    if (!st)
        st = parse_kvs(&P, ctx, im);
    if (!st)
        st = read_alignment(&P, ctx);
    if (!st)
        st = parse_tensors(&P, ctx, im);
    if (st) {
        gguf_free(ctx);
        return st;
    }
    *out = ctx;
    return GEMMA_OK;
}
