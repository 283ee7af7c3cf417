/* Model loading: open and validate the GGUF file, dispatch on general.architecture, load the
 * vocabulary, let the architecture bind its tensors, and check that nothing is left over. */
#include "model.h"

#include "arch.h"
#include "ops.h"
#include "../tensor/quants.h"
#include "../tokenizer/tokenizer.h"
#include "../util/util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static const gm_arch_ops *const arch_table[] = {&gm_arch_gemma3, &gm_arch_gemma4};

const gguf_ctx *gm_model_gguf(const gemma_model *m) { return m ? m->file->ctx : NULL; }
const struct gm_vocab *gm_model_vocab(const gemma_model *m) { return m ? m->vocab : NULL; }
const char *gm_model_arch(const gemma_model *m) { return m ? m->arch : ""; }
const gm_sampling_hints *gm_model_sampling(const gemma_model *m) { return m ? &m->sampling : NULL; }
gm_chat_family gm_model_chat_family(const gemma_model *m) { return m->ops->chat; }

#define MODEL_PARAMS_MIN GM_ABI_MIN(gemma_model_params, progress_user)

static gemma_model_params model_defaults(void)
{
    gemma_model_params p = {.size = sizeof p, .use_mmap = true};
    return p;
}

gemma_status gemma_model_params_init(gemma_model_params *p, size_t size)
{
    gemma_model_params d = model_defaults();
    return p ? gm_abi_write(p, size, &d, sizeof d, MODEL_PARAMS_MIN) : GEMMA_E_INVALID_ARG;
}

void gemma_model_free(gemma_model *m)
{
    if (!m)
        return;
    if (m->ops && m->ops->free_data)
        m->ops->free_data(m->arch_data);
    if (m->names)
        for (size_t i = 0; i < m->n_bound; i++)
            free(m->names[i]);
    free(m->names);
    for (size_t i = 0; i < m->n_f32_copies; i++)
        gm_aligned_free(m->f32_copies[i]);
    free(m->f32_copies);
    free(m->tensors);
    free(m->consumed);
    free(m->layers);
    free(m->gelu_f16);
    free(m->name);
    free(m->size_label);
    gm_vocab_free(m->vocab);
    gguf_file_close(m->file);
    free(m);
}

/* ---- binding helpers (used by the architecture files) ---- */

const char *gm_blk_name(char *buf, size_t cap, int il, const char *suffix)
{
    snprintf(buf, cap, "blk.%d.%s", il, suffix);
    return buf;
}

static gemma_status find_checked(gemma_model *m, const char *name, int64_t ne0, int64_t ne1,
                                 unsigned flags, const gguf_tensor **out, gemma_error *err)
{
    const gguf_ctx *g = m->file->ctx;
    const gguf_tensor *t = gguf_find_tensor(g, name);
    *out = NULL;
    if (!t) {
        if (flags & GM_BIND_OPTIONAL)
            return GEMMA_OK;
        return gm_fail(err, GEMMA_E_MODEL, "missing tensor '%s'", name);
    }
    size_t idx = (size_t)(t - g->tensors);
    if (m->consumed[idx])
        return gm_fail(err, GEMMA_E_MODEL, "tensor '%s' bound twice", name);
    if (t->ne[0] != ne0 || t->ne[1] != ne1 || t->ne[2] != 1 || t->ne[3] != 1)
        return gm_fail(err, GEMMA_E_MODEL,
                       "tensor '%s' has shape [%lld, %lld, %lld, %lld], expected [%lld, %lld]", name,
                       (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2],
                       (long long)t->ne[3], (long long)ne0, (long long)ne1);
    m->consumed[idx] = 1;
    *out = t;
    return GEMMA_OK;
}

