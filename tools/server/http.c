/* HTTP with libmicrohttpd: a thread per connection, so a request may block while it waits
 * for a session and while it generates. A streamed response is fed by a generation thread
 * through a small byte queue; when the client goes away, libmicrohttpd frees the response
 * and that cancels the generation and returns the session to the pool. */
#include "server.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netdb.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

#define MAX_BODY ((size_t)16 << 20)

typedef struct server {
    const serve_config *cfg;
    serve_slots *slots;
    long started;
    atomic_ulong next_id;
    atomic_int waiting; /* requests waiting for a session */
    serve_metrics metrics;
} server;

struct route_entry;

/* One request: its body as it arrives. */
typedef struct conn {
    const struct route_entry *route; /* set once its headers passed the checks */
    const char *url;
    char *body;
    size_t len, cap;
    bool too_big;
} conn;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- plain responses ----------------------------------------------------------------- */

static void add_common_headers(const server *srv, struct MHD_Connection *c, struct MHD_Response *r,
                               const char *type)
{
    MHD_add_response_header(r, "Content-Type", type);
    /* only origins named with --cors: any other web page must not read the answers */
    const char *origin = guard_cors(srv->cfg, MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin"));
    if (origin) {
        MHD_add_response_header(r, "Access-Control-Allow-Origin", origin);
        MHD_add_response_header(r, "Vary", "Origin");
    }
}

/* Queues body (malloc'd, taken over; NULL = out of memory) with the given status. */
static enum MHD_Result send_json(const server *srv, struct MHD_Connection *c, unsigned status, char *body)
{
    static const char oom[] = "{\"error\":{\"message\":\"out of memory\",\"type\":\"server_error\"}}";
    struct MHD_Response *r =
        body ? MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE)
             : MHD_create_response_from_buffer(sizeof oom - 1, (void *)oom, MHD_RESPMEM_PERSISTENT);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    add_common_headers(srv, c, r, "application/json");
    if (status == MHD_HTTP_SERVICE_UNAVAILABLE)
        MHD_add_response_header(r, "Retry-After", "1");
    enum MHD_Result ret = MHD_queue_response(c, body ? status : MHD_HTTP_INTERNAL_SERVER_ERROR, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result send_error(const server *srv, struct MHD_Connection *c, unsigned status, const char *msg,
                                  const char *param)
{
    const char *type = status == 401 ? "authentication_error"
                       : status >= 500 ? "server_error"
                                       : "invalid_request_error";
    return send_json(srv, c, status, openai_error(msg, type, param));
}

static enum MHD_Result send_preflight(const server *srv, struct MHD_Connection *c)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    add_common_headers(srv, c, r, "text/plain");
    MHD_add_response_header(r, "Access-Control-Allow-Methods", "GET, POST, OPTIONS");
    MHD_add_response_header(r, "Access-Control-Allow-Headers", "Authorization, Content-Type");
    enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_NO_CONTENT, r);
    MHD_destroy_response(r);
    return ret;
}

/* ---- generation ---------------------------------------------------------------------- */

typedef struct text_buf {
    char *p;
    size_t len, cap;
} text_buf;

static bool buf_add(text_buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->len + n + 1) * 2;
        char *p = realloc(b->p, cap);
        if (!p)
            return false;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
    return true;
}

/* Tokens of a chat: the template's markers are control tokens, message content is text
 * (a message cannot forge a turn). Two passes when the first guess is too small. */
static gemma_status chat_prompt(gemma_model *m, const serve_request *r, gemma_token **out, size_t *n, char *err,
                                size_t cap)
{
    gemma_chat_params p;
    gemma_chat_params_init(&p, sizeof p);
    p.tools = r->tools;
    p.enable_thinking = r->thinking;
    gemma_error e = {0};
    gemma_status st = GEMMA_E_BUFFER_TOO_SMALL;
    for (size_t want = 256, pass = 0; pass < 2 && st == GEMMA_E_BUFFER_TOO_SMALL; pass++) {
        free(*out);
        if (!(*out = malloc(want * sizeof **out)))
            return snprintf(err, cap, "out of memory"), GEMMA_E_NOMEM;
        st = gemma_chat_tokenize(m, r->msgs, r->n_msgs, &p, *out, want, n, &e);
        want = *n;
    }
    if (st)
        snprintf(err, cap, "%s", e.message[0] ? e.message : gemma_strerror(st));
    return st;
}

