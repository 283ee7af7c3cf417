/* Gemma 3 (general.architecture = "gemma3"): hyper-parameters, tensor binding and the
 * forward pass of docs: gemma-spec.md section 3. */
#include "arch.h"
#include "ops.h"
#include "../runtime/kvcache.h"
#include "../util/util.h"

#include <math.h>
#include <stdlib.h>

#define ARCH "gemma3"

typedef struct g3_layer {
    const float *attn_norm, *q_norm, *k_norm, *post_attn_norm, *ffn_norm, *post_ffw_norm;
    const gm_tensor *wq, *wk, *wv, *wo, *gate, *up, *down;
} g3_layer;

typedef struct g3_weights {
    const gm_tensor *tok_embd;
    const gm_tensor *output; /* token_embd when tied */
    const float *output_norm;
    g3_layer *layer;
} g3_weights;

/* ---- hyper-parameters ---- */

typedef struct g3_keys {
    uint32_t n_ctx_train, n_embd, n_layer;
    uint32_t *n_ff, *n_head, *n_head_kv; /* per layer */
    uint32_t key_len, val_len, n_rot, n_swa, swa_period;
    float eps, base, base_swa, scale_factor, softcap;
} g3_keys;

static gemma_status read_scalars(const gguf_ctx *g, g3_keys *k, gemma_error *err)
{
    gemma_status st;
    if ((st = gm_key_u32(g, ARCH, "context_length", true, &k->n_ctx_train, err)) ||
        (st = gm_key_u32(g, ARCH, "embedding_length", true, &k->n_embd, err)) ||
        (st = gm_key_u32(g, ARCH, "block_count", true, &k->n_layer, err)) ||
        (st = gm_key_f32(g, ARCH, "attention.layer_norm_rms_epsilon", true, &k->eps, err)))
        return st;
    k->base = 10000.0f;
    k->base_swa = 10000.0f;
    k->swa_period = 6;
    if ((st = gm_key_f32(g, ARCH, "rope.freq_base", false, &k->base, err)) ||
        (st = gm_key_f32(g, ARCH, "rope.freq_base_swa", false, &k->base_swa, err)) ||
        (st = gm_key_f32(g, ARCH, "rope.scale_linear", false, &k->scale_factor, err)) ||
        (st = gm_key_f32(g, ARCH, "rope.scaling.factor", false, &k->scale_factor, err)) ||
        (st = gm_key_u32(g, ARCH, "attention.sliding_window", false, &k->n_swa, err)) ||
        (st = gm_key_f32(g, ARCH, "final_logit_softcapping", false, &k->softcap, err)))
        return st;
    /* llama.cpp reads the period only as a scalar; an array is ignored (period stays 6). */
    const gguf_kv *pat = gguf_find(g, ARCH ".attention.sliding_window_pattern");
    if (pat && pat->type != GGUF_T_ARRAY &&
        (st = gm_key_u32(g, ARCH, "attention.sliding_window_pattern", false, &k->swa_period, err)))
        return st;
    gguf_str type;
    st = gguf_get_str(g, ARCH ".rope.scaling.type", &type, err);
    if (st == GEMMA_OK && !(type.len == 6 && !memcmp(type.ptr, "linear", 6)) &&
        !(type.len == 4 && !memcmp(type.ptr, "none", 4)))
        return gm_fail(err, GEMMA_E_UNSUPPORTED, "key '" ARCH ".rope.scaling.type': only linear scaling is supported");
    if (st != GEMMA_OK && st != GEMMA_E_NOT_FOUND)
        return st;
    return GEMMA_OK;
}

static gemma_status check_range(const char *key, uint32_t v, uint32_t lo, uint32_t hi, gemma_error *err)
{
    if (v < lo || v > hi)
        return gm_fail(err, GEMMA_E_MODEL, "key '" ARCH ".%s' = %u is outside [%u, %u]", key, v, lo, hi);
    return GEMMA_OK;
}

