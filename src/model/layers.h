/* Building blocks that every Gemma generation's forward pass is made of: the session's
 * scratch buffers, row-parallel norms and GEGLU, the per-pass RoPE tables, the attention
 * block (Q/K/V, the KV cache store and attention over it), the FFN block, the embedding
 * lookup and the output head. Each generation file (gemma3.c, gemma4.c) keeps what is its
 * own (hyper-parameters, geometry, extra blocks) and composes these in the order of its spec
 * pseudo-code (gemma-spec.md 3.4, 4.4). */
#ifndef GM_LAYERS_H
#define GM_LAYERS_H

#include "arch.h"
#include "ops.h"

/* ---- hyper-parameters ---- */

/* Keys every generation reads, under its own prefix (arch). */
typedef struct gm_base_keys {
    uint32_t n_ctx_train, n_embd, n_layer, n_swa;
    uint32_t *n_ff, *n_head, *n_head_kv; /* per layer, n_layer each (the caller's arrays) */
    float eps, base, base_swa, scale_factor, softcap;
} gm_base_keys;

/* Allocates m->layers and k's per-layer arrays for k->n_layer layers; gm_free_layer_keys
 * frees the arrays (m->layers is the model's). */
gemma_status gm_alloc_layers(gemma_model *m, gm_base_keys *k, gemma_error *err);
void gm_free_layer_keys(gm_base_keys *k);
/* context_length, embedding_length, block_count and the RMS epsilon, all required. */
gemma_status gm_read_size_keys(const gguf_ctx *g, const char *arch, gm_base_keys *k, gemma_error *err);
/* RoPE bases (default 10000), linear scaling (other scaling types are refused) and the final
 * softcap (its default is the caller's). */
gemma_status gm_read_rope_keys(const gguf_ctx *g, const char *arch, gm_base_keys *k, gemma_error *err);
/* Range checks of the scalar keys above and of the window. */
gemma_status gm_validate_base_keys(const char *arch, const gm_base_keys *k, gemma_error *err);
/* GEMMA_E_MODEL unless lo <= v <= hi, naming key 'arch.key'. */
gemma_status gm_check_key_range(const char *arch, const char *key, uint32_t v, uint32_t lo, uint32_t hi,
                                gemma_error *err);
/* Per-layer head counts (KV heads default to the query heads) and FFN widths, validated. */
gemma_status gm_read_layer_keys(const gguf_ctx *g, const char *arch, gm_base_keys *k, gemma_error *err);
/* m->hp from the keys and the built geometry (layer 0's shape for reporting). */
void gm_set_hparams(gemma_model *m, const gm_base_keys *k);

/* ---- tensors ---- */

/* Embedding and output weights, the same tensors in every generation. */
typedef struct gm_io_weights {
    const gm_tensor *tok_embd;
    const gm_tensor *output; /* token_embd when tied */
    const float *output_norm;
} gm_io_weights;

/* The attention of one layer: pre-norm, projections, Q/K norms and post-norm. */
typedef struct gm_attn_weights {
    const float *attn_norm, *q_norm, *k_norm, *post_attn_norm;
    const gm_tensor *wq, *wk, *wv, *wo;
} gm_attn_weights;

/* The dense GEGLU feed-forward of one layer, with its pre- and post-norm. */
typedef struct gm_ffn_weights {
    const float *ffn_norm, *post_ffw_norm;
    const gm_tensor *gate, *up, *down;
} gm_ffn_weights;

/* Binds token_embd (setting hp.n_vocab from it), output_norm and the optional output. */
gemma_status gm_bind_io(gemma_model *m, gm_io_weights *w, gemma_error *err);
/* Binds layer il's attention tensors (blk.N.*); kv_flags apply to attn_k and attn_k_norm,
 * v_flags to attn_v (GM_BIND_OPTIONAL where a generation may lack them). */
gemma_status gm_bind_attn(gemma_model *m, int il, gm_attn_weights *a, unsigned kv_flags, unsigned v_flags,
                          gemma_error *err);
/* Binds layer il's FFN tensors (blk.N.*). */
gemma_status gm_bind_ffn(gemma_model *m, int il, gm_ffn_weights *f, gemma_error *err);

/* ---- scratch ---- */

/* RoPE tables of one forward pass, one per distinct (base, scale, factors, n_rot): local
 * and global layers, so cos/sin are computed twice per token rather than once per layer. */
#define GM_ROPE_SLOTS 2

typedef struct gm_rope_slot {
    float base, freq_scale;
    const float *factors;
    int32_t n_rot;
    bool valid;
} gm_rope_slot;

#ifdef GM_PROFILE
/* Per-operation wall times, compiled in only with -DGM_PROFILE (docs/profile.md). */
enum { GM_P_EMBED, GM_P_ATTN_NORM, GM_P_QKV, GM_P_QK_ROPE, GM_P_ATTN, GM_P_WO, GM_P_POST_ATTN,
       GM_P_FFN_NORM, GM_P_GATE_UP, GM_P_GEGLU, GM_P_DOWN, GM_P_POST_FFN, GM_P_PLE, GM_P_OUT_NORM,
       GM_P_LM_HEAD, GM_P_SOFTCAP, GM_P_COUNT };
