/* The JSON side of the OpenAI API: /v1/chat/completions and /v1/completions requests in,
 * completions, stream chunks, model lists and errors out. Fields clients commonly send but
 * that change nothing here (user, logprobs false, ...) are accepted and ignored; fields that
 * would silently change the meaning (n > 1, non-text content) are refused with a message. */
#include "server.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_STOPS 16

/* A request without a seed gets its own, as OpenAI's API behaves (unless the server was
 * started with --seed, which makes every such request repeatable). */
static uint64_t fresh_seed(void)
{
    static atomic_ulong counter;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30);
    return x ^ ((uint64_t)atomic_fetch_add(&counter, 1) * 0x9e3779b97f4a7c15ull);
}

static bool fail(char *err, size_t cap, const char *msg, const char *field)
{
    snprintf(err, cap, "%s%s%s", field ? field : "", field ? ": " : "", msg);
    return false;
}

/* A number in [lo, hi] (absent or null: keep *out). */
static bool get_num(const cJSON *o, const char *k, double lo, double hi, double *out, char *err, size_t cap)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!v || cJSON_IsNull(v))
        return true;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return fail(err, cap, "must be a number", k);
    if (v->valuedouble < lo || v->valuedouble > hi) {
        snprintf(err, cap, "%s: %g is out of range [%g, %g]", k, v->valuedouble, lo, hi);
        return false;
    }
    *out = v->valuedouble;
    return true;
}

static bool get_float(const cJSON *o, const char *k, double lo, double hi, float *out, char *err, size_t cap)
{
    double d = *out;
    if (!get_num(o, k, lo, hi, &d, err, cap))
        return false;
    *out = (float)d;
    return true;
}

static bool get_int(const cJSON *o, const char *k, double lo, double hi, int32_t *out, char *err, size_t cap)
{
    double d = *out;
    if (!get_num(o, k, lo, hi, &d, err, cap))
        return false;
    if (d != floor(d))
        return fail(err, cap, "must be an integer", k);
    *out = (int32_t)d;
    return true;
}

static bool get_bool(const cJSON *o, const char *k, bool *out, char *err, size_t cap)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!v || cJSON_IsNull(v))
        return true;
    if (!cJSON_IsBool(v))
        return fail(err, cap, "must be true or false", k);
    *out = cJSON_IsTrue(v);
    return true;
}

/* Message content: a string, or an array of {"type": "text", "text": ...} parts, which are
 * joined into one string owned by the document. */
static bool content_text(cJSON *msg, const char **out, char *err, size_t cap)
{
    cJSON *c = cJSON_GetObjectItemCaseSensitive(msg, "content");
    if (!c || cJSON_IsNull(c)) {
        *out = "";
        return true;
    }
    if (cJSON_IsString(c)) {
        *out = c->valuestring;
        return true;
    }
    if (!cJSON_IsArray(c))
        return fail(err, cap, "must be a string or an array of text parts", "messages[].content");
    size_t total = 1;
    const cJSON *part;
    cJSON_ArrayForEach(part, c) {
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(part, "type");
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(part, "text");
        if (!cJSON_IsString(type) || strcmp(type->valuestring, "text") || !cJSON_IsString(text))
            return fail(err, cap, "only {\"type\": \"text\", \"text\": ...} parts are supported (this model reads text)",
                        "messages[].content");
        total += strlen(text->valuestring);
    }
    char *joined = malloc(total);
    if (!joined)
        return fail(err, cap, "out of memory", NULL);
    joined[0] = 0;
    size_t at = 0;
    cJSON_ArrayForEach(part, c) {
        const char *t = cJSON_GetObjectItemCaseSensitive(part, "text")->valuestring;
        size_t n = strlen(t);
        memcpy(joined + at, t, n + 1);
        at += n;
    }
    cJSON *s = cJSON_CreateString(joined);
    free(joined);
    if (!s || !cJSON_ReplaceItemInObjectCaseSensitive(msg, "content", s)) {
        cJSON_Delete(s);
        return fail(err, cap, "out of memory", NULL);
    }
    *out = s->valuestring;
    return true;
}

