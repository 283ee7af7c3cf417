/* Model output -> content, reasoning and tool calls, as it streams (gemma_chat_parser_*).
 *
 * Gemma 4: <|channel>thought\n...<channel|> is reasoning; <|tool_call>call:NAME{...}<tool_call|>
 * is a call whose arguments are in Gemma's notation (bare keys, strings between <|"|>), turned
 * into JSON; <|tool_response> (the model waiting for results) ends the answer.
 * Gemma 3 (with tools): the answer is one or more {"name": ..., "parameters": {...}} objects,
 * optionally in a ``` fence; anything else is content.
 * Text that may still become a marker or a call is held back until it is decided, so a call
 * is never shown as content; a call that does not parse is shown as content, never dropped. */
#include "tokenizer.h"
#include "../util/json.h"
#include "../util/util.h"

#include <stdlib.h>
#include <string.h>

/* P_G3_TEXT: Gemma 3 content to the end; P_DONE: the answer ended (<|tool_response>). */
enum { P_TEXT, P_THOUGHT_HEAD, P_THOUGHT, P_CALL, P_G3_START, P_G3_CALL, P_G3_TEXT, P_DONE };

struct gemma_chat_parser {
    int state;
    gm_str hold;       /* undecided text */
    int32_t n_calls;
    bool cut;          /* finish found an unfinished call */
    gemma_chat_event_fn fn;
    void *user;
    gemma_status st;   /* sticky: the callback's stop or out of memory */
};

#define Q "<|\"|>"

static void emit(gemma_chat_parser *p, gemma_chat_event_kind kind, const char *s, size_t n)
{
    if (p->st || !n)
        return;
    gemma_chat_event ev = {kind, s, n, NULL, NULL, 0};
    if (p->fn && p->fn(p->user, &ev))
        p->st = GEMMA_E_ABORTED;
}

static void emit_call(gemma_chat_parser *p, const char *name, const char *args)
{
    gemma_chat_event ev = {GEMMA_CHAT_TOOL_CALL, NULL, 0, name, args, p->n_calls++};
    if (!p->st && p->fn && p->fn(p->user, &ev))
        p->st = GEMMA_E_ABORTED;
}

/* Drops the first n bytes of the held text. */
static void consume(gemma_chat_parser *p, size_t n)
{
    memmove(p->hold.p, p->hold.p + n, p->hold.n - n + 1);
    p->hold.n -= n;
}

/* Position of the first of the markers in s[0..n), or where a marker might begin at the
 * end (a proper prefix of one), or n. *which gets the marker found (-1: none). */
static size_t find_marker(const char *s, size_t n, const char *const *marks, int k, int *which)
{
    *which = -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '<')
            continue;
        for (int m = 0; m < k; m++) {
            size_t L = strlen(marks[m]), r = n - i < L ? n - i : L;
            if (!memcmp(s + i, marks[m], r)) {
                *which = r == L ? m : -1;
                return i;
            }
        }
    }
    return n;
}

/* ---- Gemma 4 arguments -> JSON ------------------------------------------------------- */

typedef struct g4_reader {
    const char *s;
    size_t n, at;
} g4_reader;

static bool g4_value(g4_reader *r, gm_str *o, int depth);

static bool g4_lit(g4_reader *r, const char *lit)
{
    size_t k = strlen(lit);
    if (r->n - r->at < k || memcmp(r->s + r->at, lit, k))
        return false;
    r->at += k;
    return true;
}

static bool g4_string(g4_reader *r, gm_str *o)
{
    const char *end = NULL;
    for (size_t i = r->at; i + 5 <= r->n && !end; i++)
        if (!memcmp(r->s + i, Q, 5))
            end = r->s + i;
    if (!end)
        return false;
    gm_json_write_string(o, r->s + r->at, (size_t)(end - (r->s + r->at)));
    r->at = (size_t)(end - r->s) + 5;
    return true;
}

/* A key: bare up to ':' or quoted. */
static bool g4_key(g4_reader *r, gm_str *o)
{
    if (g4_lit(r, Q))
        return g4_string(r, o);
    size_t a = r->at;
    while (r->at < r->n && r->s[r->at] != ':' && r->s[r->at] != '{' && r->s[r->at] != '}' && r->s[r->at] != ',')
        r->at++;
    if (r->at == a)
        return false;
    gm_json_write_string(o, r->s + a, r->at - a);
    return true;
}

static bool g4_container(g4_reader *r, gm_str *o, int depth, bool obj)
{
    const char close = obj ? '}' : ']';
    if (depth > GM_JSON_MAX_DEPTH)
        return false;
    gm_str_put(o, obj ? "{" : "[", 1);
    if (r->at < r->n && r->s[r->at] == close) {
        r->at++;
        gm_str_put(o, &close, 1);
        return true;
    }
    for (bool first = true;; first = false) {
        if (!first)
            gm_str_put(o, ",", 1);
        if (obj && !(g4_key(r, o) && g4_lit(r, ":") && (gm_str_put(o, ":", 1), true)))
            return false;
        if (!g4_value(r, o, depth + 1))
            return false;
        if (g4_lit(r, ","))
            continue;
        if (r->at < r->n && r->s[r->at] == close) {
            r->at++;
            gm_str_put(o, &close, 1);
            return true;
        }
        return false;
    }
}

