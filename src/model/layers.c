#include "layers.h"

#include "kvcache.h"
#include "../util/util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- hyper-parameters ---- */

gemma_status gm_alloc_layers(gemma_model *m, gm_base_keys *k, gemma_error *err)
{
    const size_t L = k->n_layer;
    uint32_t *arr = gm_malloc_array(L * 3, sizeof *arr);
    m->layers = gm_calloc(L, sizeof *m->layers);
    if (!arr || !m->layers) {
        free(arr);
        return gm_fail(err, GEMMA_E_NOMEM, "out of memory reading the hyper-parameters");
    }
    k->n_ff = arr; /* the block's start, for gm_free_layer_keys */
    k->n_head = arr + L;
    k->n_head_kv = arr + 2 * L;
    return GEMMA_OK;
}

void gm_free_layer_keys(gm_base_keys *k)
{
    free(k->n_ff);
    k->n_ff = k->n_head = k->n_head_kv = NULL;
}

gemma_status gm_read_size_keys(const gguf_ctx *g, const char *arch, gm_base_keys *k, gemma_error *err)
{
    gemma_status st;
    if ((st = gm_key_u32(g, arch, "context_length", true, &k->n_ctx_train, err)) ||
        (st = gm_key_u32(g, arch, "embedding_length", true, &k->n_embd, err)) ||
        (st = gm_key_u32(g, arch, "block_count", true, &k->n_layer, err)) ||
        (st = gm_key_f32(g, arch, "attention.layer_norm_rms_epsilon", true, &k->eps, err)))
        return st;
    return GEMMA_OK;
}

static gemma_status check_rope_type(const gguf_ctx *g, const char *arch, gemma_error *err)
{
    char key[64];
    snprintf(key, sizeof key, "%s.rope.scaling.type", arch);
    gguf_str type;
    gemma_status st = gguf_get_str(g, key, &type, err);
    if (st == GEMMA_E_NOT_FOUND)
        return GEMMA_OK;
    if (st)
        return st;
    if (!(type.len == 6 && !memcmp(type.ptr, "linear", 6)) && !(type.len == 4 && !memcmp(type.ptr, "none", 4)))
        return gm_fail(err, GEMMA_E_UNSUPPORTED, "key '%s': only linear scaling is supported", key);
    return GEMMA_OK;
}

gemma_status gm_read_rope_keys(const gguf_ctx *g, const char *arch, gm_base_keys *k, gemma_error *err)
{
    k->base = 10000.0f;
    k->base_swa = 10000.0f;
    gemma_status st;
    if ((st = gm_key_f32(g, arch, "rope.freq_base", false, &k->base, err)) ||
        (st = gm_key_f32(g, arch, "rope.freq_base_swa", false, &k->base_swa, err)) ||
        (st = gm_key_f32(g, arch, "rope.scale_linear", false, &k->scale_factor, err)) ||
        (st = gm_key_f32(g, arch, "rope.scaling.factor", false, &k->scale_factor, err)) ||
        (st = gm_key_f32(g, arch, "final_logit_softcapping", false, &k->softcap, err)))
        return st;
    return check_rope_type(g, arch, err);
}

gemma_status gm_check_key_range(const char *arch, const char *key, uint32_t v, uint32_t lo, uint32_t hi,
                                gemma_error *err)
{
    if (v < lo || v > hi)
        return gm_fail(err, GEMMA_E_MODEL, "key '%s.%s' = %u is outside [%u, %u]", arch, key, v, lo, hi);
    return GEMMA_OK;
}

