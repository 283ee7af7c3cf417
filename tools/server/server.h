/* gemma serve: an OpenAI-compatible HTTP server over one model and a pool of sessions.
 *
 *   http.c    libmicrohttpd glue: request bodies, routing, plain and streamed responses
 *   openai.c  the JSON of the OpenAI API (cJSON): requests in, completions and chunks out
 *   slots.c   the session pool: one request per session at a time, others wait their turn
 *
 * Only gemma.h is used, like the rest of the CLI.
 */
#ifndef GEMMA_SERVER_H
#define GEMMA_SERVER_H

#include "gemma.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct serve_config {
    gemma_model *model;
    const char *model_id;  /* the "model" name clients see in /v1/models and responses */
    const char *host;      /* address to bind, "127.0.0.1" by default */
    int port;              /* 0 = any free port (printed at start) */
    int n_slots;           /* sessions, i.e. requests served at the same time */
    gemma_session_params session;
    gemma_sampler_params sampling; /* defaults for fields a request leaves out */
    bool fixed_seed;       /* requests without a seed use sampling.seed (else a fresh one each) */
    int32_t max_tokens;    /* default when a request gives none (<= 0: until the context is full) */
    const char *api_key;   /* NULL: no authentication */
    bool verbose;
} serve_config;

/* Serves until SIGINT/SIGTERM. Returns a process exit status. */
int serve_run(const serve_config *cfg);

/* ---- session pool (slots.c) ---------------------------------------------------------- */

typedef struct serve_slots serve_slots;

/* Creates n sessions; NULL after printing why not. */
serve_slots *slots_create(gemma_model *m, int n, const gemma_session_params *p);
void slots_free(serve_slots *p);
/* Waits for a free session and takes it: of the free ones, the one whose cache shares the
 * longest prefix with prompt[0..n) (its evaluation can be reused). NULL once slots_shutdown
 * was called. */
gemma_session *slots_acquire(serve_slots *p, const gemma_token *prompt, size_t n);
/* Length of the common prefix of the session's cache and prompt[0..n). */
size_t slots_common_prefix(const gemma_session *s, const gemma_token *prompt, size_t n);
void slots_release(serve_slots *p, gemma_session *s);
/* Wakes every waiter (they get NULL) and cancels every running request. */
void slots_shutdown(serve_slots *p);
int slots_count(const serve_slots *p);
int slots_busy(serve_slots *p);

/* ---- OpenAI JSON (openai.c) ---------------------------------------------------------- */

typedef enum serve_kind { SERVE_CHAT, SERVE_COMPLETION } serve_kind;

/* A parsed request. Strings point into memory owned by the request. */
typedef struct serve_request {
    serve_kind kind;
    gemma_chat_message *msgs; /* chat */
    size_t n_msgs;
    char *prompt;             /* completion */
    gemma_generate_params gen;
    char **stops;
    size_t n_stops;
    bool stream, include_usage;
    void *json;               /* the parsed document (owns the strings) */
} serve_request;

/* Parses a request body. On failure returns false with an OpenAI-style message in err
 * (cap bytes) naming the field. */
bool openai_parse(const serve_config *cfg, serve_kind kind, const char *body, size_t len, serve_request *r,
                  char *err, size_t cap);
void openai_request_free(serve_request *r);

/* The generation's outcome, for the response builders. */
typedef struct serve_outcome {
    const char *text;
    size_t len;
    gemma_stop_reason stop;
    int32_t prompt_tokens, completion_tokens;
    int32_t cached_tokens; /* prompt tokens whose evaluation was reused from the session */
} serve_outcome;

/* Response bodies; each returns a malloc'd NUL-terminated string (NULL when out of memory). */
char *openai_response(const serve_config *cfg, const serve_request *r, const char *id, long created,
                      const serve_outcome *o);
/* One "data: {...}\n\n" stream event: text (may be empty) or, when o is set, the final one
 * with the finish reason (and usage when asked); first adds the assistant role. */
char *openai_chunk(const serve_config *cfg, const serve_request *r, const char *id, long created,
                   const char *text, size_t len, bool first, const serve_outcome *o);
char *openai_usage_chunk(const serve_config *cfg, const serve_request *r, const char *id, long created,
                         const serve_outcome *o);
char *openai_models(const serve_config *cfg, long created);
char *openai_error(const char *message, const char *type, const char *param);
/* "stop" or "length", as OpenAI names the reasons. */
const char *openai_finish_reason(gemma_stop_reason r);

#endif