/* With tool_choice "required" or a named function, the answer starts as a call: the start
 * of one is placed after the prompt (the model only writes the rest). The text is what the
 * model's output parser sees first; NULL when the model chooses. */
static char *call_prefill(gemma_model *m, const serve_request *r)
{
    gemma_model_info mi = {.size = sizeof mi};
    char *t = NULL;
    if (r->tool_choice < TOOLS_REQUIRED || gemma_model_get_info(m, &mi))
        return NULL;
    const bool g4 = !strcmp(mi.architecture, "gemma4"), named = r->tool_choice == TOOLS_NAMED;
    const char *name = named ? r->tool_name : "";
    size_t n = strlen(name) + 64;
    if ((t = malloc(n)))
        snprintf(t, n, g4 ? "<|tool_call>call:%s%s" : "{\"name\": \"%s%s", name,
                 !named ? "" : g4 ? "{" : "\", \"parameters\": ");
    return t;
}

/* Appends the prefill's tokens to the prompt: Gemma 4's <|tool_call> marker as its token,
 * the rest (a client's function name among it) as text. */
static gemma_status add_prefill(gemma_model *m, const char *pre, gemma_token **out, size_t *n)
{
    static const char mark[] = "<|tool_call>";
    const bool marked = !strncmp(pre, mark, sizeof mark - 1);
    size_t len = strlen(pre), k = 0, have = *n;
    gemma_token *t = realloc(*out, (have + len + 2) * sizeof *t);
    if (!t)
        return GEMMA_E_NOMEM;
    *out = t;
    if (marked && gemma_tokenize(m, mark, sizeof mark - 1, false, true, t + have, 1, &k))
        return GEMMA_E_INTERNAL;
    const char *rest = marked ? pre + sizeof mark - 1 : pre;
    size_t nr = 0;
    gemma_status st = gemma_tokenize(m, rest, strlen(rest), false, false, t + have + k, len + 1, &nr);
    *n = have + k + nr;
    return st;
}

/* The prompt as the session would see it: the chat's tokens (with BOS), or the text with BOS
 * and control-token text parsed, as gemma_session_feed_text does. */
static gemma_status prompt_tokens(gemma_model *m, const serve_request *r, gemma_token **out, size_t *n, char *err,
                                  size_t cap)
{
    gemma_status st = GEMMA_E_BUFFER_TOO_SMALL;
    size_t len = r->kind == SERVE_COMPLETION ? strlen(r->prompt) : 0;
    *out = NULL;
    if (r->kind == SERVE_CHAT)
        st = chat_prompt(m, r, out, n, err, cap);
    if (!st && r->prefill && (st = add_prefill(m, r->prefill, out, n)))
        snprintf(err, cap, "cannot place the forced tool call: %s", gemma_strerror(st));
    for (size_t want = len + 16, pass = 0; r->kind == SERVE_COMPLETION && pass < 2; pass++) {
        free(*out);
        if (!(*out = malloc(want * sizeof **out))) {
            st = GEMMA_E_NOMEM;
            break;
        }
        st = gemma_tokenize(m, r->prompt, len, true, true, *out, want, n);
        if (st != GEMMA_E_BUFFER_TOO_SMALL)
            break;
        want = *n;
    }
    if (st && r->kind == SERVE_COMPLETION)
        snprintf(err, cap, "tokenizing the prompt failed: %s", gemma_strerror(st));
    else if (!st && *n == 0)
        snprintf(err, cap, "the prompt is empty"), st = GEMMA_E_INVALID_ARG;
    if (st) {
        free(*out);
        *out = NULL;
    }
    return st;
}

static bool client_gone(int fd)
{
    char b;
    return fd >= 0 && recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 0; /* 0 = orderly close */
}

static bool fd_gone(void *fd) { return client_gone(*(int *)fd); }

static int conn_fd(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    return ci ? ci->connect_fd : -1;
}

/* Waits for a session unless too many already wait; a client that leaves while it waits
 * gives up its place at once. NULL with *ret set when there is none. */