static bool parse_messages(cJSON *doc, serve_request *r, char *err, size_t cap)
{
    cJSON *ms = cJSON_GetObjectItemCaseSensitive(doc, "messages");
    if (!cJSON_IsArray(ms) || cJSON_GetArraySize(ms) == 0)
        return fail(err, cap, "is required: a non-empty array of {\"role\", \"content\"} objects", "messages");
    r->n_msgs = (size_t)cJSON_GetArraySize(ms);
    size_t n_calls = openai_count_tool_calls(ms), used = 0;
    if (!(r->msgs = calloc(r->n_msgs, sizeof *r->msgs)) ||
        (n_calls && !(r->calls = calloc(n_calls, sizeof *r->calls))))
        return fail(err, cap, "out of memory", NULL);
    size_t i = 0;
    cJSON *m;
    cJSON_ArrayForEach(m, ms) {
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        if (!cJSON_IsObject(m) || !cJSON_IsString(role))
            return fail(err, cap, "each message needs a string \"role\"", "messages");
        const char *ro = role->valuestring;
        if (!strcmp(ro, "developer"))
            ro = "system"; /* OpenAI's newer name for the system role */
        else if (strcmp(ro, "system") && strcmp(ro, "user") && strcmp(ro, "assistant") && strcmp(ro, "model") &&
                 strcmp(ro, "tool")) {
            snprintf(err, cap, "messages[%zu].role: \"%.40s\" is not one of system, developer, user, assistant, tool",
                     i, ro);
            return false;
        }
        r->msgs[i].role = ro;
        if (!content_text(m, &r->msgs[i].content, err, cap) ||
            !openai_message_tools(m, i, &r->msgs[i], r, &used, err, cap))
            return false;
        i++;
    }
    return true;
}

static bool parse_prompt(cJSON *doc, serve_request *r, char *err, size_t cap)
{
    cJSON *p = cJSON_GetObjectItemCaseSensitive(doc, "prompt");
    if (cJSON_IsArray(p) && cJSON_GetArraySize(p) == 1)
        p = cJSON_GetArrayItem(p, 0);
    if (!cJSON_IsString(p))
        return fail(err, cap, "is required: a string (or an array of one string)", "prompt");
    r->prompt = p->valuestring;
    return true;
}

static bool parse_stop(cJSON *doc, serve_request *r, char *err, size_t cap)
{
    cJSON *st = cJSON_GetObjectItemCaseSensitive(doc, "stop");
    if (!st || cJSON_IsNull(st))
        return true;
    if (!(r->stops = calloc(MAX_STOPS, sizeof *r->stops)))
        return fail(err, cap, "out of memory", NULL);
    if (cJSON_IsString(st)) {
        if (st->valuestring[0])
            r->stops[r->n_stops++] = st->valuestring;
        return true;
    }
    if (!cJSON_IsArray(st) || cJSON_GetArraySize(st) > MAX_STOPS)
        return fail(err, cap, "must be a string or an array of at most 16 strings", "stop");
    cJSON *s;
    cJSON_ArrayForEach(s, st) {
        if (!cJSON_IsString(s))
            return fail(err, cap, "must be a string or an array of at most 16 strings", "stop");
        if (s->valuestring[0])
            r->stops[r->n_stops++] = s->valuestring;
    }
    return true;
}

/* Fields that would change the meaning of the answer and are not implemented: refused, never
 * silently ignored. */