static char *dup_cstr(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

gemma_status gm_bind_weight(gemma_model *m, const char *name, int64_t ne0, int64_t ne1,
                            unsigned flags, const gm_tensor **out, gemma_error *err)
{
    const gguf_tensor *t;
    *out = NULL;
    gemma_status st = find_checked(m, name, ne0, ne1, flags, &t, err);
    if (st || !t)
        return st;
    const gm_type_traits *tr = gm_type_get(t->type);
    if (!tr || !tr->weight)
        return gm_fail(err, GEMMA_E_UNSUPPORTED, "tensor '%s': type %s cannot be used as a weight",
                       name, tr ? tr->name : "unknown");
    if (ne0 % tr->blck)
        return gm_fail(err, GEMMA_E_MODEL, "tensor '%s': row length %lld is not a multiple of %s's block size %u",
                       name, (long long)ne0, tr->name, tr->blck);
    char *nm = dup_cstr(name, strlen(name));
    if (!nm)
        return gm_fail(err, GEMMA_E_NOMEM, "out of memory binding '%s'", name);
    gm_tensor *w = &m->tensors[m->n_bound];
    m->names[m->n_bound++] = nm;
    w->name = nm;
    w->type = (gm_type)t->type;
    w->ne[0] = ne0;
    w->ne[1] = ne1;
    w->ne[2] = w->ne[3] = 1;
    w->row_bytes = gm_row_size(tr, ne0);
    w->data = t->data;
    *out = w;
    return GEMMA_OK;
}

gemma_status gm_bind_f32(gemma_model *m, const char *name, int64_t n, unsigned flags,
                         const float **out, gemma_error *err)
{
    const gguf_tensor *t;
    *out = NULL;
    gemma_status st = find_checked(m, name, n, 1, flags, &t, err);
    if (st || !t)
        return st;
    if (t->type != GM_TYPE_F32)
        return gm_fail(err, GEMMA_E_MODEL, "tensor '%s': type %s, expected F32", name,
                       gm_type_get(t->type) ? gm_type_get(t->type)->name : "unknown");
    /* Copied so that the math never reads an F32 from a possibly misaligned offset. */
    float *copy = gm_aligned_alloc((size_t)n * sizeof(float));
    if (!copy)
        return gm_fail(err, GEMMA_E_NOMEM, "out of memory copying '%s'", name);
    memcpy(copy, t->data, (size_t)n * sizeof(float));
    m->f32_copies[m->n_f32_copies++] = copy;
    *out = copy;
    return GEMMA_OK;
}

/* ---- metadata helpers ---- */

static gemma_status key_name(char *buf, size_t cap, const char *arch, const char *suffix,
                             gemma_error *err)
{
    int n = snprintf(buf, cap, "%s.%s", arch, suffix);
    if (n < 0 || (size_t)n >= cap)
        return gm_fail(err, GEMMA_E_INTERNAL, "key name too long");
    return GEMMA_OK;
}

static gemma_status absent(gemma_status st, bool required, const char *key, gemma_error *err)
{
    if (st == GEMMA_E_NOT_FOUND)
        return required ? gm_fail(err, GEMMA_E_MODEL, "missing required key '%s'", key) : GEMMA_OK;
    return st;
}

gemma_status gm_key_u32(const gguf_ctx *g, const char *arch, const char *suffix, bool required,
                        uint32_t *out, gemma_error *err)
{
    char key[128];
    gemma_status st = key_name(key, sizeof key, arch, suffix, err);
    if (st)
        return st;
    uint32_t v;
    st = gguf_get_u32(g, key, &v, err);
    if (st == GEMMA_OK)
        *out = v;
    return absent(st, required, key, err);
}

gemma_status gm_key_f32(const gguf_ctx *g, const char *arch, const char *suffix, bool required,
                        float *out, gemma_error *err)
{
    char key[128];
    gemma_status st = key_name(key, sizeof key, arch, suffix, err);
    if (st)
        return st;
    float v;
    st = gguf_get_f32(g, key, &v, err);
    if (st == GEMMA_OK) {
        if (!isfinite(v))
            return gm_fail(err, GEMMA_E_MODEL, "key '%s' is not a finite number", key);
        *out = v;
    }
    return absent(st, required, key, err);
}

gemma_status gm_key_u32_layers(const gguf_ctx *g, const char *arch, const char *suffix,
                               bool required, uint32_t n_layer, uint32_t *out, gemma_error *err)
{
    char key[128];
    gemma_status st = key_name(key, sizeof key, arch, suffix, err);
    if (st)
        return st;
    uint32_t *tmp = gm_malloc_array(n_layer, sizeof *tmp);
    if (!tmp)
        return gm_fail(err, GEMMA_E_NOMEM, "out of memory reading '%s'", key);
    st = gguf_get_u32_per_layer(g, key, n_layer, tmp, err);
    if (st == GEMMA_OK)
        memcpy(out, tmp, (size_t)n_layer * sizeof *tmp);
    free(tmp);
    return absent(st, required, key, err);
}

/* ---- loading ---- */

static gemma_status progress(const gemma_model_params *p, float v, gemma_error *err)
{
    if (p->progress && p->progress(v, p->progress_user))
        return gm_fail(err, GEMMA_E_ABORTED, "model load aborted by the progress callback");
    return GEMMA_OK;
}

static const gm_arch_ops *find_arch(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof arch_table / sizeof arch_table[0]; i++)
        if (len == strlen(arch_table[i]->name) && !memcmp(name, arch_table[i]->name, len))
            return arch_table[i];
    return NULL;
}