gemma_status gm_validate_base_keys(const char *arch, const gm_base_keys *k, gemma_error *err)
{
    gemma_status st;
    if ((st = gm_check_key_range(arch, "block_count", k->n_layer, 1, GM_MAX_LAYERS, err)) ||
        (st = gm_check_key_range(arch, "embedding_length", k->n_embd, 1, 1u << 16, err)) ||
        (st = gm_check_key_range(arch, "context_length", k->n_ctx_train, 1, 1u << 24, err)) ||
        (st = gm_check_key_range(arch, "attention.sliding_window", k->n_swa, 0, 1u << 24, err)))
        return st;
    if (!(k->eps > 0.0f && k->eps < 1.0f))
        return gm_fail(err, GEMMA_E_MODEL, "key '%s.attention.layer_norm_rms_epsilon' = %g is not in (0, 1)", arch,
                       (double)k->eps);
    if (!(k->base > 0.0f) || !(k->base_swa > 0.0f))
        return gm_fail(err, GEMMA_E_MODEL, "rope.freq_base / rope.freq_base_swa must be positive");
    if (k->scale_factor < 0.0f)
        return gm_fail(err, GEMMA_E_MODEL, "key '%s.rope.scaling.factor' is negative", arch);
    if (k->softcap < 0.0f)
        return gm_fail(err, GEMMA_E_MODEL, "key '%s.final_logit_softcapping' is negative", arch);
    return GEMMA_OK;
}

gemma_status gm_read_layer_keys(const gguf_ctx *g, const char *arch, gm_base_keys *k, gemma_error *err)
{
    gemma_status st;
    const uint32_t L = k->n_layer;
    if ((st = gm_key_u32_layers(g, arch, "attention.head_count", true, L, k->n_head, err)))
        return st;
    memcpy(k->n_head_kv, k->n_head, L * sizeof(uint32_t));
    if ((st = gm_key_u32_layers(g, arch, "attention.head_count_kv", false, L, k->n_head_kv, err)) ||
        (st = gm_key_u32_layers(g, arch, "feed_forward_length", true, L, k->n_ff, err)))
        return st;
    for (uint32_t il = 0; il < L; il++) {
        if (k->n_head[il] == 0 || k->n_head[il] > 1024 || k->n_head_kv[il] == 0 ||
            k->n_head[il] % k->n_head_kv[il])
            return gm_fail(err, GEMMA_E_MODEL, "layer %u: head_count %u / head_count_kv %u are invalid "
                           "(both in 1..1024, head_count a multiple of head_count_kv)",
                           il, k->n_head[il], k->n_head_kv[il]);
        if (k->n_ff[il] == 0 || k->n_ff[il] > (1u << 20))
            return gm_fail(err, GEMMA_E_MODEL, "layer %u: key '%s.feed_forward_length' = %u is invalid",
                           il, arch, k->n_ff[il]);
    }
    return GEMMA_OK;
}

void gm_set_hparams(gemma_model *m, const gm_base_keys *k)
{
    gm_hparams *hp = &m->hp;
    hp->n_layer = (int32_t)k->n_layer;
    hp->n_embd = (int32_t)k->n_embd;
    hp->n_ctx_train = (int32_t)k->n_ctx_train;
    hp->n_swa = (int32_t)k->n_swa;
    hp->rms_eps = k->eps;
    hp->final_softcap = k->softcap;
    hp->n_head = m->layers[0].n_head;
    hp->n_head_kv = m->layers[0].n_head_kv;
    hp->head_dim = m->layers[0].head_dim;
    hp->n_ff = m->layers[0].n_ff;
}

/* ---- shared tensors ---- */

gemma_status gm_bind_io(gemma_model *m, gm_io_weights *w, gemma_error *err)
{
    const gguf_tensor *te = gguf_find_tensor(m->file->ctx, "token_embd.weight");
    if (!te)
        return gm_fail(err, GEMMA_E_MODEL, "missing tensor 'token_embd.weight'");
    if (te->ne[1] < 1 || te->ne[1] > INT32_MAX)
        return gm_fail(err, GEMMA_E_MODEL, "tensor 'token_embd.weight': %lld rows is not a valid vocabulary size",
                       (long long)te->ne[1]);
    m->hp.n_vocab = (int32_t)te->ne[1];
    const int64_t E = m->hp.n_embd, V = m->hp.n_vocab;
    gemma_status st;
    if ((st = gm_bind_weight(m, "token_embd.weight", E, V, 0, &w->tok_embd, err)) ||
        (st = gm_bind_f32(m, "output_norm.weight", E, 0, &w->output_norm, err)) ||
        (st = gm_bind_weight(m, "output.weight", E, V, GM_BIND_OPTIONAL, &w->output, err)))
        return st;
    if (!w->output)
        w->output = w->tok_embd; /* tied LM head, the normal case */
    return GEMMA_OK;
}