static gemma_session *acquire(server *srv, struct MHD_Connection *c, const gemma_token *toks, size_t n,
                              enum MHD_Result *ret)
{
    int fd = conn_fd(c);
    int ahead = atomic_fetch_add(&srv->waiting, 1);
    gemma_session *s = NULL;
    if (ahead >= srv->cfg->max_queue && slots_busy(srv->slots) == slots_count(srv->slots) &&
        (atomic_fetch_add(&srv->metrics.rejected, 1), true))
        *ret = send_error(srv, c, MHD_HTTP_SERVICE_UNAVAILABLE, "too many requests are waiting; retry later", NULL);
    else if (!(s = slots_acquire(srv->slots, toks, n, fd_gone, &fd)))
        *ret = client_gone(fd) ? MHD_NO
                               : send_error(srv, c, MHD_HTTP_SERVICE_UNAVAILABLE, "the server is shutting down", NULL);
    atomic_fetch_sub(&srv->waiting, 1);
    return s;
}

/* Takes a session and evaluates the prompt, reusing the part of the session's cache that
 * starts like it. On failure queues the error response and returns NULL (*ret holds what
 * to return to libmicrohttpd). */
static gemma_session *start(server *srv, struct MHD_Connection *c, const serve_request *r, serve_outcome *o,
                            enum MHD_Result *ret)
{
    char msg[600];
    gemma_token *toks;
    size_t n;
    gemma_status st = prompt_tokens(srv->cfg->model, r, &toks, &n, msg, sizeof msg);
    const char *param = r->kind == SERVE_CHAT ? "messages" : "prompt";
    if (st) {
        *ret = send_error(srv, c, st == GEMMA_E_NOMEM ? MHD_HTTP_INTERNAL_SERVER_ERROR : MHD_HTTP_BAD_REQUEST, msg, param);
        return NULL;
    }
    gemma_session *s = acquire(srv, c, toks, n, ret);
    if (!s) {
        free(toks);
        return NULL;
    }
    /* at least the last prompt token is evaluated again: generation needs its logits */
    size_t keep = slots_common_prefix(s, toks, n);
    keep = keep == n ? n - 1 : keep;
    if (gemma_session_rewind(s, (int32_t)keep) != GEMMA_OK) {
        gemma_session_reset(s);
        keep = 0;
    }
    double te = now_s();
    st = gemma_session_eval(s, toks + keep, n - keep, NULL);
    atomic_fetch_add(&srv->metrics.prefill_us, (unsigned long long)((now_s() - te) * 1e6));
    free(toks);
    *o = (serve_outcome){.prompt_tokens = (int32_t)n, .cached_tokens = (int32_t)keep};
    if (st == GEMMA_OK)
        return s;
    const char *why = gemma_session_last_error(s);
    snprintf(msg, sizeof msg, "%s", why && *why ? why : gemma_strerror(st));
    gemma_session_reset(s); /* its cache no longer matches any prompt we could reuse */
    slots_release(srv->slots, s);
    bool client = st == GEMMA_E_CONTEXT_FULL || st == GEMMA_E_INVALID_ARG;
    *ret = send_error(srv, c, client ? MHD_HTTP_BAD_REQUEST : MHD_HTTP_INTERNAL_SERVER_ERROR, msg, param);
    return NULL;
}

/* A plain (not streamed) answer: the text so far, and the client's socket, looked at now
 * and then so that a client that gave up does not keep a session busy. */
typedef struct plain_gen {
    serve_answer a;
    int fd; /* -1: unknown */
    int n;
} plain_gen;

static int collect_token(void *user, const char *text, size_t len, gemma_token tok)
{
    (void)tok;
    plain_gen *g = user;
    if (++g->n % 16 == 0 && client_gone(g->fd))
        return 1;
    return answer_push(&g->a, text, len);
}

/* Counts a served request in the metrics, and logs it with -v. */
static void log_request(server *srv, const serve_request *r, const serve_outcome *o, double t0, double decode_s)
{
    serve_metrics *m = &srv->metrics;
    atomic_fetch_add(&m->requests, 1);
    atomic_fetch_add(&m->prompt_tokens, (unsigned long long)o->prompt_tokens);
    atomic_fetch_add(&m->cached_tokens, (unsigned long long)o->cached_tokens);
    atomic_fetch_add(&m->generated_tokens, (unsigned long long)o->completion_tokens);
    atomic_fetch_add(&m->decode_us, (unsigned long long)(decode_s * 1e6));
    if (srv->cfg->verbose)
        fprintf(stderr, "gemma serve: %s%s: %d prompt (%d cached) + %d generated tokens in %.2f s (%s)\n",
                r->kind == SERVE_CHAT ? "chat" : "completion", r->stream ? " (stream)" : "", o->prompt_tokens,
                o->cached_tokens, o->completion_tokens, now_s() - t0, openai_finish_reason(o->stop));
}

