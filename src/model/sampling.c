/* The model file's general.sampling.* defaults, read and validated once at load
 * (gm_read_sampling_hints) so the sampler reads settled values, never raw GGUF keys. */
#include "arch.h"
#include "../util/util.h"

#include <float.h>
#include <math.h>
#include <string.h>

/* Integer metadata of any integer type; false when absent, not an integer, or out of the
 * int32 range (a garbage value must not silently become a setting). */
static bool meta_int(const gguf_ctx *g, const char *key, int64_t *out)
{
    const gguf_kv *kv = g ? gguf_find(g, key) : NULL;
    if (!kv || kv->type == GGUF_T_ARRAY || !kv->data)
        return false;
    int64_t v;
    switch (kv->type) {
    case GGUF_T_UINT8: v = *kv->data; break;
    case GGUF_T_INT8: v = (int8_t)*kv->data; break;
    case GGUF_T_UINT16: v = gm_rd_u16(kv->data); break;
    case GGUF_T_INT16: v = (int16_t)gm_rd_u16(kv->data); break;
    case GGUF_T_UINT32: v = gm_rd_u32(kv->data); break;
    case GGUF_T_INT32: v = (int32_t)gm_rd_u32(kv->data); break;
    case GGUF_T_UINT64: {
        uint64_t u = gm_rd_u64(kv->data);
        if (u > INT32_MAX)
            return false;
        v = (int64_t)u;
        break;
    }
    case GGUF_T_INT64: v = (int64_t)gm_rd_u64(kv->data); break;
    default: return false;
    }
    if (v < INT32_MIN || v > INT32_MAX)
        return false;
    *out = v;
    return true;
}

/* Finite float metadata (f32, or f64 from lenient converters). */
static bool meta_float(const gguf_ctx *g, const char *key, float *out)
{
    const gguf_kv *kv = g ? gguf_find(g, key) : NULL;
    if (!kv || !kv->data)
        return false;
    double v;
    if (kv->type == GGUF_T_FLOAT32) {
        v = gm_rd_f32(kv->data);
    } else if (kv->type == GGUF_T_FLOAT64) {
        uint64_t u = gm_rd_u64(kv->data);
        memcpy(&v, &u, sizeof v);
    } else {
        return false;
    }
    if (!isfinite(v) || fabs(v) > FLT_MAX)
        return false;
    *out = (float)v;
    return true;
}

void gm_read_sampling_hints(const gguf_ctx *g, gm_sampling_hints *h)
{
    memset(h, 0, sizeof *h);
    /* Each key is taken only when its value is one gemma_sampler_create accepts. */
    int64_t iv;
    float fv;
    if ((h->has_top_k = meta_int(g, "general.sampling.top_k", &iv) && iv >= 0))
        h->top_k = (int32_t)iv;
    if ((h->has_top_p = meta_float(g, "general.sampling.top_p", &fv) && fv >= 0.0f && fv <= 1.0f))
        h->top_p = fv;
    if ((h->has_min_p = meta_float(g, "general.sampling.min_p", &fv) && fv >= 0.0f && fv <= 1.0f))
        h->min_p = fv;
    if ((h->has_temp = meta_float(g, "general.sampling.temp", &fv) && fv >= 0.0f))
        h->temp = fv;
    if ((h->has_penalty_last_n = meta_int(g, "general.sampling.penalty_last_n", &iv) && iv >= 0 &&
                                 iv <= GM_PENALTY_LAST_N_MAX))
        h->penalty_last_n = (int32_t)iv;
    if ((h->has_penalty_repeat = meta_float(g, "general.sampling.penalty_repeat", &fv) && fv > 0.0f))
        h->penalty_repeat = fv;
}