gemma_status gm_bind_attn(gemma_model *m, int il, gm_attn_weights *a, unsigned kv_flags, unsigned v_flags,
                          gemma_error *err)
{
    const gm_layer_geom *g = &m->layers[il];
    const int64_t E = m->hp.n_embd, hd = g->head_dim, nq = hd * g->n_head, nkv = hd * g->n_head_kv;
    char n[96];
    if (gguf_find_tensor(m->file->ctx, gm_blk_name(n, sizeof n, il, "attn_qkv.weight")))
        return gm_fail(err, GEMMA_E_UNSUPPORTED, "tensor '%s': fused QKV projections are not supported", n);
    gemma_status st;
    if ((st = gm_bind_f32(m, gm_blk_name(n, sizeof n, il, "attn_norm.weight"), E, 0, &a->attn_norm, err)) ||
        (st = gm_bind_weight(m, gm_blk_name(n, sizeof n, il, "attn_q.weight"), E, nq, 0, &a->wq, err)) ||
        (st = gm_bind_weight(m, gm_blk_name(n, sizeof n, il, "attn_k.weight"), E, nkv, kv_flags, &a->wk, err)) ||
        (st = gm_bind_weight(m, gm_blk_name(n, sizeof n, il, "attn_v.weight"), E, nkv, v_flags, &a->wv, err)) ||
        (st = gm_bind_weight(m, gm_blk_name(n, sizeof n, il, "attn_output.weight"), nq, E, 0, &a->wo, err)) ||
        (st = gm_bind_f32(m, gm_blk_name(n, sizeof n, il, "attn_q_norm.weight"), hd, 0, &a->q_norm, err)) ||
        (st = gm_bind_f32(m, gm_blk_name(n, sizeof n, il, "attn_k_norm.weight"), hd, kv_flags, &a->k_norm, err)) ||
        (st = gm_bind_f32(m, gm_blk_name(n, sizeof n, il, "post_attention_norm.weight"), E, 0, &a->post_attn_norm,
                          err)))
        return st;
    return GEMMA_OK;
}

gemma_status gm_bind_ffn(gemma_model *m, int il, gm_ffn_weights *f, gemma_error *err)
{
    const int64_t E = m->hp.n_embd, F = m->layers[il].n_ff;
    char n[96];
    gemma_status st;
    if ((st = gm_bind_f32(m, gm_blk_name(n, sizeof n, il, "ffn_norm.weight"), E, 0, &f->ffn_norm, err)) ||
        (st = gm_bind_weight(m, gm_blk_name(n, sizeof n, il, "ffn_gate.weight"), E, F, 0, &f->gate, err)) ||
        (st = gm_bind_weight(m, gm_blk_name(n, sizeof n, il, "ffn_up.weight"), E, F, 0, &f->up, err)) ||
        (st = gm_bind_weight(m, gm_blk_name(n, sizeof n, il, "ffn_down.weight"), F, E, 0, &f->down, err)) ||
        (st = gm_bind_f32(m, gm_blk_name(n, sizeof n, il, "post_ffw_norm.weight"), E, 0, &f->post_ffw_norm, err)))
        return st;
    return GEMMA_OK;
}

/* ---- profile ---- */

#ifdef GM_PROFILE
static const char *const prof_names[GM_P_COUNT] = {
    "embedding", "attn norm", "q/k/v matmuls", "q/k norm+rope+kv store", "attention",
    "output projection", "post-attn norm+resid", "ffn norm", "ffn gate/up matmuls", "geglu",
    "ffn down matmul", "post-ffn norm+resid", "per-layer inputs", "output norm", "lm head", "softcap"};

/* Each mark charges the time since the previous mark to a slot; the totals print when the
 * scratch is freed. */
void gm_prof_mark(gm_scratch *s, int slot)
{
    const double t = gm_now();
    s->prof[s->prof_mode][slot] += t - s->prof_t;
    s->prof_t = t;
}