static enum MHD_Result complete_plain(server *srv, struct MHD_Connection *c, serve_request *r, const char *id)
{
    double t0 = now_s();
    enum MHD_Result ret = MHD_NO;
    serve_outcome o;
    gemma_session *s = start(srv, c, r, &o, &ret);
    if (!s)
        return ret;
    plain_gen g = {.fd = conn_fd(c)};
    double decode_s = 0;
    gemma_status st = GEMMA_E_NOMEM;
    gemma_generate_result res = {.size = sizeof res};
    if (answer_init(&g.a, srv->cfg, r, id, (long)time(NULL), NULL, NULL, r->prefill)) {
        r->gen.on_token = collect_token;
        r->gen.user = &g;
        r->gen.sampling = &r->sampling;
        double td = now_s();
        st = gemma_session_generate(s, &r->gen, &res);
        decode_s = now_s() - td;
    }
    char msg[600];
    snprintf(msg, sizeof msg, "%s", st ? gemma_session_last_error(s) : "");
    slots_release(srv->slots, s);
    answer_finish(&g.a, &o);
    o.stop = res.stop_reason;
    o.completion_tokens = res.n_tokens;
    log_request(srv, r, &o, t0, decode_s);
    char *body = st || g.a.failed ? NULL : openai_response(srv->cfg, r, id, (long)time(NULL), &o);
    answer_free(&g.a);
    if (st)
        return send_error(srv, c, MHD_HTTP_INTERNAL_SERVER_ERROR, *msg ? msg : gemma_strerror(st), NULL);
    return send_json(srv, c, MHD_HTTP_OK, body);
}

/* ---- streaming ----------------------------------------------------------------------- */

typedef struct stream_job {
    server *srv;
    serve_request req;
    gemma_session *s;
    char id[48];
    long created;
    serve_outcome o;
    double t0;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    serve_answer a;
    text_buf q;   /* events not yet sent: q.p[off .. len) */
    size_t off;
    bool done;
    atomic_bool gone; /* the client disconnected */
    pthread_t th;
} stream_job;

/* Appends one event (taken over; NULL is ignored) for the reader. */
static void push_event(stream_job *j, char *ev)
{
    if (!ev)
        return;
    pthread_mutex_lock(&j->mu);
    buf_add(&j->q, ev, strlen(ev));
    pthread_mutex_unlock(&j->mu);
    pthread_cond_signal(&j->cv);
    free(ev);
}

static int stream_token(void *user, const char *text, size_t len, gemma_token tok)
{
    (void)tok;
    stream_job *j = user;
    if (atomic_load(&j->gone))
        return 1;
    return answer_push(&j->a, text, len);
}

static void sink_event(void *user, char *ev) { push_event(user, ev); }

static void *stream_worker(void *arg)
{
    stream_job *j = arg;
    const serve_config *cfg = j->srv->cfg;
    j->req.gen.on_token = stream_token;
    j->req.gen.user = j;
    j->req.gen.sampling = &j->req.sampling;
    gemma_generate_result res = {.size = sizeof res};
    double td = now_s();
    gemma_status st = gemma_session_generate(j->s, &j->req.gen, &res);
    double decode_s = now_s() - td;
    answer_finish(&j->a, &j->o); /* sends what was held back */
    j->o.stop = res.stop_reason;
    j->o.completion_tokens = res.n_tokens;
    j->o.text = "";
    if (st) {
        const char *why = gemma_session_last_error(j->s);
        size_t n = strlen("data: \n\n") + 1;
        char *e = openai_error(why && *why ? why : gemma_strerror(st), "server_error", NULL);
        char *ev = e ? malloc(strlen(e) + n) : NULL;
        if (ev)
            sprintf(ev, "data: %s\n\n", e);
        free(e);
        push_event(j, ev);
    } else {
        push_event(j, openai_chunk(cfg, &j->req, j->id, j->created, "", 0, false, &j->o));
        if (j->req.include_usage)
            push_event(j, openai_usage_chunk(cfg, &j->req, j->id, j->created, &j->o));
    }
    push_event(j, strdup("data: [DONE]\n\n"));
    log_request(j->srv, &j->req, &j->o, j->t0, decode_s);
    /* The session goes back now, not when the client has read everything: a chat's next
     * turn, sent as soon as [DONE] arrives, should find it (and its cache) free. */
    pthread_mutex_lock(&j->mu);
    slots_release(j->srv->slots, j->s);
    j->s = NULL;
    j->done = true;
    pthread_mutex_unlock(&j->mu);
    pthread_cond_signal(&j->cv);
    return NULL;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    stream_job *j = cls;
    pthread_mutex_lock(&j->mu);
    while (j->off == j->q.len && !j->done)
        pthread_cond_wait(&j->cv, &j->mu);
    ssize_t n = MHD_CONTENT_READER_END_OF_STREAM;
    if (j->off < j->q.len) {
        size_t k = j->q.len - j->off < max ? j->q.len - j->off : max;
        memcpy(buf, j->q.p + j->off, k);
        j->off += k;
        if (j->off == j->q.len)
            j->off = j->q.len = 0;
        n = (ssize_t)k;
    }
    pthread_mutex_unlock(&j->mu);
    return n;
}

