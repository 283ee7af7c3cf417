/* The generation loop: sample, stream text through the detokenizer, hold back text that may
 * still become a stop string, evaluate the token, repeat until a stop condition. */
#include "session.h"

#include "../constrain/grammar.h"
#include "../model/model.h"
#include "../tokenizer/tokenizer.h"

#include "../util/util.h"

#include <math.h>
#include <stdlib.h>

#define GENERATE_PARAMS_MIN GM_ABI_MIN(gemma_generate_params, max_thinking_tokens)
#define GENERATE_RESULT_MIN GM_ABI_MIN(gemma_generate_result, n_tokens)

static const gemma_generate_params generate_defaults = {.size = sizeof generate_defaults, .max_tokens = 256};

gemma_status gemma_generate_params_init(gemma_generate_params *p, size_t size)
{
    return p ? gm_abi_write(p, size, &generate_defaults, sizeof generate_defaults, GENERATE_PARAMS_MIN)
             : GEMMA_E_INVALID_ARG;
}

typedef struct gen_state {
    gemma_session *s;
    const gemma_generate_params *p;
    gemma_sampler *sampler;
    gemma_detok *detok;
    char *text;           /* generated text not yet handed to the callback */
    size_t len, cap;
    gemma_token last;     /* last generated token */
    gemma_token open, close; /* Gemma 4's <|channel> and <channel|> (-1: none) */
    bool in_thought;      /* inside a thought channel */
    int32_t n_thought;    /* tokens of it so far */
    gm_matcher *m;        /* the constraint's parse state, or NULL */
    float *masked;        /* logits with the constraint's mask applied */
} gen_state;

/* The thought channel's markers, and whether the cache ends inside an open channel (a
 * thinking turn already begun, e.g. a prompt that opened it). */
static void thought_init(gen_state *g)
{
    const gm_vocab *v = gm_model_vocab(g->s->model);
    g->open = gm_vocab_find(v, "<|channel>", 10);
    g->close = gm_vocab_find(v, "<channel|>", 10);
    if (g->open < 0 || g->close < 0)
        g->open = g->close = -1;
    for (int32_t i = g->s->n_past; g->open >= 0 && i-- > 0;)
        if (g->s->history[i] == g->open || g->s->history[i] == g->close) {
            g->in_thought = g->s->history[i] == g->open;
            break;
        }
}

/* A token sampled under the constraint, -1 when none can continue it. The unmasked sample is
 * tried first: when it fits, the result is what sampling from the masked logits would give
 * (the masked distribution is the unmasked one conditioned on fitting), and the vocabulary
 * mask, the costly part, is only computed when the model reaches for a token that doesn't. */
static gemma_token constrained_sample(gen_state *g)
{
    gemma_token tok = gemma_sampler_sample(g->sampler, g->s->logits);
    if (!gm_matcher_allows(g->m, tok)) {
        const int32_t n = g->s->model->hp.n_vocab;
        memcpy(g->masked, g->s->logits, (size_t)n * sizeof *g->masked);
        if (gm_matcher_mask(g->m, g->masked) == 0)
            return -1;
        tok = gemma_sampler_sample(g->sampler, g->masked);
    }
    return gm_matcher_accept_token(g->m, tok) ? tok : -1;
}

/* The next token: sampled, or the channel's close once the thinking budget is spent. */
static gemma_token next_token(gen_state *g)
{
    const int32_t budget = g->p->max_thinking_tokens;
    gemma_token tok = g->in_thought && budget > 0 && g->n_thought >= budget ? g->close
                      : g->m                                                ? constrained_sample(g)
                                                                            : gemma_sampler_sample(g->sampler, g->s->logits);
    if (g->open >= 0 && (tok == g->open || tok == g->close)) {
        g->in_thought = tok == g->open;
        g->n_thought = 0;
    } else if (g->in_thought) {
        g->n_thought++;
    }
    return tok;
}

static gemma_status append(gen_state *g, const char *t, size_t n)
{
    if (g->len + n + 1 > g->cap) {
        size_t cap = GM_MAX(g->cap * 2, g->len + n + 64);
        char *p = realloc(g->text, cap);
        if (!p)
            return gm_session_fail(g->s, GEMMA_E_NOMEM, "out of memory buffering generated text");
        g->text = p;
        g->cap = cap;
    }
    memcpy(g->text + g->len, t, n);
    g->len += n;
    return GEMMA_OK;
}

