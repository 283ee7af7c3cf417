/* Typed metadata getters. Types are checked exactly (a u32 key must be stored as UINT32),
 * because reading a value as the wrong type is how several GGUF loaders broke. */
#include "gguf.h"
#include "gguf-internal.h"

#include "../util/util.h"

static gemma_status lookup(const gguf_ctx *ctx, const char *key, uint32_t type, uint32_t arr_type,
                           const gguf_kv **out, gemma_error *err)
{
    *out = NULL;
    if (!ctx || !key)
        return gm_fail(err, GEMMA_E_INVALID_ARG, "gguf getter: NULL context or key");
    const gguf_kv *kv = gguf_find(ctx, key);
    if (!kv)
        return gm_fail(err, GEMMA_E_NOT_FOUND, "key '%s' not found", key);
    if (kv->type != type)
        return gm_fail(err, GEMMA_E_MODEL, "key '%s' at offset %llu: type %s, expected %s", key,
                       (unsigned long long)kv->offset, gguf_vtype_name(kv->type), gguf_vtype_name(type));
    if (type == GGUF_T_ARRAY && kv->arr_type != arr_type)
        return gm_fail(err, GEMMA_E_MODEL, "key '%s' at offset %llu: array of %s, expected array of %s",
                       key, (unsigned long long)kv->offset, gguf_vtype_name(kv->arr_type),
                       gguf_vtype_name(arr_type));
    *out = kv;
    return GEMMA_OK;
}

gemma_status gguf_get_u32(const gguf_ctx *ctx, const char *key, uint32_t *out, gemma_error *err)
{
    const gguf_kv *kv;
    gemma_status st = lookup(ctx, key, GGUF_T_UINT32, 0, &kv, err);
    if (!st)
        *out = gm_rd_u32(kv->data);
    return st;
}

gemma_status gguf_get_f32(const gguf_ctx *ctx, const char *key, float *out, gemma_error *err)
{
    const gguf_kv *kv;
    gemma_status st = lookup(ctx, key, GGUF_T_FLOAT32, 0, &kv, err);
    if (!st)
        *out = gm_rd_f32(kv->data);
    return st;
}

gemma_status gguf_get_bool(const gguf_ctx *ctx, const char *key, bool *out, gemma_error *err)
{
    const gguf_kv *kv;
    gemma_status st = lookup(ctx, key, GGUF_T_BOOL, 0, &kv, err);
    if (!st)
        *out = kv->data[0] != 0; /* any nonzero byte is true, as in llama.cpp */
    return st;
}

gemma_status gguf_get_str(const gguf_ctx *ctx, const char *key, gguf_str *out, gemma_error *err)
{
    const gguf_kv *kv;
    gemma_status st = lookup(ctx, key, GGUF_T_STRING, 0, &kv, err);
    if (!st) {
        out->len = gm_rd_u64(kv->data);
        out->ptr = (const char *)kv->data + 8;
    }
    return st;
}

gemma_status gguf_get_arr(const gguf_ctx *ctx, const char *key, uint32_t elem_type, uint64_t *n,
                          const void **data, gemma_error *err)
{
    const gguf_kv *kv;
    if (elem_type == GGUF_T_STRING)
        return gm_fail(err, GEMMA_E_INVALID_ARG, "key '%s': use gguf_get_str_arr for string arrays", key ? key : "");
    gemma_status st = lookup(ctx, key, GGUF_T_ARRAY, elem_type, &kv, err);
    if (!st) {
        *n = kv->n;
        *data = kv->data;
    }
    return st;
}

gemma_status gguf_get_str_arr(const gguf_ctx *ctx, const char *key, uint64_t *n,
                              const gguf_str **strs, gemma_error *err)
{
    const gguf_kv *kv;
    gemma_status st = lookup(ctx, key, GGUF_T_ARRAY, GGUF_T_STRING, &kv, err);
    if (!st) {
        *n = kv->n;
        *strs = kv->strs;
    }
    return st;
}

gemma_status gguf_get_u32_per_layer(const gguf_ctx *ctx, const char *key, uint32_t n_layer,
                                    uint32_t *out, gemma_error *err)
{
    if (!ctx || !key || (n_layer && !out))
        return gm_fail(err, GEMMA_E_INVALID_ARG, "gguf_get_u32_per_layer: NULL argument");
    const gguf_kv *kv = gguf_find(ctx, key);
    if (!kv)
        return gm_fail(err, GEMMA_E_NOT_FOUND, "key '%s' not found", key);
    unsigned long long at = (unsigned long long)kv->offset;
    if (kv->type == GGUF_T_UINT32) {
        uint32_t v = gm_rd_u32(kv->data);
        for (uint32_t i = 0; i < n_layer; i++)
            out[i] = v;
        return GEMMA_OK;
    }
    if (kv->type != GGUF_T_ARRAY)
        return gm_fail(err, GEMMA_E_MODEL, "key '%s' at offset %llu: type %s, expected UINT32 or an array of UINT32/INT32",
                       key, at, gguf_vtype_name(kv->type));
    if (kv->arr_type != GGUF_T_UINT32 && kv->arr_type != GGUF_T_INT32)
        return gm_fail(err, GEMMA_E_MODEL, "key '%s' at offset %llu: array of %s, expected an array of UINT32 or INT32",
                       key, at, gguf_vtype_name(kv->arr_type));
    if (kv->n != n_layer)
        return gm_fail(err, GEMMA_E_MODEL, "key '%s' at offset %llu: array has %llu elements, expected one per layer (%u)",
                       key, at, (unsigned long long)kv->n, n_layer);
    for (uint32_t i = 0; i < n_layer; i++) {
        uint32_t v = gm_rd_u32(kv->data + 4 * (size_t)i);
        if (kv->arr_type == GGUF_T_INT32 && (int32_t)v < 0)
            return gm_fail(err, GEMMA_E_MODEL, "key '%s' at offset %llu: element %u is negative (%d)",
                           key, at, i, (int32_t)v);
        out[i] = v;
    }
    return GEMMA_OK;
}