static bool refuse_unsupported(const cJSON *doc, char *err, size_t cap)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, "logit_bias");
    if (v && !cJSON_IsNull(v) && !(cJSON_IsObject(v) && !v->child))
        return fail(err, cap, "is not supported", "logit_bias");
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(doc, "echo")))
        return fail(err, cap, "is not supported", "echo");
    v = cJSON_GetObjectItemCaseSensitive(doc, "suffix");
    if (v && !cJSON_IsNull(v) && !(cJSON_IsString(v) && !v->valuestring[0]))
        return fail(err, cap, "is not supported", "suffix");
    v = cJSON_GetObjectItemCaseSensitive(doc, "best_of");
    if (v && !cJSON_IsNull(v) && !(cJSON_IsNumber(v) && v->valuedouble == 1))
        return fail(err, cap, "is not supported", "best_of");
    return true;
}

/* response_format: text (nothing), json_object (any JSON object) or json_schema (its schema),
 * compiled into a constraint on the output. */
static bool parse_response_format(const serve_config *cfg, const cJSON *doc, serve_request *r, char *err, size_t cap)
{
    const cJSON *rf = cJSON_GetObjectItemCaseSensitive(doc, "response_format");
    if (!rf || cJSON_IsNull(rf))
        return true;
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(rf, "type");
    if (!cJSON_IsObject(rf) || !cJSON_IsString(type))
        return fail(err, cap, "must be an object with a type", "response_format");
    if (!strcmp(type->valuestring, "text"))
        return true;
    char *schema = NULL;
    if (!strcmp(type->valuestring, "json_object")) {
        schema = strdup("{\"type\":\"object\"}");
    } else if (!strcmp(type->valuestring, "json_schema")) {
        const cJSON *js = cJSON_GetObjectItemCaseSensitive(rf, "json_schema");
        const cJSON *sc = cJSON_GetObjectItemCaseSensitive(js, "schema");
        if (!cJSON_IsObject(sc) && !cJSON_IsBool(sc))
            return fail(err, cap, "must be a JSON Schema object", "response_format.json_schema.schema");
        schema = cJSON_PrintUnformatted(sc);
    } else {
        return fail(err, cap, "type must be text, json_object or json_schema", "response_format");
    }
    if (!schema)
        return fail(err, cap, "out of memory", "response_format");
    gemma_error e = {0};
    gemma_status st = gemma_constraint_from_json_schema(cfg->model, schema, strlen(schema), &r->constraint, &e);
    free(schema);
    if (st)
        return fail(err, cap, e.message, "response_format.json_schema.schema");
    r->gen.constraint = r->constraint;
    return true;
}

static bool parse_sampling(const serve_config *cfg, const cJSON *doc, serve_request *r, char *err, size_t cap)
{
    if (!refuse_unsupported(doc, err, cap) || !parse_response_format(cfg, doc, r, err, cap))
        return false;
    gemma_sampler_params *sp = &r->sampling;
    double seed = -1;
    int32_t n = 1;
    bool logprobs = false;
    r->gen.max_tokens = cfg->max_tokens;
    if (!get_int(doc, "max_tokens", 1, 1e9, &r->gen.max_tokens, err, cap) ||
        !get_int(doc, "max_completion_tokens", 1, 1e9, &r->gen.max_tokens, err, cap) ||
        !get_int(doc, "max_thinking_tokens", 0, 1e9, &r->gen.max_thinking_tokens, err, cap) ||
        !get_float(doc, "temperature", 0, 100, &sp->temperature, err, cap) ||
        !get_float(doc, "top_p", 0, 1, &sp->top_p, err, cap) ||
        !get_int(doc, "top_k", 0, 1e9, &sp->top_k, err, cap) ||
        !get_float(doc, "min_p", 0, 1, &sp->min_p, err, cap) ||
        !get_float(doc, "presence_penalty", -2, 2, &sp->presence_penalty, err, cap) ||
        !get_float(doc, "frequency_penalty", -2, 2, &sp->frequency_penalty, err, cap) ||
        !get_float(doc, "repeat_penalty", 0.01, 100, &sp->repeat_penalty, err, cap) ||
        !get_num(doc, "seed", 0, 9007199254740991.0, &seed, err, cap) || !get_int(doc, "n", 1, 1, &n, err, cap) ||
        !get_bool(doc, "logprobs", &logprobs, err, cap) || !get_bool(doc, "stream", &r->stream, err, cap))
        return false;
    if (logprobs)
        return fail(err, cap, "log probabilities are not supported", "logprobs");
    if (seed >= 0)
        sp->seed = (uint64_t)seed;
    else if (!cfg->fixed_seed)
        sp->seed = fresh_seed();
    const cJSON *so = cJSON_GetObjectItemCaseSensitive(doc, "stream_options");
    if (cJSON_IsObject(so) && !get_bool(so, "include_usage", &r->include_usage, err, cap))
        return false;
    return true;
}

