/* Batched decode over sessions of one model (batch.c). */
#ifndef GM_BATCH_H
#define GM_BATCH_H

#include "gemma.h"
#include "../tensor/kernels.h"

#include <stddef.h>
#include <stdint.h>

typedef struct gm_decoder gm_decoder;

/* A decoder for steps of up to n_max rows (<= GM_DECODE_MAX) over sessions of up to n_ctx
 * positions, on its own n_threads threads with kernel set isa. */
gemma_status gm_decoder_create(gemma_model *m, int32_t n_max, int32_t n_ctx, int32_t n_threads, gm_isa isa,
                               gm_decoder **out, gemma_error *err);
void gm_decoder_free(gm_decoder *d);

/* Evaluates tokens[i] at the next position of sessions[i] for i < n, in one forward pass:
 * each session's cache, history and logits advance exactly as gemma_session_eval of that
 * one token would leave them. Sessions must be distinct, idle and have a free position
 * (no KEEP_RECENT here: the caller evaluates a full session alone). On an error no
 * session advances (their caches may hold the unused entry past n_past). */
gemma_status gm_decode_batch(gm_decoder *d, gemma_session *const *sessions, const gemma_token *tokens, size_t n,
                             gemma_error *err);

#endif