/* Called by libmicrohttpd when the response is done with, finished or not. */
static void stream_free(void *cls)
{
    stream_job *j = cls;
    atomic_store(&j->gone, true);
    pthread_mutex_lock(&j->mu);
    if (j->s) /* still generating: stop it (the worker then returns the session) */
        gemma_session_cancel(j->s);
    pthread_mutex_unlock(&j->mu);
    pthread_join(j->th, NULL);
    answer_free(&j->a);
    openai_request_free(&j->req);
    free(j->q.p);
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cv);
    free(j);
}

static enum MHD_Result complete_stream(server *srv, struct MHD_Connection *c, serve_request *r, const char *id)
{
    double t0 = now_s();
    enum MHD_Result ret = MHD_NO;
    stream_job *j = calloc(1, sizeof *j);
    if (!j) {
        openai_request_free(r);
        return send_json(srv, c, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL);
    }
    if (!(j->s = start(srv, c, r, &j->o, &ret))) {
        openai_request_free(r);
        free(j);
        return ret;
    }
    j->srv = srv;
    j->req = *r; /* the job owns the request from here */
    memset(r, 0, sizeof *r);
    snprintf(j->id, sizeof j->id, "%s", id);
    j->created = (long)time(NULL);
    j->t0 = t0;
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, NULL);
    if (j->req.kind == SERVE_CHAT) /* the assistant role first, as OpenAI does */
        push_event(j, openai_chunk(srv->cfg, &j->req, j->id, j->created, "", 0, true, NULL));
    bool ok = answer_init(&j->a, srv->cfg, &j->req, j->id, j->created, sink_event, j, j->req.prefill);
    if (!ok || pthread_create(&j->th, NULL, stream_worker, j)) {
        answer_free(&j->a);
        slots_release(srv->slots, j->s);
        openai_request_free(&j->req);
        free(j->q.p);
        pthread_mutex_destroy(&j->mu);
        pthread_cond_destroy(&j->cv);
        free(j);
        return send_error(srv, c, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot start a generation thread", NULL);
    }
    struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, stream_read, j,
                                                                  stream_free);
    if (!resp) {
        stream_free(j);
        return MHD_NO;
    }
    add_common_headers(srv, c, resp, "text/event-stream");
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    ret = MHD_queue_response(c, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result complete(server *srv, struct MHD_Connection *c, serve_kind kind, const conn *k)
{
    serve_request r;
    char err[512];
    const char *body = k->body ? k->body : "";
    if (!ops_check_body(body, k->len, err, sizeof err))
        return send_error(srv, c, MHD_HTTP_BAD_REQUEST, err, NULL);
    if (!openai_parse(srv->cfg, kind, body, k->len, &r, err, sizeof err)) {
        openai_request_free(&r);
        return send_error(srv, c, MHD_HTTP_BAD_REQUEST, err, NULL);
    }
    if (!ops_model_known(srv->cfg, body, k->len)) {
        openai_request_free(&r);
        snprintf(err, sizeof err, "this server serves the model \"%s\" only (see --alias)", srv->cfg->model_id);
        return send_json(srv, c, MHD_HTTP_NOT_FOUND, ops_error(err, "invalid_request_error", "model",
                                                               "model_not_found"));
    }
    if (r.tool_choice >= TOOLS_REQUIRED && !(r.prefill = call_prefill(srv->cfg->model, &r))) {
        openai_request_free(&r);
        return send_json(srv, c, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL);
    }
    int32_t cap = srv->cfg->max_tokens_cap;
    if (cap > 0 && (r.gen.max_tokens <= 0 || r.gen.max_tokens > cap))
        r.gen.max_tokens = cap;
    char id[48];
    snprintf(id, sizeof id, "%s-%lx%04lx", kind == SERVE_CHAT ? "chatcmpl" : "cmpl", (unsigned long)srv->started,
             (unsigned long)atomic_fetch_add(&srv->next_id, 1));
    if (r.stream)
        return complete_stream(srv, c, &r, id);
    enum MHD_Result ret = complete_plain(srv, c, &r, id);
    openai_request_free(&r);
    return ret;
}

/* ---- routing ------------------------------------------------------------------------- */

static char *health_json(server *srv)
{
    char *s = malloc(128);
    if (s)
        snprintf(s, 128, "{\"status\":\"ok\",\"slots_idle\":%d,\"slots_processing\":%d}",
                 slots_count(srv->slots) - slots_busy(srv->slots), slots_busy(srv->slots));
    return s;
}

/* The endpoints, each named once. A path answers on /v1/PATH and on PATH. */
typedef enum MHD_Result (*handler)(server *srv, struct MHD_Connection *c, const conn *k);

static enum MHD_Result h_health(server *srv, struct MHD_Connection *c, const conn *k)
{
    (void)k;
    return send_json(srv, c, MHD_HTTP_OK, health_json(srv));
}

static enum MHD_Result h_models(server *srv, struct MHD_Connection *c, const conn *k)
{
    (void)k;
    return send_json(srv, c, MHD_HTTP_OK, openai_models(srv->cfg, srv->started));
}

static enum MHD_Result h_chat(server *srv, struct MHD_Connection *c, const conn *k)
{
    return complete(srv, c, SERVE_CHAT, k);
}

static enum MHD_Result h_completions(server *srv, struct MHD_Connection *c, const conn *k)
{
    return complete(srv, c, SERVE_COMPLETION, k);
}

static enum MHD_Result h_model(server *srv, struct MHD_Connection *c, const conn *k)
{
    const char *id = strstr(k->url, "/models/") + strlen("/models/");
    if (strcmp(id, srv->cfg->model_id) && (!srv->cfg->file_id || strcmp(id, srv->cfg->file_id)))
        return send_json(srv, c, MHD_HTTP_NOT_FOUND, ops_error("no such model on this server (GET /v1/models lists it)",
                                                               "invalid_request_error", "model", "model_not_found"));
    return send_json(srv, c, MHD_HTTP_OK, ops_model(srv->cfg, srv->started));
}

static enum MHD_Result h_metrics(server *srv, struct MHD_Connection *c, const conn *k)
{
    (void)k;
    char *text = ops_metrics(&srv->metrics, atomic_load(&srv->waiting), slots_busy(srv->slots),
                             slots_count(srv->slots));
    struct MHD_Response *r = text ? MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE) : NULL;
    if (!r) {
        free(text);
        return send_json(srv, c, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL);
    }
    add_common_headers(srv, c, r, "text/plain; version=0.0.4");
    enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ret;
}

