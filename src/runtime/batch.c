/* Batched decode: the next token of several sessions of one model in one forward pass, so
 * each weight matrix is read once per step rather than once per session. Every mat-mul
 * runs on the stacked rows; attention runs per row over its own session's cache at its own
 * position (layers.c). The decoder owns the threads and scratch of the shared pass; the
 * sessions keep their caches, histories and logits, which advance as if each had
 * evaluated its token alone (test_batch checks the logits are bit-identical). */
#include "batch.h"
#include "session.h"

#include <stdlib.h>
#include <string.h>

struct gm_decoder {
    gemma_model *model;
    gm_compute *c;
    void *scratch;
    float *logits; /* n_max * n_vocab */
    int32_t n_max, n_ctx;
};

gemma_status gm_decoder_create(gemma_model *m, int32_t n_max, int32_t n_ctx, int32_t n_threads, gm_isa isa,
                               gm_decoder **out, gemma_error *err)
{
    *out = NULL;
    if (n_max < 1 || n_max > GM_DECODE_MAX || n_ctx < 1 || n_ctx > m->hp.n_ctx_train)
        return gm_fail(err, GEMMA_E_INVALID_ARG, "decoder: %d rows of up to %d positions (1..%d, 1..%d)",
                       (int)n_max, (int)n_ctx, GM_DECODE_MAX, (int)m->hp.n_ctx_train);
    gm_decoder *d = calloc(1, sizeof *d);
    if (!d)
        return gm_fail(err, GEMMA_E_NOMEM, "out of memory allocating the decoder");
    d->model = m;
    d->n_max = n_max;
    d->n_ctx = n_ctx;
    gemma_status st = gm_compute_create(n_threads, isa, &d->c, err);
    if (!st)
        st = m->ops->scratch_create(m, n_max, n_ctx, n_threads, &d->scratch, err);
    if (!st && !(d->logits = gm_malloc_array((size_t)n_max * (size_t)m->hp.n_vocab, sizeof(float))))
        st = gm_fail(err, GEMMA_E_NOMEM, "out of memory allocating the decoder's logits");
    if (st) {
        gm_decoder_free(d);
        return st;
    }
    *out = d;
    return GEMMA_OK;
}

void gm_decoder_free(gm_decoder *d)
{
    if (!d)
        return;
    if (d->scratch)
        d->model->ops->scratch_free(d->scratch);
    gm_compute_free(d->c);
    free(d->logits);
    free(d);
}

/* Checks session i can take one more token in this decoder's pass. */
static gemma_status check_row(const gm_decoder *d, gemma_session *s, gemma_token tok, size_t i, gemma_error *err)
{
    if (s->model != d->model)
        return gm_fail(err, GEMMA_E_INVALID_ARG, "decode batch: session %zu belongs to another model", i);
    if (s->n_ctx > d->n_ctx)
        return gm_fail(err, GEMMA_E_INVALID_ARG, "decode batch: session %zu has %d positions, the decoder %d", i,
                       (int)s->n_ctx, (int)d->n_ctx);
    if (s->n_past >= s->n_ctx)
        return gm_fail(err, GEMMA_E_CONTEXT_FULL, "decode batch: session %zu has all %d positions in use", i,
                       (int)s->n_ctx);
    if (tok < 0 || tok >= d->model->hp.n_vocab)
        return gm_fail(err, GEMMA_E_INVALID_ARG, "decode batch: token %zu (%d) is outside the vocabulary", i,
                       (int)tok);
    return GEMMA_OK;
}

/* The pass itself, every session entered and checked. */
static gemma_status decode_rows(gm_decoder *d, gemma_session *const *s, const gemma_token *tokens, size_t n,
                                gemma_error *err)
{
    int32_t pos[GM_DECODE_MAX];
    gm_kvcache *kvs[GM_DECODE_MAX];
    for (size_t i = 0; i < n; i++) {
        gemma_status st = check_row(d, s[i], tokens[i], i, err);
        if (st)
            return st;
        pos[i] = s[i]->n_past;
        kvs[i] = s[i]->kv;
    }
    gm_exec ex = {d->c, NULL, d->scratch, NULL};
    gm_batch b = {.tokens = tokens, .n = (int32_t)n, .logits_all = true, .logits = d->logits, .pos = pos,
                  .kvs = kvs};
    gemma_status st = d->model->ops->forward(d->model, &ex, &b, err);
    if (st)
        return st;
    const size_t V = (size_t)d->model->hp.n_vocab;
    for (size_t i = 0; i < n; i++) {
        memcpy(s[i]->logits, d->logits + i * V, V * sizeof(float));
        s[i]->history[s[i]->n_past++] = tokens[i];
        s[i]->has_logits = true;
    }
    return GEMMA_OK;
}

gemma_status gm_decode_batch(gm_decoder *d, gemma_session *const *sessions, const gemma_token *tokens, size_t n,
                             gemma_error *err)
{
    if (!d || !sessions || !tokens || n < 1 || n > (size_t)d->n_max)
        return gm_fail(err, GEMMA_E_INVALID_ARG, "decode batch: %zu rows (1..%d) or a NULL argument", n,
                       d ? (int)d->n_max : 0);
    size_t entered = 0;
    gemma_status st = GEMMA_OK;
    for (; entered < n; entered++) {
        if (!sessions[entered] || !gm_session_enter(sessions[entered])) {
            st = gm_fail(err, sessions[entered] ? GEMMA_E_BUSY : GEMMA_E_INVALID_ARG,
                         "decode batch: session %zu is NULL, busy or listed twice", entered);
            break;
        }
    }
    if (!st)
        st = decode_rows(d, sessions, tokens, n, err);
    while (entered > 0)
        gm_session_leave(sessions[--entered]);
    return st;
}