static gemma_status read_layers(const gguf_ctx *g, g3_keys *k, gemma_error *err)
{
    gemma_status st;
    const uint32_t L = k->n_layer;
    if ((st = gm_key_u32_layers(g, ARCH, "attention.head_count", true, L, k->n_head, err)))
        return st;
    memcpy(k->n_head_kv, k->n_head, L * sizeof(uint32_t));
    if ((st = gm_key_u32_layers(g, ARCH, "attention.head_count_kv", false, L, k->n_head_kv, err)) ||
        (st = gm_key_u32_layers(g, ARCH, "feed_forward_length", true, L, k->n_ff, err)))
        return st;
    for (uint32_t il = 0; il < L; il++) {
        if (k->n_head[il] == 0 || k->n_head[il] > 1024 || k->n_head_kv[il] == 0 ||
            k->n_head[il] % k->n_head_kv[il])
            return gm_fail(err, GEMMA_E_MODEL, "layer %u: head_count %u / head_count_kv %u are invalid "
                           "(both in 1..1024, head_count a multiple of head_count_kv)",
                           il, k->n_head[il], k->n_head_kv[il]);
        if (k->n_ff[il] == 0 || k->n_ff[il] > (1u << 20))
            return gm_fail(err, GEMMA_E_MODEL, "layer %u: key '" ARCH ".feed_forward_length' = %u is invalid",
                           il, k->n_ff[il]);
    }
    k->key_len = k->n_embd / k->n_head[0];
    if ((st = gm_key_u32(g, ARCH, "attention.key_length", false, &k->key_len, err)))
        return st;
    k->val_len = k->key_len;
    if ((st = gm_key_u32(g, ARCH, "attention.value_length", false, &k->val_len, err)))
        return st;
    if (k->key_len != k->val_len)
        return gm_fail(err, GEMMA_E_MODEL, "key_length %u differs from value_length %u", k->key_len, k->val_len);
    if ((st = check_range("attention.key_length", k->key_len, 2, 1024, err)))
        return st;
    if (k->key_len % 2)
        return gm_fail(err, GEMMA_E_MODEL, "key '" ARCH ".attention.key_length' = %u must be even", k->key_len);
    k->n_rot = k->key_len;
    if ((st = gm_key_u32(g, ARCH, "rope.dimension_count", false, &k->n_rot, err)))
        return st;
    if (k->n_rot == 0 || k->n_rot > k->key_len || k->n_rot % 2)
        return gm_fail(err, GEMMA_E_MODEL, "key '" ARCH ".rope.dimension_count' = %u must be even and in 2..%u",
                       k->n_rot, k->key_len);
    return GEMMA_OK;
}

static gemma_status validate_scalars(const g3_keys *k, gemma_error *err)
{
    gemma_status st;
    if ((st = check_range("block_count", k->n_layer, 1, GM_MAX_LAYERS, err)) ||
        (st = check_range("embedding_length", k->n_embd, 1, 1u << 16, err)) ||
        (st = check_range("context_length", k->n_ctx_train, 1, 1u << 24, err)))
        return st;
    if (!(k->eps > 0.0f && k->eps < 1.0f))
        return gm_fail(err, GEMMA_E_MODEL, "key '" ARCH ".attention.layer_norm_rms_epsilon' = %g is not in (0, 1)",
                       (double)k->eps);
    if (!(k->base > 0.0f) || !(k->base_swa > 0.0f))
        return gm_fail(err, GEMMA_E_MODEL, "rope.freq_base / rope.freq_base_swa must be positive");
    if (k->scale_factor < 0.0f)
        return gm_fail(err, GEMMA_E_MODEL, "key '" ARCH ".rope.scaling.factor' is negative");
    if (k->softcap < 0.0f)
        return gm_fail(err, GEMMA_E_MODEL, "key '" ARCH ".final_logit_softcapping' is negative");
    if (k->n_swa > (1u << 24))
        return gm_fail(err, GEMMA_E_MODEL, "key '" ARCH ".attention.sliding_window' = %u is too large", k->n_swa);
    return GEMMA_OK;
}

