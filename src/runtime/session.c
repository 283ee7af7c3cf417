/* Sessions: a KV cache, a thread pool and scratch over one shared, immutable model. */
#include "session.h"
#include "../model/model.h"
#include "../tokenizer/tokenizer.h"

#include "../util/util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

gemma_status gm_session_fail(gemma_session *s, gemma_status code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    s->err.code = code;
    vsnprintf(s->err.message, sizeof s->err.message, fmt, ap);
    va_end(ap);
    return code;
}

static void clear_error(gemma_session *s)
{
    s->err.code = GEMMA_OK;
    s->err.message[0] = '\0';
}

#define SESSION_PARAMS_MIN GM_ABI_MIN(gemma_session_params, isa)

static const gemma_session_params session_defaults = {.size = sizeof session_defaults,
                                                      .overflow = GEMMA_OVERFLOW_ERROR};

gemma_status gemma_session_params_init(gemma_session_params *p, size_t size)
{
    return p ? gm_abi_write(p, size, &session_defaults, sizeof session_defaults, SESSION_PARAMS_MIN)
             : GEMMA_E_INVALID_ARG;
}

static void destroy(gemma_session *s)
{
    if (s->scratch)
        s->model->ops->scratch_free(s->scratch);
    gm_kvcache_free(s->kv);
    gm_compute_free(s->c);
    free(s->history);
    free(s->logits);
    free(s->chat_tools);
    free(s);
}

bool gm_session_enter(gemma_session *s)
{
    int idle = GM_IDLE;
    return atomic_compare_exchange_strong(&s->busy, &idle, GM_BUSY);
}

void gm_session_leave(gemma_session *s)
{
    int busy = GM_BUSY;
    if (!atomic_compare_exchange_strong(&s->busy, &busy, GM_IDLE)) /* GM_BUSY_FREE */
        destroy(s);
}

void gemma_session_free(gemma_session *s)
{
    if (!s)
        return;
    /* Asked while a call runs (from its on_token, or another thread): that call stops as
     * soon as it can and frees s on its way out. The cancel comes first: once the state
     * says GM_BUSY_FREE, s may be gone. */
    int cur = atomic_load(&s->busy);
    if (cur == GM_BUSY)
        gemma_session_cancel(s);
    for (;;) {
        if (cur == GM_IDLE && atomic_compare_exchange_weak(&s->busy, &cur, GM_FREEING)) {
            destroy(s);
            return;
        }
        if (cur == GM_BUSY && atomic_compare_exchange_weak(&s->busy, &cur, GM_BUSY_FREE))
            return;
        if (cur != GM_IDLE && cur != GM_BUSY)
            return; /* already being freed */
    }
}

static gemma_status resolve_params(const gemma_model *m, const gemma_session_params *p,
                                   gemma_session *s, gm_isa *isa, gemma_error *err)
{
    const int32_t train = m->hp.n_ctx_train;
    if (p->n_ctx < 0 || p->n_ctx > train)
        return gm_fail(err, GEMMA_E_INVALID_ARG, "n_ctx %d is outside 0..%d (the model's trained context)",
                       (int)p->n_ctx, (int)train);
    s->n_ctx = p->n_ctx ? p->n_ctx : GM_MIN(train, 8192);
    if (p->n_threads < 0 || p->n_threads > 1024)
        return gm_fail(err, GEMMA_E_INVALID_ARG, "n_threads %d is outside 0..1024", (int)p->n_threads);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    s->n_threads = p->n_threads ? p->n_threads : (int32_t)GM_MAX(1, GM_MIN(cpus, 256));
    if (p->n_batch < 0)
        return gm_fail(err, GEMMA_E_INVALID_ARG, "n_batch %d is negative", (int)p->n_batch);
    s->n_batch = GM_MIN(p->n_batch ? p->n_batch : 512, s->n_ctx);
    if (p->overflow != GEMMA_OVERFLOW_ERROR && p->overflow != GEMMA_OVERFLOW_KEEP_RECENT)
        return gm_fail(err, GEMMA_E_INVALID_ARG, "unknown overflow policy %d", (int)p->overflow);
    s->overflow = p->overflow;
    *isa = gm_isa_detect();
    if (p->isa) {
        *isa = gm_isa_from_name(p->isa);
        if (*isa == GM_ISA_COUNT)
            return gm_fail(err, GEMMA_E_INVALID_ARG, "unknown kernel set '%s'", p->isa);
        if (!gm_isa_supported(*isa))
            return gm_fail(err, GEMMA_E_UNSUPPORTED, "kernel set '%s' is not supported by this CPU", p->isa);
    }
    return GEMMA_OK;
}