GEMMA_API const char *gemma_arch_size_label(const char *arch, int32_t n_layer)
{
    const gm_arch_ops *ops = arch ? find_arch(arch, strlen(arch)) : NULL;
    for (const gm_size_class *c = ops ? ops->sizes : NULL; c && c->label; c++)
        if (c->n_layer == n_layer)
            return c->label;
    return NULL;
}

static gemma_status pick_arch(gemma_model *m, gemma_error *err)
{
    gguf_str a;
    gemma_status st = gguf_get_str(m->file->ctx, "general.architecture", &a, err);
    if (st == GEMMA_E_NOT_FOUND)
        return gm_fail(err, GEMMA_E_MODEL, "missing required key 'general.architecture'");
    if (st)
        return st;
    if ((m->ops = find_arch(a.ptr, (size_t)a.len))) {
        snprintf(m->arch, sizeof m->arch, "%s", m->ops->name);
        return GEMMA_OK;
    }
    char shown[64];
    size_t n = a.len < sizeof shown - 1 ? (size_t)a.len : sizeof shown - 1;
    for (size_t i = 0; i < n; i++)
        shown[i] = (a.ptr[i] >= 0x20 && a.ptr[i] < 0x7f) ? a.ptr[i] : '?';
    shown[n] = '\0';
    return gm_fail(err, GEMMA_E_UNSUPPORTED, "unsupported architecture '%s' (supported: gemma3, gemma4)", shown);
}

static gemma_status alloc_tables(gemma_model *m, gemma_error *err)
{
    size_t nt = (size_t)m->file->ctx->n_tensors;
    m->consumed = gm_calloc(nt, 1);
    m->tensors = gm_calloc(nt, sizeof *m->tensors);
    m->names = gm_calloc(nt, sizeof *m->names);
    m->f32_copies = gm_calloc(nt, sizeof *m->f32_copies);
    m->gelu_f16 = malloc(65536 * sizeof *m->gelu_f16);
    if (!m->consumed || !m->tensors || !m->names || !m->f32_copies || !m->gelu_f16)
        return gm_fail(err, GEMMA_E_NOMEM, "out of memory allocating the model tables");
    return GEMMA_OK;
}

static char *str_key(const gguf_ctx *g, const char *key)
{
    gguf_str s;
    if (gguf_get_str(g, key, &s, NULL) != GEMMA_OK || s.len > 256)
        return NULL;
    return dup_cstr(s.ptr, (size_t)s.len);
}

static gemma_status fill_info(gemma_model *m, gemma_error *err)
{
    const gguf_ctx *g = m->file->ctx;
    m->name = str_key(g, "general.name");
    m->size_label = str_key(g, "general.size_label");
    if (!m->name)
        m->name = dup_cstr("", 0);
    if (!m->size_label) {
        const char *s = gemma_arch_size_label(m->arch, m->hp.n_layer);
        m->size_label = s ? dup_cstr(s, strlen(s)) : dup_cstr("", 0);
    }
    if (!m->name || !m->size_label)
        return gm_fail(err, GEMMA_E_NOMEM, "out of memory");
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const gguf_tensor *t = &g->tensors[i];
        m->n_params += (uint64_t)(t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3]);
        m->weight_bytes += t->nbytes;
    }
    m->has_chat_template = gguf_find(g, "tokenizer.chat_template") != NULL;
    gm_read_sampling_hints(g, &m->sampling);
    return GEMMA_OK;
}

static gemma_status check_consumed(const gemma_model *m, gemma_error *err)
{
    const gguf_ctx *g = m->file->ctx;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        if (m->consumed[i])
            continue;
        const gguf_str *n = &g->tensors[i].name;
        return gm_fail(err, GEMMA_E_MODEL, "unexpected tensor '%.*s' (not part of a %s model)",
                       (int)(n->len > 200 ? 200 : n->len), n->ptr, m->arch);
    }
    return GEMMA_OK;
}

/* Optional full scan of every tensor in the file for NaN/Inf (validate_data): the file's
 * own data, so that 1-D tensors (norms, copied to F32 at bind time) are covered too. */