/* Earliest complete stop string in the pending text (SIZE_MAX if none); *hold gets the
 * longest suffix that is a proper prefix of some stop string (it may still complete). */
static size_t find_stop(const gen_state *g, size_t *hold)
{
    size_t best = SIZE_MAX;
    *hold = 0;
    for (size_t i = 0; i < g->p->n_stop_strings; i++) {
        const char *ss = g->p->stop_strings[i];
        const size_t sl = ss ? strlen(ss) : 0;
        if (sl == 0)
            continue;
        for (size_t at = 0; at + sl <= g->len && at < best; at++)
            if (!memcmp(g->text + at, ss, sl))
                best = at;
        for (size_t k = GM_MIN(sl - 1, g->len); k > *hold; k--)
            if (!memcmp(g->text + g->len - k, ss, k)) {
                *hold = k;
                break;
            }
    }
    return best;
}

/* Hands the first n pending bytes to the callback; returns its answer. */
static int emit(gen_state *g, size_t n, gemma_token tok)
{
    int r = 0;
    if (g->p->on_token)
        r = g->p->on_token(g->p->user, g->text, n, tok);
    memmove(g->text, g->text + n, g->len - n);
    g->len -= n;
    return r;
}

/* Final flush: text held back by the detokenizer or for stop strings, which can no longer
 * complete a stop string. Delivered with the last token, only when there is any. */
static gemma_status flush_all(gen_state *g, gemma_token tok)
{
    const char *t;
    size_t n;
    if (gemma_detok_flush(g->detok, &t, &n) == GEMMA_OK && n) {
        gemma_status st = append(g, t, n);
        if (st)
            return st;
    }
    size_t hold;
    size_t at = find_stop(g, &hold);
    if (at != SIZE_MAX)
        g->len = at; /* a stop string completed by the flush is still never emitted */
    if (g->len)
        emit(g, g->len, tok);
    return GEMMA_OK;
}

static bool cancelled(const gemma_session *s)
{
    return atomic_load_explicit(&s->cancel, memory_order_relaxed) != 0;
}

/* NaN or Inf logits come only from broken weights (or a kernel bug): sampling from them
 * would silently pick an arbitrary token. */
static gemma_status check_logits(gemma_session *s)
{
    const int32_t n = s->model->hp.n_vocab;
    for (int32_t i = 0; i < n; i++)
        if (!isfinite(s->logits[i]))
            return gm_session_fail(s, GEMMA_E_MODEL,
                                   "the model computed a non-finite logit (%s for token %d) at position %d: its "
                                   "weights hold NaN/Inf or extreme values; load with validate_data "
                                   "(gemma --check-tensors) to find the tensor",
                                   isnan(s->logits[i]) ? "NaN" : "Inf", (int)i, (int)s->n_past);
    return GEMMA_OK;
}

/* One step; sets *reason when generation ends. */
static gemma_status step(gen_state *g, gemma_generate_result *res, gemma_stop_reason *reason)
{
    gemma_session *s = g->s;
    gemma_status st = check_logits(s);
    if (st)
        return st;
    const gemma_token tok = next_token(g);
    if (tok < 0)
        return gm_session_fail(s, GEMMA_E_INTERNAL, "constraint: no token of the vocabulary can continue the grammar");
    gemma_sampler_accept(g->sampler, tok);
    if (gemma_token_is_eog(s->model, tok)) {
        *reason = GEMMA_STOP_EOG;
        return flush_all(g, tok);
    }
    g->last = tok;
    res->n_tokens++;
    s->n_gen_tokens++;
    const char *t;
    size_t n;
    st = gemma_detok_push(g->detok, tok, &t, &n);
    if (!st)
        st = append(g, t, n);
    if (st)
        return st;
    const bool full = s->n_past >= s->n_ctx;
    const bool at_max = g->p->max_tokens > 0 && res->n_tokens >= g->p->max_tokens;
    size_t hold;
    size_t at = find_stop(g, &hold);
    if (at != SIZE_MAX) {
        emit(g, at, tok);
        *reason = GEMMA_STOP_STRING;
        return GEMMA_OK;
    }
    if (full) {
        *reason = GEMMA_STOP_CONTEXT_FULL;
        return flush_all(g, tok);
    }
    if (emit(g, g->len - hold, tok)) {
        *reason = GEMMA_STOP_CALLBACK;
        return GEMMA_OK;
    }
    st = gm_session_eval(s, &tok, 1, NULL, true);
    if (st == GEMMA_E_CANCELLED) {
        *reason = GEMMA_STOP_CANCELLED;
        return flush_all(g, tok);
    }
    if (st)
        return st;
    if (at_max) {
        *reason = GEMMA_STOP_MAX_TOKENS;
        return flush_all(g, tok);
    }
    return GEMMA_OK;
}