/* Per-layer geometry from the keys (spec 3.3). */
static void build_geometry(gemma_model *m, const g3_keys *k)
{
    const float fs_glob = k->scale_factor > 0.0f ? 1.0f / k->scale_factor : 1.0f;
    const uint32_t P = k->swa_period;
    for (uint32_t il = 0; il < k->n_layer; il++) {
        gm_layer_geom *g = &m->layers[il];
        g->is_swa = k->n_swa > 0 && (P == 0 || il % P < P - 1);
        g->n_head = (int32_t)k->n_head[il];
        g->n_head_kv = (int32_t)k->n_head_kv[il];
        g->head_dim = (int32_t)k->key_len;
        g->n_ff = (int32_t)k->n_ff[il];
        g->n_rot = (int32_t)k->n_rot;
        g->rope_base = g->is_swa ? k->base_swa : k->base;
        g->rope_freq_scale = g->is_swa ? 1.0f : fs_glob;
        g->rope_freq_factors = NULL;
        /* llama.cpp hard-codes the 27B (62-layer) scale from n_embd/n_head (integer division). */
        g->attn_scale = k->n_layer == 62
                            ? 1.0f / sqrtf((float)(k->n_embd / k->n_head[0]))
                            : 1.0f / sqrtf((float)k->key_len);
        g->kv_src = (int32_t)il;
    }
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

/* ---- tensors ---- */

static gemma_status bind_layer(gemma_model *m, int il, g3_layer *L, gemma_error *err)
{
    const gm_layer_geom *g = &m->layers[il];
    const int64_t E = m->hp.n_embd, hd = g->head_dim;
    const int64_t nq = hd * g->n_head, nkv = hd * g->n_head_kv, F = g->n_ff;
    char n[96];
    if (gguf_find_tensor(m->file->ctx, gm_blk_name(n, sizeof n, il, "attn_qkv.weight")))
        return gm_fail(err, GEMMA_E_UNSUPPORTED, "tensor '%s': fused QKV projections are not supported", n);
    gemma_status st;
#define W(field, suffix, a, b) \
    if ((st = gm_bind_weight(m, gm_blk_name(n, sizeof n, il, suffix), a, b, 0, &L->field, err))) return st
#define N(field, suffix, len) \
    if ((st = gm_bind_f32(m, gm_blk_name(n, sizeof n, il, suffix), len, 0, &L->field, err))) return st
    N(attn_norm, "attn_norm.weight", E);
    W(wq, "attn_q.weight", E, nq);
    W(wk, "attn_k.weight", E, nkv);
    W(wv, "attn_v.weight", E, nkv);
    W(wo, "attn_output.weight", nq, E);
    N(q_norm, "attn_q_norm.weight", hd);
    N(k_norm, "attn_k_norm.weight", hd);
    N(post_attn_norm, "post_attention_norm.weight", E);
    N(ffn_norm, "ffn_norm.weight", E);
    W(gate, "ffn_gate.weight", E, F);
    W(up, "ffn_up.weight", E, F);
    W(down, "ffn_down.weight", F, E);
    N(post_ffw_norm, "post_ffw_norm.weight", E);
#undef W
#undef N
    return GEMMA_OK;
}

static gemma_status bind_all(gemma_model *m, g3_weights *w, gemma_error *err)
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
    for (int il = 0; il < m->hp.n_layer; il++)
        if ((st = bind_layer(m, il, &w->layer[il], err)))
            return st;
    return GEMMA_OK;
}

static void g3_free_data(void *data)
{
    g3_weights *w = data;
    if (w)
        free(w->layer);
    free(w);
}