static void prof_begin(gm_scratch *s, int32_t n)
{
    s->prof_mode = n > 1;
    s->prof_calls[s->prof_mode]++;
    s->prof_t = gm_now();
}

static void prof_print(const gm_scratch *s)
{
    for (int mode = 0; mode < 2; mode++) {
        if (!s->prof_calls[mode])
            continue;
        double total = 0;
        for (int i = 0; i < GM_P_COUNT; i++)
            total += s->prof[mode][i];
        fprintf(stderr, "%s profile, %s: %lld calls, %.3f ms per call\n", s->prof_arch,
                mode ? "batches" : "decode steps", (long long)s->prof_calls[mode],
                total * 1e3 / (double)s->prof_calls[mode]);
        for (int i = 0; i < GM_P_COUNT; i++)
            if (s->prof[mode][i] > 0) /* slots this generation never marks */
                fprintf(stderr, "  %-22s %9.4f ms %6.2f %%\n", prof_names[i],
                        s->prof[mode][i] * 1e3 / (double)s->prof_calls[mode], 100.0 * s->prof[mode][i] / total);
    }
}
#endif

/* ---- scratch ---- */

typedef struct max_dims {
    int64_t qd, kvd, ff, hd, rot;
} max_dims;

/* The widest layer of each kind of buffer (K/V only for layers that compute their own). */
static max_dims widest(const gemma_model *m)
{
    max_dims d = {0};
    for (int32_t il = 0; il < m->hp.n_layer; il++) {
        const gm_layer_geom *g = &m->layers[il];
        d.qd = GM_MAX(d.qd, (int64_t)g->n_head * g->head_dim);
        if (g->kv_src == il)
            d.kvd = GM_MAX(d.kvd, (int64_t)g->n_head_kv * g->head_dim);
        d.ff = GM_MAX(d.ff, (int64_t)g->n_ff);
        d.hd = GM_MAX(d.hd, (int64_t)g->head_dim);
        d.rot = GM_MAX(d.rot, (int64_t)g->n_rot);
    }
    return d;
}

enum { N_SHARED_BUFS = 13, MAX_EXTRA_BUFS = 4 };

gemma_status gm_scratch_init(gm_scratch *s, const gemma_model *m, int32_t n_batch, int32_t n_ctx,
                             int32_t n_threads, const int64_t *extra_sizes, float **extra, int n_extra,
                             gemma_error *err)
{
    if (n_extra < 0 || n_extra > MAX_EXTRA_BUFS)
        return gm_fail(err, GEMMA_E_INTERNAL, "scratch: %d extra buffers", n_extra);
    const max_dims d = widest(m);
    const int64_t B = n_batch, E = m->hp.n_embd;
    /* Attention takes up to 32 queries at a time; fewer for long contexts, so that the
     * per-thread score rows stay near 4 MB. */
    const int64_t QB = GM_MAX(1, GM_MIN(GM_MIN(32, (int64_t)n_batch), ((int64_t)1 << 20) / n_ctx));
    const int64_t nw = (int64_t)n_threads * QB;
    /* Float counts of each buffer, each rounded up to 16 floats (64 bytes). */
    int64_t sizes[N_SHARED_BUFS + MAX_EXTRA_BUFS] = {
        B * E, B * E, B * d.qd, B * d.kvd, B * d.kvd, B * d.qd, B * E, B * d.ff, B * d.ff,
        GM_ROPE_SLOTS * B * d.rot, nw * n_ctx, nw * d.hd, nw * d.hd};
    const int nbuf = N_SHARED_BUFS + n_extra;
    uint64_t total = 0;
    for (int i = 0; i < nbuf; i++) {
        if (i >= N_SHARED_BUFS)
            sizes[i] = extra_sizes[i - N_SHARED_BUFS];
        total += ((uint64_t)sizes[i] + 15) / 16 * 16;
    }
    if (total > SIZE_MAX / 4 || !(s->block = gm_aligned_alloc((size_t)total * 4)))
        return gm_fail(err, GEMMA_E_NOMEM, "out of memory allocating %llu bytes of scratch",
                       (unsigned long long)total * 4);
    float *p = s->block, *bufs[N_SHARED_BUFS + MAX_EXTRA_BUFS];
    for (int i = 0; i < nbuf; i++) {
        bufs[i] = p;
        p += ((uint64_t)sizes[i] + 15) / 16 * 16;
    }
    s->x = bufs[0]; s->h = bufs[1]; s->q = bufs[2]; s->k = bufs[3]; s->v = bufs[4];
    s->att = bufs[5]; s->o = bufs[6]; s->gate = bufs[7]; s->up = bufs[8]; s->cs = bufs[9];
    s->scores = bufs[10]; s->qr = bufs[11]; s->attn_tmp = bufs[12];
    for (int i = 0; i < n_extra; i++)
        extra[i] = bufs[N_SHARED_BUFS + i];
    s->q_block = (int32_t)QB;
    s->rope_stride = B * d.rot;
    s->n_batch = n_batch;
    s->n_ctx = n_ctx;
#ifdef GM_PROFILE
    s->prof_arch = m->ops->name;
#endif
    return GEMMA_OK;
}