static gemma_status scan_weights(const gemma_model *m, const gemma_model_params *p, gemma_error *err)
{
    const gguf_ctx *g = m->file->ctx;
    int64_t maxk = 1;
    for (uint64_t i = 0; i < g->n_tensors; i++)
        maxk = GM_MAX(maxk, g->tensors[i].ne[0]);
    float *row = gm_malloc_array((size_t)maxk, sizeof *row);
    if (!row)
        return gm_fail(err, GEMMA_E_NOMEM, "out of memory scanning weights");
    gemma_status st = GEMMA_OK;
    for (uint64_t i = 0; i < g->n_tensors && !st; i++) {
        const gguf_tensor *t = &g->tensors[i];
        const gm_tensor w = {NULL, (gm_type)t->type, {t->ne[0], 1, 1, 1},
                             gm_row_size(gm_type_get(t->type), t->ne[0]), t->data};
        const int64_t rows = t->ne[1] * t->ne[2] * t->ne[3];
        for (int64_t r = 0; r < rows && !st; r++) {
            gm_tensor_get_row(&w, r, row);
            for (int64_t k = 0; k < t->ne[0]; k++)
                if (!isfinite(row[k])) {
                    st = gm_fail(err, GEMMA_E_MODEL, "tensor '%.*s': %s at row %lld, element %lld",
                                 (int)GM_MIN(t->name.len, 200), t->name.ptr,
                                 isnan(row[k]) ? "NaN" : "Inf", (long long)r, (long long)k);
                    break;
                }
        }
        if (!st)
            st = progress(p, 0.5f + 0.5f * (float)(i + 1) / (float)g->n_tensors, err);
    }
    free(row);
    return st;
}

static gemma_status load_into(gemma_model *m, const char *path, const gemma_model_params *p,
                              gemma_error *err)
{
    gemma_status st = progress(p, 0.0f, err);
    if (!st)
        st = gguf_file_open(path, p->use_mmap, &m->file, err);
    if (!st)
        st = progress(p, 0.3f, err);
    if (!st)
        st = pick_arch(m, err);
    if (!st)
        st = alloc_tables(m, err);
    if (!st && (st = gm_vocab_load(m->file->ctx, &m->vocab, err)))
        gm_err_prefix(err, "tokenizer");
    if (!st)
        st = m->ops->load(m, err);
    if (!st)
        st = check_consumed(m, err);
    if (!st && gm_vocab_n(m->vocab) != m->hp.n_vocab)
        st = gm_fail(err, GEMMA_E_MODEL,
                     "tokenizer.ggml.tokens has %d entries but token_embd.weight has %d rows",
                     (int)gm_vocab_n(m->vocab), (int)m->hp.n_vocab);
    if (!st)
        st = fill_info(m, err);
    if (!st)
        st = progress(p, 0.5f, err);
    if (!st && p->validate_data)
        st = scan_weights(m, p, err);
    if (!st) {
        gm_gelu_table_init(m->gelu_f16);
        st = progress(p, 1.0f, err);
    }
    return st;
}

gemma_status gemma_model_load(const char *path, const gemma_model_params *params,
                              gemma_model **out, gemma_error *err)
{
    if (!out)
        return gm_fail(err, GEMMA_E_INVALID_ARG, "gemma_model_load: out is NULL");
    *out = NULL;
    if (!path)
        return gm_fail(err, GEMMA_E_INVALID_ARG, "gemma_model_load: path is NULL");
    gemma_model_params p = model_defaults();
    if (params && gm_abi_read(&p, sizeof p, params, MODEL_PARAMS_MIN, "gemma_model_params", err))
        return GEMMA_E_INVALID_ARG;
    gemma_model *m = calloc(1, sizeof *m);
    if (!m)
        return gm_fail(err, GEMMA_E_NOMEM, "out of memory allocating the model");
    gemma_status st = load_into(m, path, &p, err);
    if (st) {
        gemma_model_free(m);
        return st;
    }
    if (err) {
        err->code = GEMMA_OK;
        err->message[0] = '\0';
    }
    *out = m;
    return GEMMA_OK;
}

gemma_status gemma_model_get_info(const gemma_model *m, gemma_model_info *out)
{
    if (!m || !out)
        return GEMMA_E_INVALID_ARG;
    gemma_model_info full = {.size = sizeof full}, *info = &full;
    const gm_hparams *hp = &m->hp;
    info->architecture = m->arch;
    info->name = m->name;
    info->size_label = m->size_label;
    info->n_layer = hp->n_layer;
    info->n_embd = hp->n_embd;
    info->n_head = hp->n_head;
    info->n_head_kv = hp->n_head_kv;
    info->head_dim = hp->head_dim;
    info->n_ff = hp->n_ff;
    info->n_ctx_train = hp->n_ctx_train;
    info->n_vocab = hp->n_vocab;
    info->sliding_window = hp->n_swa;
    for (int32_t il = 0; il < hp->n_layer; il++)
        info->n_swa_layers += m->layers[il].is_swa;
    info->n_params = m->n_params;
    info->weight_bytes = m->weight_bytes;
    info->has_chat_template = m->has_chat_template;
    return gm_abi_write(out, out->size, info, sizeof *info, GM_ABI_MIN(gemma_model_info, has_chat_template));
}