gemma_status gemma_session_create(gemma_model *model, const gemma_session_params *params,
                                  gemma_session **out, gemma_error *err)
{
    if (!out)
        return gm_fail(err, GEMMA_E_INVALID_ARG, "gemma_session_create: out is NULL");
    *out = NULL;
    if (!model)
        return gm_fail(err, GEMMA_E_INVALID_ARG, "gemma_session_create: model is NULL");
    gemma_session_params p = session_defaults;
    if (params && gm_abi_read(&p, sizeof p, params, SESSION_PARAMS_MIN, "gemma_session_params", err))
        return GEMMA_E_INVALID_ARG;
    gemma_session *s = calloc(1, sizeof *s);
    if (!s)
        return gm_fail(err, GEMMA_E_NOMEM, "out of memory allocating the session");
    s->model = model;
    gm_chat_params_read(NULL, &s->chat, NULL);
    atomic_init(&s->cancel, 0);
    atomic_init(&s->busy, GM_IDLE);
    gm_isa isa = GM_ISA_SCALAR;
    gemma_status st = resolve_params(model, &p, s, &isa, err);
    if (!st)
        st = gm_compute_create(s->n_threads, isa, &s->c, err);
    if (!st)
        st = gm_kvcache_create(model, s->n_ctx, s->n_batch, &s->kv, err);
    if (!st)
        st = model->ops->scratch_create(model, s->n_batch, s->n_ctx, s->n_threads, &s->scratch, err);
    if (!st) {
        s->history = gm_malloc_array((size_t)s->n_ctx, sizeof *s->history);
        s->logits = gm_malloc_array((size_t)model->hp.n_vocab, sizeof *s->logits);
        if (!s->history || !s->logits)
            st = gm_fail(err, GEMMA_E_NOMEM, "out of memory allocating the session buffers");
    }
    if (st) {
        gemma_session_free(s);
        return st;
    }
    *out = s;
    return GEMMA_OK;
}

const char *gemma_session_last_error(const gemma_session *s) { return s ? s->err.message : ""; }

static gemma_status reset_locked(gemma_session *s)
{
    s->n_past = 0;
    s->has_logits = false;
    s->in_model_turn = false;
    s->n_prompt_tokens = s->n_gen_tokens = 0;
    s->prompt_seconds = s->gen_seconds = 0.0;
    clear_error(s);
    return GEMMA_OK;
}

int32_t gemma_session_n_past(const gemma_session *s) { return s ? s->n_past : 0; }

const gemma_token *gemma_session_tokens(const gemma_session *s, int32_t *n)
{
    if (n)
        *n = s ? s->n_past : 0;
    return s ? s->history : NULL;
}

/* Whether every sliding-window ring still holds the window before position n_keep: the
 * query there reads positions n_keep - n_swa + 1 .. n_keep - 1, and a ring of `cells`
 * holds the last `cells` positions written. */
static bool window_kept(const gemma_session *s, int32_t n_keep)
{
    const gemma_model *m = s->model;
    if (n_keep == 0)
        return true;
    for (int32_t il = 0; il < m->hp.n_layer; il++) {
        const gm_kv_layer *L = &s->kv->layer[il];
        if (!m->layers[il].is_swa || !L->owned || s->n_past <= L->cells)
            continue;
        if ((int64_t)n_keep - m->hp.n_swa + 1 < (int64_t)s->n_past - L->cells)
            return false;
    }
    return true;
}