static gemma_status g3_load(gemma_model *m, gemma_error *err)
{
    const gguf_ctx *g = m->file->ctx;
    g3_keys k = {0};
    gemma_status st = read_scalars(g, &k, err);
    if (!st)
        st = validate_scalars(&k, err);
    if (st)
        return st;
    uint32_t *arr = gm_malloc_array((size_t)k.n_layer * 3, sizeof *arr);
    m->layers = gm_calloc(k.n_layer, sizeof *m->layers);
    g3_weights *w = calloc(1, sizeof *w);
    if (w)
        w->layer = gm_calloc(k.n_layer, sizeof *w->layer);
    m->arch_data = w;
    if (!arr || !m->layers || !w || !w->layer) {
        free(arr);
        return gm_fail(err, GEMMA_E_NOMEM, "out of memory reading the hyper-parameters");
    }
    k.n_ff = arr;
    k.n_head = arr + k.n_layer;
    k.n_head_kv = arr + 2 * (size_t)k.n_layer;
    st = read_layers(g, &k, err);
    if (!st)
        build_geometry(m, &k);
    free(arr);
    if (!st)
        st = bind_all(m, w, err);
    return st;
}

/* ---- forward pass ---- */

#ifdef GM_PROFILE
#include <stdio.h>
enum { G3_P_EMBED, G3_P_ATTN_NORM, G3_P_QKV, G3_P_QK_ROPE, G3_P_ATTN, G3_P_WO, G3_P_POST_ATTN,
       G3_P_FFN_NORM, G3_P_GATE_UP, G3_P_GEGLU, G3_P_DOWN, G3_P_POST_FFN, G3_P_OUT_NORM, G3_P_LM_HEAD,
       G3_P_SOFTCAP, G3_P_COUNT };
static const char *const g3_prof_names[G3_P_COUNT] = {
    "embedding", "attn norm", "q/k/v matmuls", "q/k norm+rope+kv store", "attention",
    "output projection", "post-attn norm+resid", "ffn norm", "ffn gate/up matmuls", "geglu",
    "ffn down matmul", "post-ffn norm+resid", "output norm", "lm head", "softcap"};
#endif

/* RoPE tables of one forward pass, one per distinct (base, scale) (local and global layers),
 * so cos/sin are computed twice per token rather than once per layer. */
#define G3_ROPE_SLOTS 2

typedef struct g3_rope_slot {
    float base, freq_scale;
    const float *factors;
    bool valid;
} g3_rope_slot;

typedef struct g3_scratch {
    int32_t n_batch, n_ctx, nth, q_block, rope_next;
    int64_t rope_stride; /* floats per rope table */
    float *x, *h, *q, *k, *v, *att, *o, *gate, *up, *cs, *attn_tmp;
    float *scores, *qr;
    g3_rope_slot rope[G3_ROPE_SLOTS];
    void *block;
#ifdef GM_PROFILE
    double prof_t, prof[2][G3_P_COUNT]; /* [decode, batch][slot] seconds */
    int64_t prof_calls[2];
    int prof_mode;
#endif
} g3_scratch;

#ifdef GM_PROFILE
/* Per-operation wall times, compiled in only with -DGM_PROFILE (docs/profile.md): each mark
 * charges the time since the previous mark to a slot; the totals print when the scratch is
 * freed. */
static void prof_mark(g3_scratch *s, int slot)
{
    const double t = gm_now();
    s->prof[s->prof_mode][slot] += t - s->prof_t;
    s->prof_t = t;
}

static void prof_begin(g3_scratch *s, int32_t n)
{
    s->prof_mode = n > 1;
    s->prof_calls[s->prof_mode]++;
    s->prof_t = gm_now();
}

static void prof_print(const g3_scratch *s)
{
    for (int mode = 0; mode < 2; mode++) {
        if (!s->prof_calls[mode])
            continue;
        double total = 0;
        for (int i = 0; i < G3_P_COUNT; i++)
            total += s->prof[mode][i];
        fprintf(stderr, "gemma3 profile, %s: %lld calls, %.3f ms per call\n", mode ? "batches" : "decode steps",
                (long long)s->prof_calls[mode], total * 1e3 / (double)s->prof_calls[mode]);
        for (int i = 0; i < G3_P_COUNT; i++)
            fprintf(stderr, "  %-22s %9.4f ms %6.2f %%\n", g3_prof_names[i],
                    s->prof[mode][i] * 1e3 / (double)s->prof_calls[mode], 100.0 * s->prof[mode][i] / total);
    }
}
#define PROF(s, slot) prof_mark(s, G3_P_##slot)
#else
#define PROF(s, slot) ((void)0)
#endif