void gm_scratch_release(gm_scratch *s)
{
#ifdef GM_PROFILE
    if (s->block)
        prof_print(s);
#endif
    gm_aligned_free(s->block);
    s->block = NULL;
}

gemma_status gm_scratch_create(const gemma_model *m, int32_t n_batch, int32_t n_ctx, int32_t n_threads,
                               void **out, gemma_error *err)
{
    *out = NULL;
    gm_scratch *s = calloc(1, sizeof *s);
    if (!s)
        return gm_fail(err, GEMMA_E_NOMEM, "out of memory allocating the scratch");
    gemma_status st = gm_scratch_init(s, m, n_batch, n_ctx, n_threads, NULL, NULL, 0, err);
    if (st) {
        gm_scratch_free(s);
        return st;
    }
    *out = s;
    return GEMMA_OK;
}

void gm_scratch_free(void *scratch)
{
    gm_scratch *s = scratch;
    if (s)
        gm_scratch_release(s);
    free(s);
}

/* ---- row-wise work ---- */

typedef struct rows_job {
    gm_rows_fn fn;
    void *ctx;
    int32_t n;
} rows_job;

static void rows_task(void *p, int ith, int nth)
{
    const rows_job *j = p;
    j->fn(j->ctx, (int32_t)((int64_t)j->n * ith / nth), (int32_t)((int64_t)j->n * (ith + 1) / nth));
}

void gm_run_rows(gm_compute *c, int32_t n, gm_rows_fn fn, void *ctx)
{
    if (n >= 4 && gm_compute_threads(c) > 1) {
        rows_job j = {fn, ctx, n};
        gm_parallel(c, rows_task, &j);
    } else {
        fn(ctx, 0, n);
    }
}

typedef struct norm_job {
    const gm_kernels *kern;
    float *y, *acc;
    const float *x, *w;
    int64_t dim;
    float eps;
} norm_job;

static void norm_range(void *p, int32_t t0, int32_t t1)
{
    const norm_job *r = p;
    const size_t d = (size_t)r->dim;
    for (int32_t t = t0; t < t1; t++) {
        float *y = r->y + (size_t)t * d;
        gm_rmsnorm_k(r->kern, y, r->x + (size_t)t * d, r->w, r->dim, r->eps);
        if (r->acc) {
            float *a = r->acc + (size_t)t * d;
            for (size_t i = 0; i < d; i++)
                a[i] += y[i];
        }
    }
}

void gm_norm_rows(gm_compute *c, float *y, const float *x, const float *w, int32_t n, int64_t dim, float eps,
                  float *acc)
{
    norm_job r = {.kern = gm_compute_kernels(c), .y = y, .acc = acc, .x = x, .w = w, .dim = dim, .eps = eps};
    gm_run_rows(c, n, norm_range, &r);
}

typedef struct geglu_job {
    const gm_kernels *kern;
    float *y;
    const float *x;
    int64_t x_stride, dim;
    const uint16_t *tab;
} geglu_job;