static gemma_status rewind_locked(gemma_session *s, int32_t n_keep)
{
    clear_error(s);
    if (n_keep < 0 || n_keep > s->n_past)
        return gm_session_fail(s, GEMMA_E_INVALID_ARG, "rewind to %d tokens: the session holds %d", (int)n_keep,
                               (int)s->n_past);
    if (!window_kept(s, n_keep))
        return gm_session_fail(s, GEMMA_E_UNSUPPORTED,
                               "rewind from %d to %d tokens: the sliding-window cache no longer holds the "
                               "positions before %d; reset the session and evaluate the prompt again",
                               (int)s->n_past, (int)n_keep, (int)n_keep);
    if (n_keep < s->n_past) {
        s->n_past = n_keep;
        s->has_logits = false;
        s->in_model_turn = false;
    }
    return GEMMA_OK;
}

const float *gemma_session_logits(const gemma_session *s)
{
    return s && s->has_logits ? s->logits : NULL;
}

void gemma_session_cancel(gemma_session *s)
{
    if (s) /* a lock-free atomic store: safe from a signal handler */
        atomic_store_explicit(&s->cancel, 1, memory_order_relaxed);
}

/* Evaluates tokens that fit after n_past, n_batch at a time. */
static gemma_status eval_fit(gemma_session *s, const gemma_token *tokens, size_t n, float *logits_all)
{
    const gemma_model *m = s->model;
    const size_t V = (size_t)m->hp.n_vocab;
    gm_exec ex = {s->c, s->kv, s->scratch, &s->cancel};
    for (size_t i = 0; i < n;) {
        if (atomic_load_explicit(&s->cancel, memory_order_relaxed))
            return gm_session_fail(s, GEMMA_E_CANCELLED, "evaluation cancelled");
        const int32_t nb = (int32_t)GM_MIN(n - i, (size_t)s->n_batch);
        gm_batch b = {.tokens = tokens + i, .n = nb, .pos0 = s->n_past, .logits_all = logits_all != NULL,
                      .logits = logits_all ? logits_all + i * V : s->logits};
        s->has_logits = false;
        gemma_status st = m->ops->forward(m, &ex, &b, &s->err);
        if (st)
            return st;
        if (logits_all)
            memcpy(s->logits, logits_all + (i + (size_t)nb - 1) * V, V * sizeof(float));
        memcpy(s->history + s->n_past, tokens + i, (size_t)nb * sizeof *tokens);
        s->n_past += nb;
        s->has_logits = true;
        i += (size_t)nb;
    }
    return GEMMA_OK;
}

/* KEEP_RECENT: restart from the most recent tokens that fit (BOS kept in front). */
static gemma_status eval_keep_recent(gemma_session *s, const gemma_token *tokens, size_t n,
                                     float *logits_all)
{
    const size_t total = (size_t)s->n_past + n, V = (size_t)s->model->hp.n_vocab;
    const gemma_token first = s->n_past ? s->history[0] : tokens[0];
    const size_t keep_bos = (s->n_ctx >= 2 && first == gemma_token_bos(s->model)) ? 1 : 0;
    const size_t tail = (size_t)s->n_ctx - keep_bos, start = total - tail;
    const size_t first_new = start > (size_t)s->n_past ? start - (size_t)s->n_past : 0;
    gemma_token *seq = gm_malloc_array((size_t)s->n_ctx, sizeof *seq);
    if (!seq)
        return gm_session_fail(s, GEMMA_E_NOMEM, "out of memory truncating the context");
    size_t len = 0;
    if (keep_bos)
        seq[len++] = first;
    for (size_t j = start; j < (size_t)s->n_past; j++)
        seq[len++] = s->history[j];
    size_t n_prefix = len; /* old tokens (and BOS) are evaluated without logits */
    for (size_t j = first_new; j < n; j++)
        seq[len++] = tokens[j];
    s->n_past = 0;
    s->has_logits = false;
    gemma_status st = eval_fit(s, seq, n_prefix, NULL);
    if (!st)
        st = eval_fit(s, seq + n_prefix, len - n_prefix, logits_all ? logits_all + first_new * V : NULL);
    if (!st && logits_all) /* rows of dropped tokens were never computed */
        memset(logits_all, 0, first_new * V * sizeof(float));
    free(seq);
    return st;
}