static void g3_scratch_free(void *p)
{
    g3_scratch *s = p;
#ifdef GM_PROFILE
    if (s)
        prof_print(s);
#endif
    if (s)
        gm_aligned_free(s->block);
    free(s);
}

static gemma_status g3_scratch_create(const gemma_model *m, int32_t n_batch, int32_t n_ctx,
                                      int32_t n_threads, void **out, gemma_error *err)
{
    *out = NULL;
    int64_t qd = 0, kvd = 0, ff = 0, hd = 0;
    for (int32_t il = 0; il < m->hp.n_layer; il++) {
        const gm_layer_geom *g = &m->layers[il];
        qd = GM_MAX(qd, (int64_t)g->n_head * g->head_dim);
        kvd = GM_MAX(kvd, (int64_t)g->n_head_kv * g->head_dim);
        ff = GM_MAX(ff, (int64_t)g->n_ff);
        hd = GM_MAX(hd, (int64_t)g->head_dim);
    }
    const int64_t B = n_batch, E = m->hp.n_embd;
    /* Attention takes up to 32 queries at a time; fewer for long contexts, so that the
     * per-thread score rows stay near 4 MB. */
    const int64_t QB = GM_MAX(1, GM_MIN(GM_MIN(32, (int64_t)n_batch), ((int64_t)1 << 20) / n_ctx));
    const int64_t nw = (int64_t)n_threads * QB;
    /* Float counts of each buffer, each rounded up to 16 floats (64 bytes). */
    const int64_t sizes[] = {B * E, B * E, B * qd, B * kvd, B * kvd, B * qd, B * E, B * ff, B * ff,
                             G3_ROPE_SLOTS * B * hd, nw * n_ctx, nw * hd, nw * hd};
    enum { NBUF = sizeof sizes / sizeof sizes[0] };
    uint64_t total = 0;
    for (int i = 0; i < NBUF; i++)
        total += ((uint64_t)sizes[i] + 15) / 16 * 16;
    g3_scratch *s = calloc(1, sizeof *s);
    if (!s || total > SIZE_MAX / 4 || !(s->block = gm_aligned_alloc((size_t)total * 4))) {
        g3_scratch_free(s);
        return gm_fail(err, GEMMA_E_NOMEM, "out of memory allocating %llu bytes of scratch",
                       (unsigned long long)total * 4);
    }
    float *p = s->block, *bufs[NBUF];
    for (int i = 0; i < NBUF; i++) {
        bufs[i] = p;
        p += ((uint64_t)sizes[i] + 15) / 16 * 16;
    }
    s->x = bufs[0]; s->h = bufs[1]; s->q = bufs[2]; s->k = bufs[3]; s->v = bufs[4];
    s->att = bufs[5]; s->o = bufs[6]; s->gate = bufs[7]; s->up = bufs[8]; s->cs = bufs[9];
    s->scores = bufs[10];
    s->qr = bufs[11];
    s->attn_tmp = bufs[12];
    s->q_block = (int32_t)QB;
    s->rope_stride = B * hd;
    s->n_batch = n_batch;
    s->n_ctx = n_ctx;
    s->nth = n_threads;
    *out = s;
    return GEMMA_OK;
}

/* The RoPE table (cos, sin pairs of every token of the batch) for this layer's frequencies:
 * computed by the first layer that uses them in this forward pass. */
