/* Per-architecture plumbing: hyper-parameters, per-layer geometry, the ops table each Gemma
 * generation implements (gemma3.c now, gemma4.c later) and the model struct they fill.
 *
 * Everything that may differ between layers (window or not, head width, KV heads, FFN width,
 * RoPE base/scale/factors, which layer's KV cache is read) lives in gm_layer_geom, so a
 * generation with two head widths or KV-shared layers needs no model-wide scalar.
 */
#ifndef GM_ARCH_H
#define GM_ARCH_H

#include "gemma.h"
#include "model.h"
#include "../tokenizer/tokenizer.h"
#include "../gguf/gguf.h"
#include "../tensor/compute.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct gm_vocab;
struct gm_kvcache;

#define GM_MAX_LAYERS 512

/* Geometry of one layer. */
typedef struct gm_layer_geom {
    bool is_swa;          /* sliding-window (local) attention */
    int32_t n_head;       /* query heads */
    int32_t n_head_kv;    /* K/V heads (of the cache this layer reads) */
    int32_t head_dim;     /* width of one Q/K/V head */
    int32_t n_ff;         /* FFN width (0 = no dense FFN) */
    int32_t n_rot;        /* rotated dims per head (even, <= head_dim) */
    float rope_base;
    float rope_freq_scale;      /* 1/linear scaling factor */
    const float *rope_freq_factors; /* n_rot/2 divisors or NULL (owned by the model) */
    float attn_scale;     /* applied to Q before the QK dot */
    bool v_norm;          /* V is RMS-normed without weight before caching (Gemma 4) */
    int32_t kv_src;       /* layer whose KV cache this layer reads (== own index if it writes one) */
} gm_layer_geom;

/* Model-wide hyper-parameters. The representative n_head/head_dim/n_ff are for reporting;
 * the forward pass reads the per-layer geometry. */
typedef struct gm_hparams {
    int32_t n_layer;
    int32_t n_embd;
    int32_t n_vocab;
    int32_t n_ctx_train;
    int32_t n_swa;        /* window in positions (including the current token); 0 = none */
    float rms_eps;
    float final_softcap;  /* 0 = off */
    int32_t n_head, n_head_kv, head_dim, n_ff; /* layer 0's values, for gemma_model_info */
} gm_hparams;

/* One forward pass over a batch of consecutive positions. */
typedef struct gm_batch {
    const gemma_token *tokens;
    int32_t n;            /* tokens in this pass (<= the session's n_batch) */
    int32_t pos0;         /* absolute position of tokens[0] */
    bool logits_all;      /* logits for every row (else only the last) */
    float *logits;        /* out: (logits_all ? n : 1) * n_vocab floats */
    /* A batched decode step (gm_decode_batch) stacks one token of each of several sessions:
     * row t then sits at position pos[t] of cache kvs[t]. NULL: one session's consecutive
     * positions from pos0 in the gm_exec's cache. */
    const int32_t *pos;
    struct gm_kvcache *const *kvs;
} gm_batch;

/* Most rows of a batched decode step. */
#define GM_DECODE_MAX 64

static inline int32_t gm_batch_pos(const gm_batch *b, int32_t t) { return b->pos ? b->pos[t] : b->pos0 + t; }

/* What a session hands to the forward pass. */
typedef struct gm_exec {
    gm_compute *c;
    struct gm_kvcache *kv;
    void *scratch;        /* from ops->scratch_create */
    atomic_int *cancel;   /* nonzero: stop between layers with GEMMA_E_CANCELLED */
} gm_exec;

/* A published size of an architecture, known by its layer count. */
typedef struct gm_size_class {
    int32_t n_layer;
    const char *label;    /* "270M", "E2B", ... */
} gm_size_class;

/* The per-architecture operations. */
typedef struct gm_arch_ops {
    const char *name;     /* general.architecture value */
    /* The size labels given when general.size_label is absent; ends with {0, NULL}. */
    const gm_size_class *sizes;
    gm_chat_family chat;  /* the chat template's family */
    /* Text that closes an assistant turn in the chat format ("<end_of_turn>\n"). */
    const char *turn_end;
    /* Reads hparams and geometry, binds every tensor (all must be consumed), sets m->arch_data. */
    gemma_status (*load)(gemma_model *m, gemma_error *err);
    void (*free_data)(void *arch_data);
    /* Per-session scratch for batches of up to n_batch tokens and n_ctx positions. */
    gemma_status (*scratch_create)(const gemma_model *m, int32_t n_batch, int32_t n_ctx,
                                   int32_t n_threads, void **out, gemma_error *err);
    void (*scratch_free)(void *scratch);
    gemma_status (*forward)(const gemma_model *m, gm_exec *ex, const gm_batch *b, gemma_error *err);
} gm_arch_ops;

extern const gm_arch_ops gm_arch_gemma3;
extern const gm_arch_ops gm_arch_gemma4;

struct gemma_model {
    gguf_file *file;
    struct gm_vocab *vocab;
    const gm_arch_ops *ops;
    char arch[32];
    char *name;
    char *size_label;
    gm_hparams hp;
    gm_sampling_hints sampling; /* general.sampling.* */
    gm_layer_geom *layers;    /* hp.n_layer entries */
    gm_tensor *tensors;       /* bound weight views (capacity = tensors in the file) */
    size_t n_bound;
    uint8_t *consumed;        /* one flag per file tensor */
    char **names;             /* name copies for bound tensors */
    void *arch_data;
    uint16_t *gelu_f16;       /* 65536-entry GELU table, built once per model */
    float **f32_copies;       /* small F32 tensors copied out of the file (norms, factors) */
    size_t n_f32_copies;
    uint64_t n_params;
    uint64_t weight_bytes;
    bool has_chat_template;
    bool validate_data;
};

/* Tensor binding helpers for the architecture files (model.c). Each checks presence, exact
 * shape and type, marks the file tensor consumed, and fails with GEMMA_E_MODEL naming it. */
#define GM_BIND_OPTIONAL 1u

/* A weight matrix of shape [ne0, ne1] (ne1 = 1 for a vector), any computable weight type.
 * Optional and absent: *out = NULL, GEMMA_OK. */
gemma_status gm_bind_weight(gemma_model *m, const char *name, int64_t ne0, int64_t ne1,
                            unsigned flags, const gm_tensor **out, gemma_error *err);
/* An F32 vector of n elements, copied into model-owned aligned memory. */
gemma_status gm_bind_f32(gemma_model *m, const char *name, int64_t n, unsigned flags,
                         const float **out, gemma_error *err);
/* Formats "blk.%d.%s" into buf. */
const char *gm_blk_name(char *buf, size_t cap, int il, const char *suffix);

/* Reads an optional u32 key into *out (keeps the default when absent). */
gemma_status gm_key_u32(const gguf_ctx *g, const char *arch, const char *suffix, bool required,
                        uint32_t *out, gemma_error *err);
gemma_status gm_key_f32(const gguf_ctx *g, const char *arch, const char *suffix, bool required,
                        float *out, gemma_error *err);
/* The general.sampling.* keys of g into *h (sampling.c). */
void gm_read_sampling_hints(const gguf_ctx *g, gm_sampling_hints *h);

/* Per-layer u32 (scalar or array of n_layer). Absent: leaves out[] unchanged. */
gemma_status gm_key_u32_layers(const gguf_ctx *g, const char *arch, const char *suffix,
                               bool required, uint32_t n_layer, uint32_t *out, gemma_error *err);

#endif
