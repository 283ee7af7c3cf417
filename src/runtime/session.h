/* The session object, shared by session.c (eval, feeding) and generate.c (sampling loop). */
#ifndef GM_SESSION_H
#define GM_SESSION_H

#include "gemma.h"
#include "../model/kvcache.h"
#include "../model/arch.h"
#include "../tensor/compute.h"
#include "../util/util.h"

#include <stdatomic.h>

struct gemma_session {
    gemma_model *model;
    gm_compute *c;
    gm_kvcache *kv;
    void *scratch;
    int32_t n_ctx, n_batch, n_threads;
    gemma_overflow overflow;
    int32_t n_past;
    gemma_token *history;   /* the n_past tokens in the cache (for KEEP_RECENT) */
    float *logits;          /* n_vocab: after the last evaluated token */
    bool has_logits;
    bool in_model_turn;     /* a chat answer was started and not closed */
    gemma_chat_params chat; /* for feed_chat; chat.tools points to chat_tools */
    char *chat_tools;
    atomic_int cancel;
    atomic_int busy;        /* gm_busy: guards against re-entry from on_token or a second thread */
    gemma_error err;
    int64_t n_prompt_tokens, n_gen_tokens;
    double prompt_seconds, gen_seconds;
};

/* States of gemma_session.busy. */
enum gm_busy { GM_IDLE, GM_BUSY, GM_BUSY_FREE /* freed when the running call ends */, GM_FREEING };

/* Marks s as inside a public call. False when it already is (a call from on_token or from
 * another thread): the caller returns GEMMA_E_BUSY without touching anything else in s. */
bool gm_session_enter(gemma_session *s);
/* Ends the call; frees s when gemma_session_free was called meanwhile. */
void gm_session_leave(gemma_session *s);

/* Body of a public entry point that changes a session: call runs between gm_session_enter
 * and gm_session_leave (which may free s, so nothing touches s after it). */
#define GM_SESSION_CALL(s, call)                \
    do {                                        \
        if (!(s))                               \
            return GEMMA_E_INVALID_ARG;         \
        if (!gm_session_enter(s))               \
            return GEMMA_E_BUSY;                \
        gemma_status st_ = (call);              \
        gm_session_leave(s);                    \
        return st_;                             \
    } while (0)

/* Eval without clearing the cancel flag (generate calls it per token). gen marks the
 * tokens as generated for the statistics. */
gemma_status gm_session_eval(gemma_session *s, const gemma_token *tokens, size_t n,
                             float *logits_all, bool gen);

/* Records err in the session and returns its code. */
gemma_status gm_session_fail(gemma_session *s, gemma_status code, const char *fmt, ...) GM_PRINTF(3, 4);

#endif