static const float *rope_table(g3_scratch *s, const gm_layer_geom *g, const gm_batch *b)
{
    for (int i = 0; i < G3_ROPE_SLOTS; i++) {
        const g3_rope_slot *r = &s->rope[i];
        if (r->valid && r->base == g->rope_base && r->freq_scale == g->rope_freq_scale &&
            r->factors == g->rope_freq_factors)
            return s->cs + (size_t)i * (size_t)s->rope_stride;
    }
    const int i = s->rope_next;
    s->rope_next = (i + 1) % G3_ROPE_SLOTS;
    s->rope[i] = (g3_rope_slot){g->rope_base, g->rope_freq_scale, g->rope_freq_factors, true};
    float *cs = s->cs + (size_t)i * (size_t)s->rope_stride;
    for (int32_t t = 0; t < b->n; t++)
        gm_rope_cache(cs + (size_t)t * (size_t)g->n_rot, b->pos0 + t, g->n_rot, g->rope_base,
                      g->rope_freq_scale, g->rope_freq_factors);
    return cs;
}

/* Q/K norms, RoPE (cs: this token's table), Q scaling and the cache write of one token. */
static void qk_token(const gemma_model *m, const gm_kernels *kern, const g3_layer *L, const gm_layer_geom *g,
                     g3_scratch *s, gm_kvcache *kv, int32_t il, int32_t t, int32_t pos, const float *cs)
{
    const int32_t hd = g->head_dim;
    const size_t qd = (size_t)g->n_head * (size_t)hd, kvd = (size_t)g->n_head_kv * (size_t)hd;
    float *q = s->q + (size_t)t * qd, *k = s->k + (size_t)t * kvd, *v = s->v + (size_t)t * kvd;
    for (int32_t h = 0; h < g->n_head; h++)
        gm_rmsnorm_k(kern, q + (size_t)h * (size_t)hd, q + (size_t)h * (size_t)hd, L->q_norm, hd, m->hp.rms_eps);
    for (int32_t h = 0; h < g->n_head_kv; h++)
        gm_rmsnorm_k(kern, k + (size_t)h * (size_t)hd, k + (size_t)h * (size_t)hd, L->k_norm, hd, m->hp.rms_eps);
    gm_rope_neox(q, g->n_head, hd, g->n_rot, cs);
    gm_rope_neox(k, g->n_head_kv, hd, g->n_rot, cs);
    for (size_t i = 0; i < qd; i++)
        q[i] *= g->attn_scale;
    gm_kvcache_store(kv, il, pos, k, v);
}

/* Row-wise work of a batch, split over the pool's threads by token for prompts (a decode
 * step's rows are too small to be worth waking the pool). */
typedef enum { ROWS_NORM, ROWS_NORM_ADD, ROWS_QK, ROWS_GEGLU } rows_kind;

typedef struct rows_task {
    rows_kind kind;
    int32_t n;
    const gm_kernels *kern;
    /* NORM: y = rmsnorm(x) * w; NORM_ADD: also acc += y; GEGLU: y = gelu(y) * x (tab) */
    float *y, *acc;
    const float *x, *w;
    int64_t dim;
    float eps;
    const uint16_t *tab;
    /* QK */
    const gemma_model *m;
    const g3_layer *L;
    const gm_layer_geom *g;
    g3_scratch *s;
    gm_kvcache *kv;
    int32_t il, pos0;
    const float *cs;
} rows_task;

static void rows_range(const rows_task *r, int32_t t0, int32_t t1)
{
    const size_t d = (size_t)r->dim;
    switch (r->kind) {
    case ROWS_NORM:
    case ROWS_NORM_ADD:
        for (int32_t t = t0; t < t1; t++) {
            float *y = r->y + (size_t)t * d;
            gm_rmsnorm_k(r->kern, y, r->x + (size_t)t * d, r->w, r->dim, r->eps);
            if (r->kind == ROWS_NORM_ADD) {
                float *a = r->acc + (size_t)t * d;
                for (size_t i = 0; i < d; i++)
                    a[i] += y[i];
            }
        }
        break;
    case ROWS_QK:
        for (int32_t t = t0; t < t1; t++)
            qk_token(r->m, r->kern, r->L, r->g, r->s, r->kv, r->il, t, r->pos0 + t,
                     r->cs + (size_t)t * (size_t)r->g->n_rot);
        break;
    case ROWS_GEGLU:
        gm_geglu_k(r->kern, r->y + (size_t)t0 * d, r->y + (size_t)t0 * d, r->x + (size_t)t0 * d,
                   (int64_t)(t1 - t0) * r->dim, r->tab);
        break;
    }
}