/* /tokenize and /detokenize: strict body, then ops.c. */
static enum MHD_Result tokens_op(server *srv, struct MHD_Connection *c, const conn *k,
                                 char *(*op)(const serve_config *, const char *, size_t, char *, size_t))
{
    char err[512];
    const char *body = k->body ? k->body : "";
    if (!ops_check_body(body, k->len, err, sizeof err))
        return send_error(srv, c, MHD_HTTP_BAD_REQUEST, err, NULL);
    char *out = op(srv->cfg, body, k->len, err, sizeof err);
    if (!out)
        return send_error(srv, c, MHD_HTTP_BAD_REQUEST, err, op == ops_tokenize ? "content" : "tokens");
    return send_json(srv, c, MHD_HTTP_OK, out);
}

static enum MHD_Result h_tokenize(server *srv, struct MHD_Connection *c, const conn *k)
{
    return tokens_op(srv, c, k, ops_tokenize);
}

static enum MHD_Result h_detokenize(server *srv, struct MHD_Connection *c, const conn *k)
{
    return tokens_op(srv, c, k, ops_detokenize);
}

static enum MHD_Result h_embeddings(server *srv, struct MHD_Connection *c, const conn *k)
{
    (void)k;
    return send_json(srv, c, MHD_HTTP_NOT_FOUND,
                     ops_error("embeddings are not served: the Gemma models gemma serve runs are generative",
                               "invalid_request_error", "model", "model_not_found"));
}