static bool g4_value(g4_reader *r, gm_str *o, int depth)
{
    if (g4_lit(r, Q))
        return g4_string(r, o);
    if (g4_lit(r, "{"))
        return g4_container(r, o, depth, true);
    if (g4_lit(r, "["))
        return g4_container(r, o, depth, false);
    size_t a = r->at;
    while (r->at < r->n && !strchr(",}]", r->s[r->at]))
        r->at++;
    const char *w = r->s + a;
    size_t k = r->at - a;
    if ((k == 4 && !memcmp(w, "true", 4)) || (k == 5 && !memcmp(w, "false", 5)) || (k == 4 && !memcmp(w, "null", 4))) {
        gm_str_put(o, w, k);
        return true;
    }
    if (k == 4 && !memcmp(w, "None", 4)) {
        gm_str_puts(o, "null");
        return true;
    }
    gm_json *num = NULL; /* a number must be a JSON number */
    bool ok = k && !gm_json_parse(w, k, &num, NULL) && num->type == GM_JSON_NUMBER;
    gm_json_free(num);
    if (ok)
        gm_str_put(o, w, k);
    return ok;
}

/* "call:NAME{...}" -> name and JSON arguments; false when it does not parse. */
static bool g4_call(const char *s, size_t n, gm_str *name, gm_str *args)
{
    g4_reader r = {s, n, 0};
    if (!g4_lit(&r, "call:"))
        return false;
    size_t a = r.at;
    while (r.at < n && s[r.at] != '{')
        r.at++;
    if (r.at == a || r.at == n)
        return false;
    gm_str_put(name, s + a, r.at - a);
    r.at++;
    return g4_container(&r, args, 0, true) && r.at == n && !name->oom && !args->oom;
}

/* End of a call body at the first <tool_call|> outside <|"|> strings; n when not there yet. */
static size_t g4_call_end(const char *s, size_t n)
{
    static const char close[] = "<tool_call|>";
    bool in_str = false;
    for (size_t i = 0; i < n; i++) {
        if (n - i >= 5 && !memcmp(s + i, Q, 5)) {
            in_str = !in_str;
            i += 4;
        } else if (!in_str && n - i >= sizeof close - 1 && !memcmp(s + i, close, sizeof close - 1)) {
            return i;
        }
    }
    return n;
}

/* ---- the state machine ---------------------------------------------------------------- */

static const char *const g4_marks[] = {"<|channel>", "<|tool_call>", "<|tool_response>", "<turn|>"};

/* Gemma 4 between calls and thoughts: content up to the next marker. false: wait for more. */
static bool step_text(gemma_chat_parser *p, bool final)
{
    int which;
    size_t at = find_marker(p->hold.p, p->hold.n, g4_marks, 4, &which);
    if (which < 0 && final)
        at = p->hold.n;
    emit(p, GEMMA_CHAT_CONTENT, p->hold.p, at);
    consume(p, at);
    if (which < 0)
        return false;
    consume(p, strlen(g4_marks[which]));
    p->state = which == 0 ? P_THOUGHT_HEAD : which == 1 ? P_CALL : P_DONE;
    return true;
}

static bool step_thought(gemma_chat_parser *p, bool final)
{
    static const char head[] = "thought\n";
    if (p->state == P_THOUGHT_HEAD) { /* the channel's name is not part of the thoughts */
        size_t k = p->hold.n < sizeof head - 1 ? p->hold.n : sizeof head - 1;
        if (memcmp(p->hold.p, head, k))
            p->state = P_THOUGHT;
        else if (k == sizeof head - 1)
            consume(p, k), p->state = P_THOUGHT;
        else if (!final)
            return false;
        else
            p->state = P_THOUGHT;
    }
    static const char *const end[] = {"<channel|>"};
    int which;
    size_t at = find_marker(p->hold.p, p->hold.n, end, 1, &which);
    if (which < 0 && final)
        at = p->hold.n;
    emit(p, GEMMA_CHAT_REASONING, p->hold.p, at);
    consume(p, at);
    if (which < 0)
        return false;
    consume(p, strlen(end[0]));
    p->state = P_TEXT;
    return true;
}

static bool step_call(gemma_chat_parser *p, bool final)
{
    size_t end = g4_call_end(p->hold.p, p->hold.n);
    if (end == p->hold.n) {
        if (final)
            p->cut = true; /* cut off (max_tokens): neither a call nor content */
        return false;
    }
    gm_str name = {0}, args = {0};
    if (g4_call(p->hold.p, end, &name, &args))
        emit_call(p, name.p, args.p);
    else if (name.oom || args.oom)
        p->st = GEMMA_E_NOMEM;
    else { /* not a call after all: show it as the model wrote it */
        emit(p, GEMMA_CHAT_CONTENT, "<|tool_call>", 12);
        emit(p, GEMMA_CHAT_CONTENT, p->hold.p, end + 12);
    }
    free(name.p);
    free(args.p);
    consume(p, end + 12);
    p->state = P_TEXT;
    return true;
}