static void rows_fn(void *p, int ith, int nth)
{
    const rows_task *r = p;
    rows_range(r, (int32_t)((int64_t)r->n * ith / nth), (int32_t)((int64_t)r->n * (ith + 1) / nth));
}

static void run_rows(gm_compute *c, rows_task *r)
{
    if (r->n >= 4 && gm_compute_threads(c) > 1)
        gm_parallel(c, rows_fn, r);
    else
        rows_range(r, 0, r->n);
}

/* y = rmsnorm(x) * w row by row; with acc, also acc += y. */
static void norm_rows(gm_compute *c, float *y, const float *x, const float *w, int32_t n, int64_t dim, float eps,
                      float *acc)
{
    rows_task r = {.kind = acc ? ROWS_NORM_ADD : ROWS_NORM, .n = n, .kern = gm_compute_kernels(c), .y = y,
                   .acc = acc, .x = x, .w = w, .dim = dim, .eps = eps};
    run_rows(c, &r);
}

static gemma_status attn_block(const gemma_model *m, const g3_layer *L, int32_t il, gm_exec *ex,
                               const gm_batch *b)
{
    const gm_layer_geom *g = &m->layers[il];
    g3_scratch *s = ex->scratch;
    const int32_t n = b->n, E = m->hp.n_embd;
    const gm_kernels *kern = gm_compute_kernels(ex->c);
    gemma_status st;
    norm_rows(ex->c, s->h, s->x, L->attn_norm, n, E, m->hp.rms_eps, NULL);
    PROF(s, ATTN_NORM);
    const gm_tensor *const wqkv[3] = {L->wq, L->wk, L->wv};
    float *const yqkv[3] = {s->q, s->k, s->v};
    if ((st = gm_matmul_multi(ex->c, wqkv, 3, s->h, n, yqkv)))
        return st;
    PROF(s, QKV);
    const float *cs = rope_table(s, g, b);
    rows_task qk = {.kind = ROWS_QK, .n = n, .kern = kern, .m = m, .L = L, .g = g, .s = s, .kv = ex->kv,
                    .il = il, .pos0 = b->pos0, .cs = cs};
    run_rows(ex->c, &qk);
    PROF(s, QK_ROPE);
    const gm_kv_layer *kl = &ex->kv->layer[g->kv_src];
    const size_t qd = (size_t)g->n_head * (size_t)g->head_dim;
    gm_attn a = {
        .q = s->q, .q_stride = qd, .out = s->att, .out_stride = qd, .n_tok = n, .pos0 = b->pos0,
        .n_head = g->n_head, .n_head_kv = g->n_head_kv, .head_dim = g->head_dim,
        .n_swa = g->is_swa ? m->hp.n_swa : 0, .k = kl->k, .vt = kl->vt, .cells = kl->cells,
        .q_block = s->q_block, .scores = s->scores, .qr = s->qr, .tmp = s->attn_tmp,
        .max_keys = s->n_ctx, .kern = kern,
    };
    gm_parallel(ex->c, gm_attn_task, &a);
    PROF(s, ATTN);
    if ((st = gm_matmul(ex->c, L->wo, s->att, n, s->o)))
        return st;
    PROF(s, WO);
    norm_rows(ex->c, s->o, s->o, L->post_attn_norm, n, E, m->hp.rms_eps, s->x);
    PROF(s, POST_ATTN);
    return GEMMA_OK;
}