gemma_status gm_session_eval(gemma_session *s, const gemma_token *tokens, size_t n,
                             float *logits_all, bool gen)
{
    if (n == 0)
        return GEMMA_OK;
    if (!tokens)
        return gm_session_fail(s, GEMMA_E_INVALID_ARG, "tokens is NULL");
    for (size_t i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= s->model->hp.n_vocab)
            return gm_session_fail(s, GEMMA_E_INVALID_ARG, "token %zu: id %d is outside the vocabulary (0..%d)",
                                   i, (int)tokens[i], (int)s->model->hp.n_vocab - 1);
    const double t0 = gm_now();
    gemma_status st;
    if (n <= (size_t)(s->n_ctx - s->n_past))
        st = eval_fit(s, tokens, n, logits_all);
    else if (s->overflow == GEMMA_OVERFLOW_KEEP_RECENT)
        st = eval_keep_recent(s, tokens, n, logits_all);
    else
        st = gm_session_fail(s, GEMMA_E_CONTEXT_FULL,
                             "%zu tokens do not fit: %d of the %d context positions are in use",
                             n, (int)s->n_past, (int)s->n_ctx);
    const double dt = gm_now() - t0;
    if (!gen) { /* generate() times its whole loop itself */
        s->prompt_seconds += dt;
        s->n_prompt_tokens += (int64_t)n;
    }
    return st;
}

static gemma_status eval_locked(gemma_session *s, const gemma_token *tokens, size_t n, float *logits_all)
{
    atomic_store_explicit(&s->cancel, 0, memory_order_relaxed);
    clear_error(s);
    return gm_session_eval(s, tokens, n, logits_all, false);
}

/* Tokenizes text (two passes when the first guess of the size is too small). */
static gemma_status tokenize(gemma_session *s, const char *text, size_t len, bool add_bos,
                             gemma_token **out, size_t *n)
{
    size_t cap = len + 16;
    *out = NULL;
    for (int pass = 0; pass < 2; pass++) {
        gemma_token *buf = gm_malloc_array(cap, sizeof *buf);
        if (!buf)
            return gm_session_fail(s, GEMMA_E_NOMEM, "out of memory tokenizing");
        gemma_status st = gemma_tokenize(s->model, text, len, add_bos, true, buf, cap, n);
        if (st == GEMMA_OK) {
            *out = buf;
            return GEMMA_OK;
        }
        free(buf);
        if (st != GEMMA_E_BUFFER_TOO_SMALL)
            return gm_session_fail(s, st, "tokenizing the input failed: %s", gemma_strerror(st));
        cap = *n;
    }
    return gm_session_fail(s, GEMMA_E_INTERNAL, "tokenizer size changed between passes");
}

static gemma_status feed_text_locked(gemma_session *s, const char *text, size_t len)
{
    atomic_store_explicit(&s->cancel, 0, memory_order_relaxed);
    clear_error(s);
    if (!text && len)
        return gm_session_fail(s, GEMMA_E_INVALID_ARG, "text is NULL");
    gemma_token *ids;
    size_t n;
    gemma_status st = tokenize(s, text ? text : "", len, s->n_past == 0, &ids, &n);
    if (st)
        return st;
    st = gm_session_eval(s, ids, n, NULL, false);
    free(ids);
    return st;
}

/* Tokens of the new turns: the close of an open model turn (the session's own marker),
 * then the messages, whose content is text unless the chat params trust it. */