/* Gemma 3: whitespace and a ``` fence before the first '{' are held; anything else makes the
 * whole answer content. */
static bool step_g3_start(gemma_chat_parser *p, bool final)
{
    size_t i = 0;
    while (i < p->hold.n && strchr(" \t\r\n", p->hold.p[i]))
        i++;
    if (i < p->hold.n && p->hold.p[i] == '`') {
        size_t f = i;
        while (f < p->hold.n && p->hold.p[f] == '`')
            f++;
        while (f < p->hold.n && p->hold.p[f] != '\n' && f - i < 16)
            f++;
        if (f == p->hold.n && !final)
            return false;
        i = f;
        while (i < p->hold.n && strchr(" \t\r\n", p->hold.p[i]))
            i++;
    }
    if (i == p->hold.n) { /* only whitespace and fences so far (or a closing fence at the end) */
        if (final)
            consume(p, p->hold.n);
        return false;
    }
    if (p->hold.p[i] == '{') {
        consume(p, i);
        p->state = P_G3_CALL;
        return true;
    }
    p->state = P_G3_TEXT; /* content from here on (Gemma 3 has no markers) */
    return true;
}

/* End of the balanced JSON object at the start of s, or 0 when not complete yet. */
static size_t json_object_end(const char *s, size_t n)
{
    int depth = 0;
    bool in_str = false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = false;
        } else if (c == '"') {
            in_str = true;
        } else if (c == '{' || c == '[') {
            depth++;
        } else if ((c == '}' || c == ']') && --depth == 0) {
            return i + 1;
        }
    }
    return 0;
}

static bool step_g3_call(gemma_chat_parser *p, bool final)
{
    size_t end = json_object_end(p->hold.p, p->hold.n);
    if (!end) {
        if (final)
            p->cut = true;
        return false;
    }
    gm_json *v = NULL;
    const gm_json *args = NULL;
    const char *name = NULL;
    if (!gm_json_parse(p->hold.p, end, &v, NULL)) {
        name = gm_json_get_str(v, "name");
        args = gm_json_get(v, "parameters") ? gm_json_get(v, "parameters") : gm_json_get(v, "arguments");
    }
    if (name && args && args->type == GM_JSON_OBJECT) {
        gm_str a = {0};
        gm_json_write(&a, args);
        if (a.oom)
            p->st = GEMMA_E_NOMEM;
        else
            emit_call(p, name, a.p);
        free(a.p);
    } else {
        emit(p, GEMMA_CHAT_CONTENT, p->hold.p, end);
    }
    gm_json_free(v);
    consume(p, end);
    p->state = P_G3_START;
    return true;
}

static void run(gemma_chat_parser *p, bool final)
{
    for (bool more = true; more && !p->st && p->hold.n;) {
        switch (p->state) {
        case P_TEXT: more = step_text(p, final); break;
        case P_THOUGHT_HEAD:
        case P_THOUGHT: more = step_thought(p, final); break;
        case P_CALL: more = step_call(p, final); break;
        case P_G3_START: more = step_g3_start(p, final); break;
        case P_G3_CALL: more = step_g3_call(p, final); break;
        case P_G3_TEXT:
            emit(p, GEMMA_CHAT_CONTENT, p->hold.p, p->hold.n);
            consume(p, p->hold.n);
            more = false;
            break;
        default: /* P_DONE: what follows the end of the answer is not part of it */
            consume(p, p->hold.n);
            more = false;
        }
    }
}

gemma_chat_parser *gm_chat_parser_new(gm_chat_family family, bool tools)
{
    gemma_chat_parser *p = calloc(1, sizeof *p);
    if (p)
        p->state = family == GM_CHAT_GEMMA4 ? P_TEXT : tools ? P_G3_START : P_G3_TEXT;
    return p;
}

GEMMA_API void gemma_chat_parser_free(gemma_chat_parser *p)
{
    if (!p)
        return;
    free(p->hold.p);
    free(p);
}

static gemma_status feed(gemma_chat_parser *p, const char *text, size_t len, gemma_chat_event_fn fn, void *user,
                         bool final)
{
    if (!p || (!text && len))
        return GEMMA_E_INVALID_ARG;
    p->fn = fn;
    p->user = user;
    gm_str_put(&p->hold, text ? text : "", len);
    if (p->hold.oom)
        return GEMMA_E_NOMEM;
    run(p, final);
    return p->st;
}

GEMMA_API gemma_status gemma_chat_parser_push(gemma_chat_parser *p, const char *text, size_t len,
                                              gemma_chat_event_fn fn, void *user)
{
    return feed(p, text, len, fn, user, false);
}

GEMMA_API gemma_status gemma_chat_parser_finish(gemma_chat_parser *p, gemma_chat_event_fn fn, void *user,
                                                bool *cut_call)
{
    gemma_status st = feed(p, "", 0, fn, user, true);
    if (p && p->cut)
        consume(p, p->hold.n);
    if (cut_call)
        *cut_call = p && p->cut;
    return st;
}