bool openai_parse(const serve_config *cfg, serve_kind kind, const char *body, size_t len, serve_request *r,
                  char *err, size_t cap)
{
    memset(r, 0, sizeof *r);
    r->kind = kind;
    gemma_generate_params_init(&r->gen, sizeof r->gen);
    r->sampling = cfg->sampling;
    cJSON *doc = cJSON_ParseWithLength(body, len);
    r->json = doc;
    if (!doc)
        return fail(err, cap, "the request body is not valid JSON", NULL);
    if (!cJSON_IsObject(doc))
        return fail(err, cap, "the request body must be a JSON object", NULL);
    if (!(kind == SERVE_CHAT ? parse_messages(doc, r, err, cap) && openai_parse_tools(doc, r, err, cap)
                             : parse_prompt(doc, r, err, cap)) ||
        !parse_stop(doc, r, err, cap) || !parse_sampling(cfg, doc, r, err, cap))
        return false;
    r->gen.stop_strings = (const char *const *)r->stops;
    r->gen.n_stop_strings = r->n_stops;
    return true;
}

void openai_request_free(serve_request *r)
{
    free(r->msgs);
    free(r->calls);
    free(r->prefill);
    cJSON_free(r->tools);
    free(r->stops);
    gemma_constraint_free(r->constraint);
    cJSON_Delete(r->json);
    memset(r, 0, sizeof *r);
}

/* ---- responses ----------------------------------------------------------------------- */

const char *openai_finish_reason(gemma_stop_reason r)
{
    return r == GEMMA_STOP_MAX_TOKENS || r == GEMMA_STOP_CONTEXT_FULL ? "length" : "stop";
}

/* A JSON string item from len bytes (which need not be NUL-terminated). */
static cJSON *string_n(const char *s, size_t len)
{
    char *t = malloc(len + 1);
    if (!t)
        return NULL;
    memcpy(t, s, len);
    t[len] = 0;
    cJSON *v = cJSON_CreateString(t);
    free(t);
    return v;
}

static cJSON *envelope(const serve_config *cfg, const serve_request *r, const char *id, long created, bool chunk)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddStringToObject(o, "object", r->kind == SERVE_COMPLETION ? "text_completion"
                                         : chunk                     ? "chat.completion.chunk"
                                                                     : "chat.completion");
    cJSON_AddNumberToObject(o, "created", (double)created);
    cJSON_AddStringToObject(o, "model", cfg->model_id);
    char fp[64];
    snprintf(fp, sizeof fp, "gemma.c-%s", gemma_version());
    cJSON_AddStringToObject(o, "system_fingerprint", fp);
    return o;
}

static void add_usage(cJSON *o, const serve_outcome *out)
{
    cJSON *u = cJSON_AddObjectToObject(o, "usage");
    cJSON_AddNumberToObject(u, "prompt_tokens", out->prompt_tokens);
    cJSON_AddNumberToObject(u, "completion_tokens", out->completion_tokens);
    cJSON_AddNumberToObject(u, "total_tokens", (double)out->prompt_tokens + out->completion_tokens);
    cJSON *d = cJSON_AddObjectToObject(u, "prompt_tokens_details");
    cJSON_AddNumberToObject(d, "cached_tokens", out->cached_tokens);
}