/* prefix: path is the start of the URL's path and the rest names something (a model). */
typedef struct route_entry {
    const char *method, *path;
    bool prefix, needs_auth, has_body;
    handler fn;
} route_entry;

static const route_entry routes[] = {
    {"GET", "/health", false, false, false, h_health},
    {"HEAD", "/health", false, false, false, h_health},
    {"GET", "/models", false, true, false, h_models},
    {"GET", "/models/", true, true, false, h_model},
    {"POST", "/chat/completions", false, true, true, h_chat},
    {"POST", "/completions", false, true, true, h_completions},
    {"POST", "/embeddings", false, true, true, h_embeddings},
    {"POST", "/tokenize", false, true, true, h_tokenize},
    {"POST", "/detokenize", false, true, true, h_detokenize},
    {"GET", "/metrics", false, true, false, h_metrics},
};

/* The route for path and method; *known tells whether the path exists under any method. */
static const route_entry *find_route(const char *url, const char *method, bool *known)
{
    const char *path = !strncmp(url, "/v1/", 4) ? url + 3 : url;
    *known = false;
    for (size_t i = 0; i < sizeof routes / sizeof *routes; i++) {
        const route_entry *e = &routes[i];
        if (e->prefix ? strncmp(path, e->path, strlen(e->path)) || !path[strlen(e->path)] : strcmp(path, e->path))
            continue;
        *known = true;
        if (!strcmp(method, routes[i].method))
            return &routes[i];
    }
    return NULL;
}

/* The checks made from the headers alone, before any of the body is read: an answer that
 * needs no body is sent at once and the body is never buffered. NULL: the route to serve. */
