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

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct serve_config {
    gemma_model *model;
    const char *model_id;  /* the "model" name clients see in /v1/models and responses */
    const char *file_id;   /* the model's file name, also accepted as "model" (NULL: none) */
    const char *host;      /* address to bind, "127.0.0.1" by default */
    int port;              /* 0 = any free port (printed at start) */
    int n_slots;           /* sessions, i.e. requests served at the same time */
    gemma_session_params session;
    gemma_sampler_params sampling; /* defaults for fields a request leaves out */
    bool fixed_seed;       /* requests without a seed use sampling.seed (else a fresh one each) */
    int32_t max_tokens;    /* default when a request gives none (<= 0: until the context is full) */
    const char *api_key;   /* NULL: no authentication */
    bool verbose;
    /* limits and exposure (see guard.c) */
    int32_t max_tokens_cap; /* > 0: no request generates more */
    int max_queue;          /* requests waiting for a session; more get 503 */
    int max_connections;
    int idle_timeout_s;     /* a connection silent this long is closed */
    const char *const *cors; /* origins answered with CORS headers ("*": any) */
    int n_cors;
    const char *const *allow_hosts; /* Host names accepted besides the bind address's */
    int n_allow_hosts;
    bool any_host;          /* no Host check */
    bool insecure_no_key;   /* a non-loopback bind without a key is meant */
} serve_config;

/* Serves until SIGINT/SIGTERM. Returns a process exit status. */
int serve_run(const serve_config *cfg);

/* ---- checks on headers (guard.c) ------------------------------------------------------ */

/* "Bearer KEY" (scheme in any case) against key, in constant time; true when key is NULL. */
bool guard_key_ok(const char *key, const char *authorization);
bool guard_is_loopback(const char *host);
/* Whether the Host header names this server (DNS rebinding defence). */
bool guard_host_ok(const serve_config *cfg, const char *host_header);
/* The Access-Control-Allow-Origin value for a request from origin; NULL: none. */
const char *guard_cors(const serve_config *cfg, const char *origin);
/* "application/json", parameters allowed. */
bool guard_json_type(const char *content_type);

/* ---- operations (ops.c) ------------------------------------------------------------ */

typedef struct serve_metrics {
    atomic_ullong requests, rejected, prompt_tokens, cached_tokens, generated_tokens;
    atomic_ullong prefill_us, decode_us; /* time spent evaluating prompts and generating */
} serve_metrics;

/* Valid UTF-8, no raw control bytes, one JSON value and nothing after it; else a message in err. */
bool ops_check_body(const char *body, size_t len, char *err, size_t cap);
/* Whether the body's "model" (if any) names the served model. */
bool ops_model_known(const serve_config *cfg, const char *body, size_t len);
/* An OpenAI error with a code; malloc'd. */
char *ops_error(const char *message, const char *type, const char *param, const char *code);
char *ops_model(const serve_config *cfg, long created);
/* llama-server's /tokenize and /detokenize; NULL with a message in err. */
char *ops_tokenize(const serve_config *cfg, const char *body, size_t len, char *err, size_t cap);
char *ops_detokenize(const serve_config *cfg, const char *body, size_t len, char *err, size_t cap);
/* Prometheus text. */
char *ops_metrics(const serve_metrics *m, int queue, int busy, int slots);

/* ---- session pool (slots.c) ---------------------------------------------------------- */

typedef struct serve_slots serve_slots;

/* Creates n sessions; NULL after printing why not. */
serve_slots *slots_create(gemma_model *m, int n, const gemma_session_params *p);
void slots_free(serve_slots *p);
/* Waits for a free session and takes it: of the free ones, the one whose cache shares the
 * longest prefix with prompt[0..n) (its evaluation can be reused). NULL once slots_shutdown
 * was called, or when gone(user) (looked at while waiting) says the client left. */
gemma_session *slots_acquire(serve_slots *p, const gemma_token *prompt, size_t n, bool (*gone)(void *), void *user);
/* Length of the common prefix of the session's cache and prompt[0..n). */
size_t slots_common_prefix(const gemma_session *s, const gemma_token *prompt, size_t n);
void slots_release(serve_slots *p, gemma_session *s);
/* Wakes every waiter (they get NULL) and cancels every running request. */
void slots_shutdown(serve_slots *p);
int slots_count(const serve_slots *p);
int slots_busy(serve_slots *p);

/* ---- OpenAI JSON (openai.c) ---------------------------------------------------------- */

typedef enum serve_kind { SERVE_CHAT, SERVE_COMPLETION } serve_kind;

