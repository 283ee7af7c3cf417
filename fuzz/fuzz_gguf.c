/* Fuzz target: the GGUF parser (gguf_parse over the input bytes), every typed getter on
 * every key it accepted, and the public inspection API (gemma_gguf_open through a memfd,
 * key/value rendering, tensor table) on accepted files. */
#include "fuzz-common.h"

#include "gguf/gguf.h"

#include <stdlib.h>

static void gg_touch(const void *p, uint64_t n)
{
    /* Reading the first and last byte makes ASan check the pointer range the index claims. */
    if (n == 0)
        return;
    volatile uint8_t sink = ((const uint8_t *)p)[0];
    sink ^= ((const uint8_t *)p)[n - 1];
    (void)sink;
}

static void gg_getters(const gguf_ctx *c)
{
    char key[256];
    for (uint64_t i = 0; i < c->n_kv; i++) {
        const gguf_kv *kv = &c->kv[i];
        if (gguf_find(c, "") != NULL)
            __builtin_trap();
        if (kv->key.len >= sizeof key || memchr(kv->key.ptr, 0, kv->key.len))
            continue;
        memcpy(key, kv->key.ptr, kv->key.len);
        key[kv->key.len] = '\0';
        if (gguf_find(c, key) != kv)
            __builtin_trap(); /* keys are unique: lookup must give this record */
        gemma_error err;
        uint32_t u;
        float f;
        bool b;
        gguf_str s;
        uint64_t n;
        const void *data;
        const gguf_str *strs;
        gemma_status st;
        if ((st = gguf_get_u32(c, key, &u, &err)))
            fz_check_error(st, &err);
        if ((st = gguf_get_f32(c, key, &f, &err)))
            fz_check_error(st, &err);
        if ((st = gguf_get_bool(c, key, &b, &err)))
            fz_check_error(st, &err);
        if ((st = gguf_get_str(c, key, &s, &err)))
            fz_check_error(st, &err);
        else
            gg_touch(s.ptr, s.len);
        for (uint32_t t = 0; t < GGUF_T_COUNT + 1; t++) {
            if ((st = gguf_get_arr(c, key, t, &n, &data, &err)))
                fz_check_error(st, &err);
            else if (t != GGUF_T_STRING && n)
                gg_touch(data, 1);
        }
        if ((st = gguf_get_str_arr(c, key, &n, &strs, &err)))
            fz_check_error(st, &err);
        else
            for (uint64_t j = 0; j < n; j++)
                gg_touch(strs[j].ptr, strs[j].len);
        uint32_t per_layer[16];
        for (uint32_t nl = 0; nl <= 16; nl += 4) {
            uint32_t want = nl ? nl : (kv->type == GGUF_T_ARRAY && kv->n <= 16 ? (uint32_t)kv->n : 1);
            if ((st = gguf_get_u32_per_layer(c, key, want, per_layer, &err)))
                fz_check_error(st, &err);
        }
    }
    for (uint64_t i = 0; i < c->n_tensors; i++) {
        const gguf_tensor *t = &c->tensors[i];
        gg_touch(t->data, t->nbytes);
        char name[128];
        if (t->name.len < sizeof name && !memchr(t->name.ptr, 0, t->name.len)) {
            memcpy(name, t->name.ptr, t->name.len);
            name[t->name.len] = '\0';
            if (gguf_find_tensor(c, name) != t)
                __builtin_trap();
        }
    }
}

/* The public API over the same bytes, through an in-memory file. */
static void gg_public(const uint8_t *data, size_t size)
{
    char path[64];
    int fd = fz_memfd(data, size, path);
    if (fd < 0)
        return;
    gemma_gguf *g = NULL;
    gemma_error err;
    gemma_status st = gemma_gguf_open(path, &g, &err);
    close(fd);
    if (st) {
        fz_check_error(st, &err);
        return;
    }
    char small[8], big[512];
    size_t n_kv = gemma_gguf_n_kv(g);
    for (size_t i = 0; i <= n_kv; i++) {
        const char *k = gemma_gguf_kv_key(g, i);
        if ((k == NULL) != (i == n_kv))
            __builtin_trap();
        (void)gemma_gguf_kv_type(g, i);
        (void)gemma_gguf_kv_elem_type(g, i);
        uint64_t cnt = gemma_gguf_kv_count(g, i);
        (void)gemma_gguf_kv_to_string(g, i, small, sizeof small);
        (void)gemma_gguf_kv_to_string(g, i, big, sizeof big);
        if (memchr(big, 0, sizeof big) == NULL)
            __builtin_trap();
        int64_t v;
        (void)gemma_gguf_kv_get_int(g, i, 0, &v);
        (void)gemma_gguf_kv_get_int(g, i, cnt ? cnt - 1 : 0, &v);
        (void)gemma_gguf_kv_get_int(g, i, cnt, &v);
        if (k) {
            (void)gemma_gguf_find_key(g, k);
            uint32_t u;
            float f;
            const char *s;
            size_t len;
            (void)gemma_gguf_get_u32(g, k, &u);
            (void)gemma_gguf_get_f32(g, k, &f);
            if (gemma_gguf_get_str(g, k, &s, &len) == GEMMA_OK)
                gg_touch(s, len);
        }
    }
    size_t n_t = gemma_gguf_n_tensors(g);
    for (size_t i = 0; i <= n_t; i++) {
        gemma_tensor_info ti = {.size = sizeof ti};
        st = gemma_gguf_tensor(g, i, &ti);
        if ((st == GEMMA_OK) != (i < n_t))
            __builtin_trap();
    }
    gemma_gguf_close(g);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gguf_ctx *ctx = NULL;
    gemma_error err;
    memset(&err, 0, sizeof err);
    gemma_status st = gguf_parse(data, size, NULL, &ctx, &err);
    if (st) {
        fz_check_error(st, &err);
        if (ctx)
            __builtin_trap();
        return 0;
    }
    if (!ctx)
        __builtin_trap();
    gg_getters(ctx);
    gguf_free(ctx);
    /* Tight limits reach the limit checks with small inputs. */
    gguf_limits lim = {.max_string = 16, .max_array = 8, .max_kv = 4, .max_tensors = 4, .max_alignment = 64};
    ctx = NULL;
    if ((st = gguf_parse(data, size, &lim, &ctx, &err)))
        fz_check_error(st, &err);
    gguf_free(ctx);
    gg_public(data, size);
    return 0;
}