static void geglu_range(void *p, int32_t t0, int32_t t1)
{
    const geglu_job *r = p;
    for (int32_t t = t0; t < t1; t++) {
        float *y = r->y + (size_t)t * (size_t)r->dim;
        gm_geglu_k(r->kern, y, y, r->x + (size_t)t * (size_t)r->x_stride, r->dim, r->tab);
    }
}

void gm_geglu_rows(gm_compute *c, float *y, const float *x, int64_t x_stride, int32_t n, int64_t dim,
                   const uint16_t *tab)
{
    geglu_job r = {.kern = gm_compute_kernels(c), .y = y, .x = x, .x_stride = x_stride, .dim = dim, .tab = tab};
    gm_run_rows(c, n, geglu_range, &r);
}

/* ---- forward-pass steps ---- */

gemma_status gm_forward_begin(const gemma_model *m, const gm_io_weights *w, gm_exec *ex, const gm_batch *b,
                              gemma_error *err)
{
    gm_scratch *s = ex->scratch;
    const int32_t n = b->n, E = m->hp.n_embd;
    if (n < 1 || n > s->n_batch || (b->pos && (n > GM_DECODE_MAX || !b->kvs)))
        return gm_fail(err, GEMMA_E_INTERNAL, "forward: batch of %d rows does not fit", (int)n);
    for (int32_t t = 0; t < n; t++) {
        const int32_t p = gm_batch_pos(b, t), cap = b->kvs ? b->kvs[t]->n_ctx : s->n_ctx;
        if (p < 0 || p >= cap || p >= s->n_ctx)
            return gm_fail(err, GEMMA_E_INTERNAL, "forward: row %d at position %d does not fit", (int)t, (int)p);
    }
#ifdef GM_PROFILE
    prof_begin(s, n);
#endif
    const float scale = sqrtf((float)E);
    for (int32_t t = 0; t < n; t++) {
        const gemma_token id = b->tokens[t];
        if (id < 0 || id >= m->hp.n_vocab)
            return gm_fail(err, GEMMA_E_INVALID_ARG, "token id %d is outside the vocabulary (0..%d)",
                           (int)id, (int)m->hp.n_vocab - 1);
        float *x = s->x + (size_t)t * (size_t)E;
        gm_tensor_get_row(w->tok_embd, id, x);
        for (int32_t i = 0; i < E; i++)
            x[i] *= scale;
    }
    GM_PROF(s, EMBED);
    for (int i = 0; i < GM_ROPE_SLOTS; i++)
        s->rope[i].valid = false;
    return GEMMA_OK;
}

gemma_status gm_check_cancel(const gm_exec *ex, gemma_error *err)
{
    if (ex->cancel && atomic_load_explicit(ex->cancel, memory_order_relaxed))
        return gm_fail(err, GEMMA_E_CANCELLED, "evaluation cancelled");
    return GEMMA_OK;
}

const float *gm_rope_table(gm_scratch *s, const gm_layer_geom *g, const gm_batch *b)
{
    for (int i = 0; i < GM_ROPE_SLOTS; i++) {
        const gm_rope_slot *r = &s->rope[i];
        if (r->valid && r->base == g->rope_base && r->freq_scale == g->rope_freq_scale &&
            r->factors == g->rope_freq_factors && r->n_rot == g->n_rot)
            return s->cs + (size_t)i * (size_t)s->rope_stride;
    }
    const int i = s->rope_next;
    s->rope_next = (i + 1) % GM_ROPE_SLOTS;
    s->rope[i] = (gm_rope_slot){g->rope_base, g->rope_freq_scale, g->rope_freq_factors, g->n_rot, true};
    float *cs = s->cs + (size_t)i * (size_t)s->rope_stride;
    for (int32_t t = 0; t < b->n; t++)
        gm_rope_cache(cs + (size_t)t * (size_t)g->n_rot, gm_batch_pos(b, t), g->n_rot, g->rope_base,
                      g->rope_freq_scale, g->rope_freq_factors);
    return cs;
}

/* ---- attention block ---- */

