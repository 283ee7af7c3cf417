/* One-defect rewrites of a valid GGUF model, for load tests (test_robustness.c,
 * test_gemma4.c): an edit names the key or tensor to drop or change, edit_load writes the
 * rewritten file to a memfd and loads it, edit_expect checks that the load gives the wanted
 * status with a message naming the defect (and no model). Header-only test code. */
#ifndef GM_TEST_MODEL_EDIT_H
#define GM_TEST_MODEL_EDIT_H

#include "../fuzz/fuzz-common.h"
#include "gguf-writer.h"
#include "test.h"

typedef struct edit {
    const char *drop_key;
    const char *u32_key; /* set (or add) this key as UINT32 = u32 */
    uint32_t u32;
    const char *str_key; /* set (or add) this key as STRING = str */
    const char *str;
    const char *f32_key; /* set this key as FLOAT32 = f32 */
    float f32;
    const char *arr_key; /* replace with an array of n elements of arr_type */
    uint32_t arr_type;
    const void *arr;
    uint64_t n;
    const char *drop_tensor;
    const char *shape_tensor; /* give it ne[0..1] = ne0, ne1 */
    int64_t ne0, ne1;
    const char *type_tensor;
    uint32_t type;
    const char *rename_tensor, *new_name;
    bool extra_tensor; /* add an F32 blk.0.mystery.weight */
    bool added;        /* set when a key to set was found (else u32_key / str_key are added) */
} edit;

static inline bool msg_has(const gemma_error *err, const char *needle)
{
    return strstr(err->message, needle) != NULL;
}

static inline bool edit_kv(void *user, gguf_writer *w, const gguf_kv *kv)
{
    edit *e = user;
    if (e->drop_key && gw_key_is(kv, e->drop_key))
        return true;
    if (e->u32_key && gw_key_is(kv, e->u32_key)) {
        gw_kv_u32(w, e->u32_key, e->u32);
        e->added = true;
        return true;
    }
    if (e->str_key && gw_key_is(kv, e->str_key)) {
        gw_kv_str(w, e->str_key, e->str);
        e->added = true;
        return true;
    }
    if (e->f32_key && gw_key_is(kv, e->f32_key)) {
        gw_kv_f32(w, e->f32_key, e->f32);
        e->added = true;
        return true;
    }
    if (e->arr_key && gw_key_is(kv, e->arr_key)) {
        const size_t elem = e->arr_type == GGUF_T_BOOL || e->arr_type == GGUF_T_UINT8 ? 1 : 4;
        gw_kv_arr(w, e->arr_key, e->arr_type, e->arr, e->n, elem);
        return true;
    }
    return false;
}

static inline bool edit_tensor(void *user, gw_tensor_rec *t)
{
    edit *e = user;
    if (e->drop_tensor && !strcmp(t->name, e->drop_tensor))
        return true;
    if (e->shape_tensor && !strcmp(t->name, e->shape_tensor)) {
        t->ne[0] = e->ne0;
        t->ne[1] = e->ne1;
        t->n_dims = e->ne1 > 1 ? 2 : t->n_dims;
        t->data = NULL;
    }
    if (e->type_tensor && !strcmp(t->name, e->type_tensor)) {
        t->type = e->type;
        t->data = NULL;
    }
    if (e->rename_tensor && !strcmp(t->name, e->rename_tensor))
        snprintf(t->name, sizeof t->name, "%s", e->new_name);
    return false;
}

/* base with e applied, as file bytes (the caller frees them); NULL when out of memory. */
static inline uint8_t *edit_rewrite(const gguf_ctx *base, edit *e, size_t *len)
{
    gguf_writer w;
    gw_from_ctx(&w, base, edit_kv, edit_tensor, e);
    if (e->u32_key && !e->added)
        gw_kv_u32(&w, e->u32_key, e->u32);
    if (e->str_key && !e->added)
        gw_kv_str(&w, e->str_key, e->str);
    if (e->extra_tensor)
        gw_tensor_add(&w, "blk.0.mystery.weight", GM_TYPE_F32, 1, 32, 1, 1, 1);
    return gw_take(&w, len);
}

/* Loads a model from memory through a memfd. */
static inline gemma_status load_bytes(const uint8_t *buf, size_t len, bool use_mmap, gemma_model **m, gemma_error *err)
{
    char path[64];
    int fd = fz_memfd(buf, len, path);
    if (fd < 0)
        return GEMMA_E_IO;
    gemma_model_params p;
    gemma_model_params_init(&p, sizeof p);
    p.use_mmap = use_mmap;
    gemma_status st = gemma_model_load(path, &p, m, err);
    close(fd);
    return st;
}

/* Loads base with e applied (mapped); GEMMA_E_IO when the rewrite fails. */
static inline gemma_status edit_load(const gguf_ctx *base, edit e, gemma_model **m, gemma_error *err)
{
    size_t len = 0;
    uint8_t *buf = edit_rewrite(base, &e, &len);
    gemma_status st = buf ? load_bytes(buf, len, true, m, err) : GEMMA_E_IO;
    free(buf);
    return st;
}

/* Loads base with e applied and expects code; on failure no model and a message with needle. */
static inline void edit_expect(const gguf_ctx *base, const char *what, edit e, gemma_status code, const char *needle)
{
    gemma_model *m = NULL;
    gemma_error err;
    memset(&err, 0, sizeof err);
    gemma_status st = edit_load(base, e, &m, &err);
    CHECKF(st == code, "%s: got %s (%s), want %s", what, gemma_status_name(st), err.message,
           gemma_status_name(code));
    if (st != GEMMA_OK) {
        CHECKF(m == NULL, "%s: model set on failure", what);
        CHECKF(err.code == st && err.message[0], "%s: no message", what);
        CHECKF(!needle || msg_has(&err, needle), "%s: message \"%s\" lacks \"%s\"", what, err.message, needle);
    }
    gemma_model_free(m);
}

#endif