/* tool_choice: "none" (tools are not shown to the model), "auto", "required", a named function. */
typedef enum serve_tool_choice { TOOLS_NONE, TOOLS_AUTO, TOOLS_REQUIRED, TOOLS_NAMED } serve_tool_choice;

/* A parsed request. Strings point into memory owned by the request. */
typedef struct serve_request {
    serve_kind kind;
    gemma_chat_message *msgs; /* chat */
    size_t n_msgs;
    char *prompt;             /* completion */
    gemma_generate_params gen;     /* gen.sampling is set to &sampling just before generating */
    gemma_sampler_params sampling; /* (the request is copied by value into its job) */
    char **stops;
    size_t n_stops;
    bool stream, include_usage;
    gemma_tool_call *calls;   /* the messages' tool_calls (chat) */
    char *tools;              /* the request's tools as JSON text; NULL: none, or tool_choice "none" */
    gemma_constraint *constraint; /* response_format json_object / json_schema; NULL: none */
    serve_tool_choice tool_choice;
    const char *tool_name;    /* TOOLS_NAMED */
    bool thinking;            /* reasoning_effort other than "none" (Gemma 4 thinks first) */
    char *prefill;            /* the start of a forced tool call, placed after the prompt */
    void *json;               /* the parsed document (owns the strings) */
} serve_request;

/* Parses a request body. On failure returns false with an OpenAI-style message in err
 * (cap bytes) naming the field. */
bool openai_parse(const serve_config *cfg, serve_kind kind, const char *body, size_t len, serve_request *r,
                  char *err, size_t cap);
void openai_request_free(serve_request *r);

/* A tool call the model made (see gemma_chat_parser). */
typedef struct serve_call {
    char id[32];
    char *name, *arguments;
} serve_call;

/* The generation's outcome, for the response builders. */
typedef struct serve_outcome {
    const char *text;         /* the answer's content */
    size_t len;
    const char *reasoning;    /* its thoughts (may be NULL) */
    size_t reasoning_len;
    const serve_call *calls;
    size_t n_calls;
    bool cut_call;            /* generation stopped inside a call */
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

/* ---- answers (answer.c): generated text -> content, reasoning, tool calls --------------- */

/* Receives a stream event (taken over). */
typedef void (*answer_sink)(void *user, char *event);

typedef struct serve_answer {
    const serve_config *cfg;
    const serve_request *r;
    const char *id;
    long created;
    answer_sink sink; /* NULL: collect for one response */
    void *sink_user;
    gemma_chat_parser *parser; /* chat only */
    char *content, *reasoning;
    size_t content_len, content_cap, reasoning_len, reasoning_cap;
    serve_call *calls;
    size_t n_calls;
    bool failed; /* out of memory */
    bool called; /* a forced call (tool_choice required or named) was made: stop generating */
} serve_answer;

/* prefill: text already placed after the prompt (the start of a forced call), fed to the
 * parser first. false when out of memory. */
bool answer_init(serve_answer *a, const serve_config *cfg, const serve_request *r, const char *id, long created,
                 answer_sink sink, void *sink_user, const char *prefill);
/* Generated text; nonzero when the answer is complete (a forced call was made) or cannot
 * go on (out of memory). */
int answer_push(serve_answer *a, const char *text, size_t len);
/* Flushes the parser and fills o's text, reasoning, calls and cut_call (valid until answer_free). */
void answer_finish(serve_answer *a, serve_outcome *o);
void answer_free(serve_answer *a);

/* ---- tools and reasoning (openai-tools.c) -------------------------------------------- */

/* tools, tool_choice, reasoning_effort (or chat_template_kwargs.enable_thinking). */
bool openai_parse_tools(void *doc, serve_request *r, char *err, size_t cap);
/* A message's tool_calls, tool_call_id, name and reasoning_content into m; calls come from
 * r->calls[*used ...]. */
bool openai_message_tools(void *msg, size_t i, gemma_chat_message *m, serve_request *r, size_t *used, char *err,
                          size_t cap);
/* How many tool calls the messages carry (to size r->calls). */
size_t openai_count_tool_calls(void *messages);
/* Stream events for thoughts, and for a complete call (the call's id, type and name, then its
 * arguments, as OpenAI streams them). */
char *openai_reasoning_chunk(const serve_config *cfg, const serve_request *r, const char *id, long created,
                             const char *text, size_t len);
char *openai_call_chunks(const serve_config *cfg, const serve_request *r, const char *id, long created, int index,
                         const serve_call *call);
/* The message's tool_calls and reasoning_content in a response (m: a cJSON object). */
void openai_add_tool_calls(void *m, const serve_outcome *o);
/* "tool_calls" when the answer made calls, else openai_finish_reason. */
const char *openai_finish(const serve_outcome *o);

#endif