static gemma_status ffn_block(const gemma_model *m, const g3_layer *L, int32_t il, gm_exec *ex,
                              const gm_batch *b)
{
    g3_scratch *s = ex->scratch;
    const int32_t n = b->n, E = m->hp.n_embd;
    const int64_t F = m->layers[il].n_ff;
    const gm_kernels *kern = gm_compute_kernels(ex->c);
    gemma_status st;
    norm_rows(ex->c, s->h, s->x, L->ffn_norm, n, E, m->hp.rms_eps, NULL);
    PROF(s, FFN_NORM);
    const gm_tensor *const wgu[2] = {L->gate, L->up};
    float *const ygu[2] = {s->gate, s->up};
    if ((st = gm_matmul_multi(ex->c, wgu, 2, s->h, n, ygu)))
        return st;
    PROF(s, GATE_UP);
    rows_task gg = {.kind = ROWS_GEGLU, .n = n, .kern = kern, .y = s->gate, .x = s->up, .dim = F,
                    .tab = m->gelu_f16};
    run_rows(ex->c, &gg);
    PROF(s, GEGLU);
    if ((st = gm_matmul(ex->c, L->down, s->gate, n, s->o)))
        return st;
    PROF(s, DOWN);
    norm_rows(ex->c, s->o, s->o, L->post_ffw_norm, n, E, m->hp.rms_eps, s->x);
    PROF(s, POST_FFN);
    return GEMMA_OK;
}

static gemma_status g3_forward(const gemma_model *m, gm_exec *ex, const gm_batch *b, gemma_error *err)
{
    const g3_weights *w = m->arch_data;
    g3_scratch *s = ex->scratch;
    const int32_t n = b->n, E = m->hp.n_embd;
    if (n < 1 || n > s->n_batch || b->pos0 < 0 || b->pos0 + n > s->n_ctx)
        return gm_fail(err, GEMMA_E_INTERNAL, "forward: batch of %d at %d does not fit", (int)n, (int)b->pos0);
    const float emb_scale = sqrtf((float)E);
#ifdef GM_PROFILE
    prof_begin(s, n);
#endif
    for (int32_t t = 0; t < n; t++) {
        gemma_token id = b->tokens[t];
        if (id < 0 || id >= m->hp.n_vocab)
            return gm_fail(err, GEMMA_E_INVALID_ARG, "token id %d is outside the vocabulary (0..%d)",
                           (int)id, (int)m->hp.n_vocab - 1);
        float *x = s->x + (size_t)t * (size_t)E;
        gm_tensor_get_row(w->tok_embd, id, x);
        for (int32_t i = 0; i < E; i++)
            x[i] *= emb_scale;
    }
    PROF(s, EMBED);
    for (int i = 0; i < G3_ROPE_SLOTS; i++)
        s->rope[i].valid = false;
    gemma_status st;
    for (int32_t il = 0; il < m->hp.n_layer; il++) {
        if (ex->cancel && atomic_load_explicit(ex->cancel, memory_order_relaxed))
            return gm_fail(err, GEMMA_E_CANCELLED, "evaluation cancelled");
        const g3_layer *L = &w->layer[il];
        if ((st = attn_block(m, L, il, ex, b)) || (st = ffn_block(m, L, il, ex, b)))
            return gm_fail(err, st, "layer %d: %s", (int)il, gemma_strerror(st));
    }
    /* Final norm and LM head only for the rows asked for. */
    const int32_t first = b->logits_all ? 0 : n - 1, n_out = n - first;
    norm_rows(ex->c, s->h, s->x + (size_t)first * (size_t)E, w->output_norm, n_out, E, m->hp.rms_eps, NULL);
    PROF(s, OUT_NORM);
    if ((st = gm_matmul(ex->c, w->output, s->h, n_out, b->logits)))
        return gm_fail(err, st, "output projection: %s", gemma_strerror(st));
    PROF(s, LM_HEAD);
    if (m->hp.final_softcap > 0.0f)
        gm_softcap(b->logits, (int64_t)n_out * m->hp.n_vocab, m->hp.final_softcap);
    PROF(s, SOFTCAP);
    return GEMMA_OK;
}

const gm_arch_ops gm_arch_gemma3 = {
    .name = "gemma3",
    .turn_end = "<end_of_turn>\n",
    .load = g3_load,
    .free_data = g3_free_data,
    .scratch_create = g3_scratch_create,
    .scratch_free = g3_scratch_free,
    .forward = g3_forward,
};