/* What prepare_rows works on: the raw projections in s->q, s->k, s->v of one layer. */
typedef struct qkv_job {
    const gemma_model *m;
    const gm_kernels *kern;
    const gm_attn_weights *a;
    const gm_layer_geom *g;
    gm_scratch *s;
    gm_kvcache *kv;
    const gm_batch *b;
    int32_t il;
    const float *cs; /* the batch's RoPE table, n_rot floats per token */
} qkv_job;

/* Q norm, RoPE and scale of token t; for a layer with its own cache also V's norm (from the
 * raw K when there is no attn_v), K's norm and RoPE, and the cache write. */
static void prepare_token(const qkv_job *r, int32_t t)
{
    const gm_layer_geom *g = r->g;
    const int32_t hd = g->head_dim;
    const float eps = r->m->hp.rms_eps;
    const float *cs = r->cs + (size_t)t * (size_t)g->n_rot;
    const size_t qd = (size_t)g->n_head * (size_t)hd, kvd = (size_t)g->n_head_kv * (size_t)hd;
    float *q = r->s->q + (size_t)t * qd;
    gm_norm_heads(r->kern, q, q, r->a->q_norm, g->n_head, hd, eps);
    gm_rope_neox(q, g->n_head, hd, g->n_rot, cs);
    if (g->attn_scale != 1.0f)
        for (size_t i = 0; i < qd; i++)
            q[i] *= g->attn_scale;
    if (g->kv_src != r->il)
        return;
    float *k = r->s->k + (size_t)t * kvd, *v = r->s->v + (size_t)t * kvd;
    /* before K is normed in place: it may be V's source */
    if (g->v_norm)
        gm_norm_heads(r->kern, v, r->a->wv ? v : k, NULL, g->n_head_kv, hd, eps);
    gm_norm_heads(r->kern, k, k, r->a->k_norm, g->n_head_kv, hd, eps);
    gm_rope_neox(k, g->n_head_kv, hd, g->n_rot, cs);
    gm_kvcache_store(r->b->kvs ? r->b->kvs[t] : r->kv, r->il, gm_batch_pos(r->b, t), k, v);
}

static void prepare_rows(void *p, int32_t t0, int32_t t1)
{
    for (int32_t t = t0; t < t1; t++)
        prepare_token(p, t);
}

/* The attention of rows [t, t + n_tok) at positions from pos0 over cache kv. */
static gm_attn attn_rows(const gemma_model *m, const gm_layer_geom *g, gm_exec *ex, const gm_kvcache *kv,
                         int32_t t, int32_t n_tok, int32_t pos0)
{
    gm_scratch *s = ex->scratch;
    const gm_kv_layer *kl = &kv->layer[g->kv_src];
    const size_t qd = (size_t)g->n_head * (size_t)g->head_dim;
    return (gm_attn){
        .q = s->q + (size_t)t * qd, .q_stride = qd, .out = s->att + (size_t)t * qd, .out_stride = qd,
        .n_tok = n_tok, .pos0 = pos0, .n_head = g->n_head, .n_head_kv = g->n_head_kv, .head_dim = g->head_dim,
        .n_swa = g->is_swa ? m->hp.n_swa : 0, .k = kl->k, .vt = kl->vt, .cells = kl->cells,
        .q_block = s->q_block, .scores = s->scores, .qr = s->qr, .tmp = s->attn_tmp,
        .max_keys = s->n_ctx, .kern = gm_compute_kernels(ex->c),
    };
}

/* att = attention of the batch's queries over the cache of layer g->kv_src, with the window
 * when g is local; in a batched decode step each row over its own session's cache. */
static void attention(const gemma_model *m, const gm_layer_geom *g, gm_exec *ex, const gm_batch *b)
{
    if (!b->kvs) {
        gm_attn a = attn_rows(m, g, ex, ex->kv, 0, b->n, b->pos0);
        gm_parallel(ex->c, gm_attn_task, &a);
        return;
    }
    gm_attn rows[GM_DECODE_MAX];
    for (int32_t t = 0; t < b->n; t++)
        rows[t] = attn_rows(m, g, ex, b->kvs[t], t, 1, b->pos[t]);
    gm_attn_set set = {rows, b->n};
    gm_parallel(ex->c, gm_attn_set_task, &set);
}