static gemma_status chat_tokens(gemma_session *s, const gemma_chat_message *msgs, size_t n_msgs, gm_tokens *out)
{
    const gm_vocab *v = gm_model_vocab(s->model);
    const char *close = s->in_model_turn ? s->model->ops->turn_end : "";
    gemma_chat_params p = s->chat;
    p.add_bos = s->n_past == 0;
    p.add_generation_prompt = true;
    gemma_status st = gm_tokenize(v, close, strlen(close), false, true, out, &s->err);
    if (!st)
        st = gm_chat_tokenize_model(s->model, msgs, n_msgs, &p, s->n_past > 0, out, &s->err);
    if (!st && out->n == 0) /* feed_chat refuses empty message lists earlier */
        st = gm_session_fail(s, GEMMA_E_INTERNAL, "the chat rendered to no tokens");
    return st;
}

static gemma_status feed_chat_locked(gemma_session *s, const gemma_chat_message *msgs, size_t n_msgs)
{
    atomic_store_explicit(&s->cancel, 0, memory_order_relaxed);
    clear_error(s);
    if (!msgs || n_msgs == 0)
        return gm_session_fail(s, GEMMA_E_INVALID_ARG, "no chat messages");
    gm_tokens ids = {0};
    gemma_status st = chat_tokens(s, msgs, n_msgs, &ids);
    if (!st)
        st = gm_session_eval(s, ids.ids, ids.n, NULL, false);
    gm_tokens_free(&ids);
    if (!st)
        s->in_model_turn = true;
    return st;
}

static gemma_status set_chat_params_locked(gemma_session *s, const gemma_chat_params *params)
{
    gemma_chat_params p;
    if (gm_chat_params_read(params, &p, &s->err))
        return GEMMA_E_INVALID_ARG;
    char *tools = p.tools ? strdup(p.tools) : NULL;
    if (p.tools && !tools)
        return gm_session_fail(s, GEMMA_E_NOMEM, "out of memory copying the tools");
    free(s->chat_tools);
    s->chat_tools = tools;
    p.tools = tools;
    s->chat = p;
    return GEMMA_OK;
}

gemma_status gemma_session_set_chat_params(gemma_session *s, const gemma_chat_params *params)
{
    GM_SESSION_CALL(s, set_chat_params_locked(s, params));
}

gemma_status gemma_session_reset(gemma_session *s) { GM_SESSION_CALL(s, reset_locked(s)); }

gemma_status gemma_session_rewind(gemma_session *s, int32_t n_keep)
{
    GM_SESSION_CALL(s, rewind_locked(s, n_keep));
}

gemma_status gemma_session_eval(gemma_session *s, const gemma_token *tokens, size_t n, float *logits_all)
{
    GM_SESSION_CALL(s, eval_locked(s, tokens, n, logits_all));
}

gemma_status gemma_session_feed_text(gemma_session *s, const char *text, size_t len)
{
    GM_SESSION_CALL(s, feed_text_locked(s, text, len));
}

gemma_status gemma_session_feed_chat(gemma_session *s, const gemma_chat_message *msgs, size_t n_msgs)
{
    GM_SESSION_CALL(s, feed_chat_locked(s, msgs, n_msgs));
}

gemma_status gemma_session_get_stats(const gemma_session *s, gemma_session_stats *out)
{
    if (!s || !out)
        return GEMMA_E_INVALID_ARG;
    gemma_session_stats full = {.size = sizeof full}, *st = &full;
    st->n_ctx = s->n_ctx;
    st->n_past = s->n_past;
    st->n_threads = gm_compute_threads(s->c);
    st->isa = gm_isa_name(gm_compute_kernels(s->c)->isa);
    st->kv_bytes = s->kv->bytes;
    st->kv_bytes_full = s->kv->bytes_full;
    st->n_prompt_tokens = s->n_prompt_tokens;
    st->n_gen_tokens = s->n_gen_tokens;
    st->prompt_seconds = s->prompt_seconds;
    st->gen_seconds = s->gen_seconds;
    return gm_abi_write(out, out->size, st, sizeof *st, GM_ABI_MIN(gemma_session_stats, gen_seconds));
}