#endif

/* The buffers of one session's forward passes (a generation with more embeds this first). */
typedef struct gm_scratch {
    int32_t n_batch, n_ctx, q_block, rope_next;
    int64_t rope_stride; /* floats per rope table */
    float *x, *h, *q, *k, *v, *att, *o, *gate, *up, *cs, *attn_tmp;
    float *scores, *qr;
    gm_rope_slot rope[GM_ROPE_SLOTS];
    void *block;
#ifdef GM_PROFILE
    const char *prof_arch;
    double prof_t, prof[2][GM_P_COUNT]; /* [decode, batch][slot] seconds */
    int64_t prof_calls[2];
    int prof_mode;
#endif
} gm_scratch;

/* Allocates s's buffers for batches of n_batch tokens and n_ctx positions, sized for the
 * widest layer, and n_extra more buffers of extra_sizes[i] floats into extra[i], all in
 * one block. On failure s->block is NULL; gm_scratch_release is safe either way. */
gemma_status gm_scratch_init(gm_scratch *s, const gemma_model *m, int32_t n_batch, int32_t n_ctx,
                             int32_t n_threads, const int64_t *extra_sizes, float **extra, int n_extra,
                             gemma_error *err);
void gm_scratch_release(gm_scratch *s);
/* An ops table's scratch_create / scratch_free for a generation that needs only gm_scratch. */
gemma_status gm_scratch_create(const gemma_model *m, int32_t n_batch, int32_t n_ctx, int32_t n_threads,
                               void **out, gemma_error *err);
void gm_scratch_free(void *scratch);

#ifdef GM_PROFILE
void gm_prof_mark(gm_scratch *s, int slot);
#define GM_PROF(s, slot) gm_prof_mark(s, GM_P_##slot)
#else
#define GM_PROF(s, slot) ((void)0)
#endif

/* ---- row-wise work ---- */

/* Work on token rows [t0, t1) of a batch. */
typedef void (*gm_rows_fn)(void *ctx, int32_t t0, int32_t t1);
/* fn over rows [0, n), split by token over the pool's threads for prompts (a decode step's
 * rows are too small to be worth waking the pool). */
void gm_run_rows(gm_compute *c, int32_t n, gm_rows_fn fn, void *ctx);
/* y = rmsnorm(x) * w for n rows of dim; with acc, also acc += y. y may alias x. */
void gm_norm_rows(gm_compute *c, float *y, const float *x, const float *w, int32_t n, int64_t dim, float eps,
                  float *acc);
/* y = gelu(y) * x for n rows of dim (y rows dim apart, x rows x_stride apart). */
void gm_geglu_rows(gm_compute *c, float *y, const float *x, int64_t x_stride, int32_t n, int64_t dim,
                   const uint16_t *tab);

/* ---- forward-pass steps (each reads and writes ex->scratch) ---- */

/* Checks the batch fits the scratch, forgets the last pass's RoPE tables and sets
 * x = token_embd[id] * sqrt(n_embd); an id outside the vocabulary is an error. */
gemma_status gm_forward_begin(const gemma_model *m, const gm_io_weights *w, gm_exec *ex, const gm_batch *b,
                              gemma_error *err);
/* GEMMA_E_CANCELLED (with the message) when the session asked to stop. */
gemma_status gm_check_cancel(const gm_exec *ex, gemma_error *err);
/* The cos/sin table of every token of the batch for layer geometry g (computed by the
 * first layer of the pass that uses those frequencies). */
const float *gm_rope_table(gm_scratch *s, const gm_layer_geom *g, const gm_batch *b);
/* x += rmsnorm(Wo · attention(q, cache of g->kv_src)) * post_attn_norm, with q, k, v = W ·
 * (rmsnorm(x) * attn_norm): Q normed, roped and scaled; a layer with its own cache (kv_src
 * == il) also projects K (V too when it has attn_v, else V is the raw K), norms V when
 * g->v_norm, norms and ropes K, and stores K and V at positions b->pos0 + t of the session's
 * cache ex->kv. A KV-shared layer projects only Q. */
gemma_status gm_attn_block(const gemma_model *m, const gm_attn_weights *a, int32_t il, gm_exec *ex,
                           const gm_batch *b);
/* x += rmsnorm(down · (gelu(gate · h) * (up · h))) * post_ffw_norm, h = rmsnorm(x) * ffn_norm. */
gemma_status gm_ffn_block(const gemma_model *m, const gm_ffn_weights *f, int32_t il, gm_exec *ex,
                          const gm_batch *b);
/* logits = softcap(output · (rmsnorm(x) * output_norm)) for the rows the batch asks for. */
gemma_status gm_output_head(const gemma_model *m, const gm_io_weights *w, gm_exec *ex, const gm_batch *b,
                            gemma_error *err);

#endif