static const route_entry *check_headers(server *srv, struct MHD_Connection *c, const char *url,
                                        const char *method, enum MHD_Result *ret)
{
    const serve_config *cfg = srv->cfg;
    bool known;
    const route_entry *e = find_route(url, method, &known);
    const char *len = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
    if (!guard_host_ok(cfg, MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Host")))
        *ret = send_error(srv, c, MHD_HTTP_FORBIDDEN, "the Host header does not name this server (see --allow-host)",
                          "Host");
    else if (!strcmp(method, "OPTIONS"))
        *ret = send_preflight(srv, c);
    else if (!known)
        *ret = send_error(srv, c, MHD_HTTP_NOT_FOUND,
                          "no such endpoint; try POST /v1/chat/completions, POST /v1/completions, GET /v1/models or "
                          "GET /health", NULL);
    else if ((!e || e->needs_auth) &&
             !guard_key_ok(cfg->api_key, MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization")))
        *ret = send_error(srv, c, MHD_HTTP_UNAUTHORIZED,
                          "missing or wrong API key (send \"Authorization: Bearer KEY\")", "Authorization");
    else if (!e)
        *ret = send_error(srv, c, MHD_HTTP_METHOD_NOT_ALLOWED, "wrong method for this endpoint", NULL);
    else if (e->has_body && !guard_json_type(MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type")))
        *ret = send_error(srv, c, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, "send the body as Content-Type: application/json",
                          "Content-Type");
    else if (e->has_body && len && strtoull(len, NULL, 10) > MAX_BODY)
        *ret = send_error(srv, c, MHD_HTTP_CONTENT_TOO_LARGE, "the request body is over 16 MiB", "Content-Length");
    else
        return e;
    return NULL;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
    (void)version;
    server *srv = cls;
    conn *k = *con_cls;
    if (!k) {
        enum MHD_Result ret = MHD_NO;
        const route_entry *e = check_headers(srv, c, url, method, &ret);
        if (!e)
            return ret;
        *con_cls = k = calloc(1, sizeof *k);
        if (k)
            k->route = e, k->url = url;
        return k ? MHD_YES : MHD_NO;
    }
    if (*upload_size) {
        text_buf b = {k->body, k->len, k->cap};
        if (k->len + *upload_size > MAX_BODY)
            return MHD_NO; /* a chunked body over the cap: no answer, the connection closes */
        if (!buf_add(&b, upload, *upload_size))
            k->too_big = true;
        k->body = b.p, k->len = b.len, k->cap = b.cap;
        *upload_size = 0;
        return MHD_YES;
    }
    if (k->too_big)
        return send_error(srv, c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory reading the body", NULL);
    return k->route->fn(srv, c, k);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode t)
{
    (void)cls, (void)c, (void)t;
    conn *k = *con_cls;
    if (k)
        free(k->body);
    free(k);
    *con_cls = NULL;
}

/* ---- the daemon ---------------------------------------------------------------------- */

/* host: an address or a name such as localhost (its IPv4 address first). */
static bool make_addr(const char *host, int port, struct sockaddr_storage *ss, bool *v6)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *res = NULL, *pick = NULL;
    if (getaddrinfo(host, NULL, &hints, &res))
        return false;
    for (struct addrinfo *i = res; i; i = i->ai_next)
        if (!pick || (pick->ai_family != AF_INET && i->ai_family == AF_INET))
            pick = i;
    bool ok = pick && (pick->ai_family == AF_INET || pick->ai_family == AF_INET6);
    if (ok) {
        memset(ss, 0, sizeof *ss);
        memcpy(ss, pick->ai_addr, pick->ai_addrlen);
        *v6 = pick->ai_family == AF_INET6;
        if (*v6)
            ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
        else
            ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
    }
    freeaddrinfo(res);
    return ok;
}

/* Every connection holds a socket: take the hard limit on open files, not the soft one. */
static void raise_fd_limit(void)
{
    struct rlimit r;
    if (!getrlimit(RLIMIT_NOFILE, &r) && r.rlim_cur < r.rlim_max) {
        r.rlim_cur = r.rlim_max;
        setrlimit(RLIMIT_NOFILE, &r);
    }
}

int serve_run(const serve_config *cfg)
{
    struct sockaddr_storage addr;
    bool v6 = false;
    if (!make_addr(cfg->host, cfg->port, &addr, &v6)) {
        fprintf(stderr, "gemma serve: --host %s is not an address or name of this machine (e.g. 127.0.0.1, "
                        "localhost, 0.0.0.0, ::1)\n", cfg->host);
        return 2;
    }
    if (!cfg->api_key && !cfg->insecure_no_key && !guard_is_loopback(cfg->host)) {
        fprintf(stderr, "gemma serve: --host %s lets other machines in, and there is no API key: give one "
                        "(--api-key, --api-key-file or $GEMMA_API_KEY), or say --insecure-no-key\n", cfg->host);
        return 2;
    }
    raise_fd_limit();
    /* Ctrl-C and SIGTERM are taken with sigwait below; every thread inherits this mask. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    server srv = {.cfg = cfg, .started = (long)time(NULL)};
    if (!(srv.slots = slots_create(cfg->model, cfg->n_slots, &cfg->session)))
        return 1;
    /* poll, not select: connections beyond descriptor 1024 are served too */
    unsigned flags = MHD_USE_POLL_INTERNAL_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG |
                     (v6 ? MHD_USE_IPv6 : 0);
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, (uint16_t)cfg->port, NULL, NULL, on_request, &srv, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, &srv, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)cfg->idle_timeout_s, MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->max_connections, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "gemma serve: cannot listen on %s port %d (in use, or not an address of this machine?); "
                        "try another --port or --host\n", cfg->host, cfg->port);
        slots_free(srv.slots);
        return 1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    fprintf(stderr, "gemma serve: listening on http://%s%s%s:%u/v1 (model \"%s\", %d session%s); Ctrl-C stops\n",
            v6 ? "[" : "", cfg->host, v6 ? "]" : "", info ? info->port : (unsigned)cfg->port, cfg->model_id,
            cfg->n_slots, cfg->n_slots == 1 ? "" : "s");
    fflush(stderr);
    int sig = 0;
    sigwait(&sigs, &sig);
    fprintf(stderr, "gemma serve: stopping (%s)\n", sig == SIGINT ? "interrupt" : "terminate");
    slots_shutdown(srv.slots);
    MHD_stop_daemon(d);
    slots_free(srv.slots);
    return 0;
}