/* Serializes and frees o; NULL when any allocation along the way failed. */
static char *finish(cJSON *o, bool sse)
{
    char *s = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (!s || !sse)
        return s;
    size_t n = strlen(s);
    char *e = malloc(n + 9);
    if (e)
        snprintf(e, n + 9, "data: %s\n\n", s);
    cJSON_free(s);
    return e;
}

char *openai_response(const serve_config *cfg, const serve_request *r, const char *id, long created,
                      const serve_outcome *o)
{
    cJSON *root = envelope(cfg, r, id, created, false);
    cJSON *choices = cJSON_AddArrayToObject(root, "choices"), *c = cJSON_CreateObject();
    cJSON_AddItemToArray(choices, c);
    cJSON_AddNumberToObject(c, "index", 0);
    if (r->kind == SERVE_CHAT) {
        cJSON *m = cJSON_AddObjectToObject(c, "message");
        cJSON_AddStringToObject(m, "role", "assistant");
        if (o->n_calls && !o->len) /* as OpenAI: a message that only calls has null content */
            cJSON_AddNullToObject(m, "content");
        else
            cJSON_AddItemToObject(m, "content", string_n(o->text, o->len));
        openai_add_tool_calls(m, o);
    } else {
        cJSON_AddItemToObject(c, "text", string_n(o->text, o->len));
        cJSON_AddNullToObject(c, "logprobs");
    }
    cJSON_AddStringToObject(c, "finish_reason", openai_finish(o));
    add_usage(root, o);
    return finish(root, false);
}

char *openai_chunk(const serve_config *cfg, const serve_request *r, const char *id, long created,
                   const char *text, size_t len, bool first, const serve_outcome *o)
{
    cJSON *root = envelope(cfg, r, id, created, true);
    cJSON *choices = cJSON_AddArrayToObject(root, "choices"), *c = cJSON_CreateObject();
    cJSON_AddItemToArray(choices, c);
    cJSON_AddNumberToObject(c, "index", 0);
    if (r->kind == SERVE_CHAT) {
        cJSON *d = cJSON_AddObjectToObject(c, "delta");
        if (first)
            cJSON_AddStringToObject(d, "role", "assistant");
        if (!o)
            cJSON_AddItemToObject(d, "content", string_n(text, len));
    } else {
        cJSON_AddItemToObject(c, "text", string_n(o ? "" : text, o ? 0 : len));
        cJSON_AddNullToObject(c, "logprobs");
    }
    if (o)
        cJSON_AddStringToObject(c, "finish_reason", openai_finish(o));
    else
        cJSON_AddNullToObject(c, "finish_reason");
    return finish(root, true);
}

/* A chat chunk whose delta is d (taken over). */
static char *delta_chunk(const serve_config *cfg, const serve_request *r, const char *id, long created, cJSON *d)
{
    cJSON *root = envelope(cfg, r, id, created, true);
    cJSON *choices = cJSON_AddArrayToObject(root, "choices"), *c = cJSON_CreateObject();
    cJSON_AddItemToArray(choices, c);
    cJSON_AddNumberToObject(c, "index", 0);
    cJSON_AddItemToObject(c, "delta", d);
    cJSON_AddNullToObject(c, "finish_reason");
    return finish(root, true);
}

char *openai_reasoning_chunk(const serve_config *cfg, const serve_request *r, const char *id, long created,
                             const char *text, size_t len)
{
    cJSON *d = cJSON_CreateObject();
    cJSON_AddItemToObject(d, "reasoning_content", string_n(text, len));
    return delta_chunk(cfg, r, id, created, d);
}

/* {"tool_calls": [{"index": i, ...}]} with the call's id, type and name, or its arguments. */
static cJSON *call_delta(int index, const serve_call *call, bool head)
{
    cJSON *d = cJSON_CreateObject(), *a = cJSON_AddArrayToObject(d, "tool_calls"), *t = cJSON_CreateObject();
    cJSON_AddItemToArray(a, t);
    cJSON_AddNumberToObject(t, "index", index);
    if (head) {
        cJSON_AddStringToObject(t, "id", call->id);
        cJSON_AddStringToObject(t, "type", "function");
    }
    cJSON *fn = cJSON_AddObjectToObject(t, "function");
    if (head)
        cJSON_AddStringToObject(fn, "name", call->name);
    cJSON_AddStringToObject(fn, "arguments", head ? "" : call->arguments);
    return d;
}