gemma_status gm_attn_block(const gemma_model *m, const gm_attn_weights *a, int32_t il, gm_exec *ex,
                           const gm_batch *b)
{
    const gm_layer_geom *g = &m->layers[il];
    gm_scratch *s = ex->scratch;
    gemma_status st;
    gm_norm_rows(ex->c, s->h, s->x, a->attn_norm, b->n, m->hp.n_embd, m->hp.rms_eps, NULL);
    GM_PROF(s, ATTN_NORM);
    /* A KV-shared layer only projects Q; without attn_v the K projection doubles as V. */
    const int n_proj = g->kv_src == il ? (a->wv ? 3 : 2) : 1;
    const gm_tensor *const wqkv[3] = {a->wq, a->wk, a->wv};
    float *const yqkv[3] = {s->q, s->k, s->v};
    if ((st = gm_matmul_multi(ex->c, wqkv, n_proj, s->h, b->n, yqkv)))
        return st;
    GM_PROF(s, QKV);
    qkv_job job = {.m = m, .kern = gm_compute_kernels(ex->c), .a = a, .g = g, .s = s, .kv = ex->kv, .il = il,
                   .b = b, .cs = gm_rope_table(s, g, b)};
    gm_run_rows(ex->c, b->n, prepare_rows, &job);
    GM_PROF(s, QK_ROPE);
    attention(m, g, ex, b);
    GM_PROF(s, ATTN);
    if ((st = gm_matmul(ex->c, a->wo, s->att, b->n, s->o)))
        return st;
    GM_PROF(s, WO);
    gm_norm_rows(ex->c, s->o, s->o, a->post_attn_norm, b->n, m->hp.n_embd, m->hp.rms_eps, s->x);
    GM_PROF(s, POST_ATTN);
    return GEMMA_OK;
}

gemma_status gm_ffn_block(const gemma_model *m, const gm_ffn_weights *f, int32_t il, gm_exec *ex,
                          const gm_batch *b)
{
    gm_scratch *s = ex->scratch;
    const int32_t n = b->n, E = m->hp.n_embd;
    const int64_t F = m->layers[il].n_ff;
    gemma_status st;
    gm_norm_rows(ex->c, s->h, s->x, f->ffn_norm, n, E, m->hp.rms_eps, NULL);
    GM_PROF(s, FFN_NORM);
    const gm_tensor *const wgu[2] = {f->gate, f->up};
    float *const ygu[2] = {s->gate, s->up};
    if ((st = gm_matmul_multi(ex->c, wgu, 2, s->h, n, ygu)))
        return st;
    GM_PROF(s, GATE_UP);
    gm_geglu_rows(ex->c, s->gate, s->up, F, n, F, m->gelu_f16);
    GM_PROF(s, GEGLU);
    if ((st = gm_matmul(ex->c, f->down, s->gate, n, s->o)))
        return st;
    GM_PROF(s, DOWN);
    gm_norm_rows(ex->c, s->o, s->o, f->post_ffw_norm, n, E, m->hp.rms_eps, s->x);
    GM_PROF(s, POST_FFN);
    return GEMMA_OK;
}

gemma_status gm_output_head(const gemma_model *m, const gm_io_weights *w, gm_exec *ex, const gm_batch *b,
                            gemma_error *err)
{
    gm_scratch *s = ex->scratch;
    const int32_t E = m->hp.n_embd, first = b->logits_all ? 0 : b->n - 1, n_out = b->n - first;
    gm_norm_rows(ex->c, s->h, s->x + (size_t)first * (size_t)E, w->output_norm, n_out, E, m->hp.rms_eps, NULL);
    GM_PROF(s, OUT_NORM);
    gemma_status st = gm_matmul(ex->c, w->output, s->h, n_out, b->logits);
    if (st)
        return gm_fail(err, st, "output projection: %s", gemma_strerror(st));
    GM_PROF(s, LM_HEAD);
    if (m->hp.final_softcap > 0.0f)
        gm_softcap(b->logits, (int64_t)n_out * m->hp.n_vocab, m->hp.final_softcap);
    GM_PROF(s, SOFTCAP);
    return GEMMA_OK;
}