/* Reads the caller's params over the defaults and checks them; *sp holds the model's default
 * sampling when the caller gives none. */
static gemma_status read_params(gemma_session *s, const gemma_generate_params *params, gemma_generate_params *p,
                                gemma_sampler_params *sp)
{
    *p = generate_defaults;
    if (params && gm_abi_read(p, sizeof *p, params, GENERATE_PARAMS_MIN, "gemma_generate_params", &s->err))
        return GEMMA_E_INVALID_ARG;
    if (!p->sampling) {
        gemma_sampler_params_init(sp, sizeof *sp, s->model);
        p->sampling = sp;
    }
    if (p->n_stop_strings && !p->stop_strings)
        return gm_session_fail(s, GEMMA_E_INVALID_ARG, "stop_strings is NULL but n_stop_strings is %zu",
                               p->n_stop_strings);
    if (!s->has_logits)
        return gm_session_fail(s, GEMMA_E_INVALID_ARG, "nothing has been evaluated yet: feed a prompt first");
    return GEMMA_OK;
}

/* The sampling loop, once the sampler exists. */
static gemma_status run(gen_state *g, gemma_generate_result *res)
{
    gemma_session *s = g->s;
    const double t0 = gm_now();
    for (int32_t i = 0; i < s->n_past; i++)
        gemma_sampler_accept(g->sampler, s->history[i]); /* the penalties see the prompt */
    gemma_status st = gemma_detok_create(s->model, false, &g->detok);
    if (st)
        gm_session_fail(s, st, "cannot create the detokenizer");
    gemma_stop_reason reason = GEMMA_STOP_NONE;
    while (!st && reason == GEMMA_STOP_NONE) {
        if (cancelled(s)) {
            reason = GEMMA_STOP_CANCELLED;
            st = flush_all(g, g->last);
            break;
        }
        st = step(g, res, &reason);
    }
    s->gen_seconds += gm_now() - t0;
    res->stop_reason = reason;
    return st;
}

static gemma_status generate_locked(gemma_session *s, const gemma_generate_params *params,
                                    gemma_generate_result *result)
{
    atomic_store_explicit(&s->cancel, 0, memory_order_relaxed);
    s->err.code = GEMMA_OK;
    s->err.message[0] = '\0';
    gemma_generate_result res = {.size = sizeof res, .stop_reason = GEMMA_STOP_NONE};
    if (result && gm_abi_write(result, result->size, &res, sizeof res, GENERATE_RESULT_MIN))
        return gm_session_fail(s, GEMMA_E_INVALID_ARG, "gemma_generate_result: size is %zu; set it to sizeof the struct",
                               result->size);
    gemma_generate_params p;
    gemma_sampler_params sp;
    gemma_status st = read_params(s, params, &p, &sp);
    if (st)
        return st;
    gen_state g = {s, &p, NULL, NULL, NULL, 0, 0, -1, -1, -1, false, 0, NULL, NULL};
    thought_init(&g);
    gemma_error e = {0};
    st = p.constraint ? gm_constraint_matcher(p.constraint, s->model, &g.m) : GEMMA_OK;
    if (!st && p.constraint && !(g.masked = gm_malloc_array((size_t)s->model->hp.n_vocab, sizeof *g.masked)))
        st = GEMMA_E_NOMEM;
    if (st)
        gm_session_fail(s, st, st == GEMMA_E_NOMEM ? "constraint: out of memory"
                                                   : "constraint: it was compiled for another model");
    if (!st && (st = gemma_sampler_create(p.sampling, s->model->hp.n_vocab, &g.sampler, &e)))
        gm_session_fail(s, st, "sampler: %s", e.message);
    if (!st)
        st = run(&g, &res);
    if (result)
        gm_abi_write(result, result->size, &res, sizeof res, GENERATE_RESULT_MIN);
    free(g.text);
    gemma_detok_free(g.detok);
    gemma_sampler_free(g.sampler);
    gm_matcher_free(g.m);
    free(g.masked);
    return st;
}

gemma_status gemma_session_generate(gemma_session *s, const gemma_generate_params *params,
                                    gemma_generate_result *result)
{
    GM_SESSION_CALL(s, generate_locked(s, params, result));
}