char *openai_call_chunks(const serve_config *cfg, const serve_request *r, const char *id, long created, int index,
                         const serve_call *call)
{
    char *a = delta_chunk(cfg, r, id, created, call_delta(index, call, true));
    char *b = delta_chunk(cfg, r, id, created, call_delta(index, call, false));
    char *both = a && b ? malloc(strlen(a) + strlen(b) + 1) : NULL;
    if (both)
        strcat(strcpy(both, a), b);
    free(a);
    free(b);
    return both;
}

void openai_add_tool_calls(void *m_, const serve_outcome *o)
{
    cJSON *m = m_;
    if (o->reasoning_len)
        cJSON_AddItemToObject(m, "reasoning_content", string_n(o->reasoning, o->reasoning_len));
    if (!o->n_calls)
        return;
    cJSON *a = cJSON_AddArrayToObject(m, "tool_calls");
    for (size_t i = 0; i < o->n_calls; i++) {
        cJSON *t = cJSON_CreateObject(), *fn;
        cJSON_AddItemToArray(a, t);
        cJSON_AddStringToObject(t, "id", o->calls[i].id);
        cJSON_AddStringToObject(t, "type", "function");
        fn = cJSON_AddObjectToObject(t, "function");
        cJSON_AddStringToObject(fn, "name", o->calls[i].name);
        cJSON_AddStringToObject(fn, "arguments", o->calls[i].arguments);
    }
}

const char *openai_finish(const serve_outcome *o)
{
    bool length = o->stop == GEMMA_STOP_MAX_TOKENS || o->stop == GEMMA_STOP_CONTEXT_FULL;
    return o->n_calls && !o->cut_call ? "tool_calls" : length || o->cut_call ? "length" : "stop";
}

char *openai_usage_chunk(const serve_config *cfg, const serve_request *r, const char *id, long created,
                         const serve_outcome *o)
{
    cJSON *root = envelope(cfg, r, id, created, true);
    cJSON_AddArrayToObject(root, "choices");
    add_usage(root, o);
    return finish(root, true);
}

char *openai_models(const serve_config *cfg, long created)
{
    cJSON *root = cJSON_CreateObject(), *data, *m = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "object", "list");
    data = cJSON_AddArrayToObject(root, "data");
    cJSON_AddItemToArray(data, m);
    cJSON_AddStringToObject(m, "id", cfg->model_id);
    cJSON_AddStringToObject(m, "object", "model");
    cJSON_AddNumberToObject(m, "created", (double)created);
    cJSON_AddStringToObject(m, "owned_by", "gemma.c");
    gemma_model_info info = {.size = sizeof info};
    if (gemma_model_get_info(cfg->model, &info) == GEMMA_OK) {
        cJSON *meta = cJSON_AddObjectToObject(m, "meta");
        cJSON_AddStringToObject(meta, "architecture", info.architecture);
        cJSON_AddNumberToObject(meta, "n_params", (double)info.n_params);
        cJSON_AddNumberToObject(meta, "n_ctx_train", info.n_ctx_train);
        cJSON_AddNumberToObject(meta, "n_vocab", info.n_vocab);
    }
    return finish(root, false);
}

char *openai_error(const char *message, const char *type, const char *param)
{
    cJSON *root = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(root, "error");
    cJSON_AddStringToObject(e, "message", message);
    cJSON_AddStringToObject(e, "type", type);
    if (param)
        cJSON_AddStringToObject(e, "param", param);
    else
        cJSON_AddNullToObject(e, "param");
    cJSON_AddNullToObject(e, "code");
    return finish(root, false);
}
