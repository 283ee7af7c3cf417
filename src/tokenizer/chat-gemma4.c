/* The Gemma 4 chat format, written from llama.cpp's models/templates/google-gemma-4-31B-it.jinja
 * (rendered byte for byte; tests/data/chat has the template's own renders). Tools are
 * declared in the system turn in Gemma's notation: keys bare, strings between <|"|> markers,
 * members sorted by key. The assistant's calls are <|tool_call>call:NAME{...}<tool_call|>; tool
 * results follow inside the same model turn as <|tool_response>response:NAME{...}<tool_response|>. */
#include "chat-internal.h"
#include "../util/util.h"

#include <stdio.h>
#include <stdlib.h>

#define Q "<|\"|>"

static void quoted(gm_cbuf *b, const char *s, size_t n)
{
    gm_cmark(b, Q);
    gm_cput(b, s, n);
    gm_cmark(b, Q);
}

/* Jinja's "{{ x }}" of a value that is not a string (Python's str()). */
static void put_py(gm_cbuf *b, const gm_json *v)
{
    char num[64];
    switch (v->type) {
    case GM_JSON_NULL: gm_cputs(b, "None"); break;
    case GM_JSON_BOOL: gm_cputs(b, v->b ? "True" : "False"); break;
    case GM_JSON_NUMBER:
        gm_json_number_py(v->s, num, sizeof num);
        gm_cputs(b, num);
        break;
    case GM_JSON_STRING: gm_cput(b, v->s, v->len); break;
    default: gm_json_write_py(&b->t, v); break;
    }
}

/* Jinja truthiness of an optional member. */
static bool truthy(const gm_json *v)
{
    if (!v)
        return false;
    switch (v->type) {
    case GM_JSON_NULL: return false;
    case GM_JSON_BOOL: return v->b;
    case GM_JSON_NUMBER: return strtod(v->s, NULL) != 0;
    case GM_JSON_STRING: return v->len > 0;
    default: return v->n > 0;
    }
}

/* format_argument: strings quoted, booleans lower-case, mappings sorted, other values as Python prints them. */
static void format_argument(gm_cbuf *b, const gm_json *v, bool escape_keys)
{
    if (v->type == GM_JSON_STRING) {
        quoted(b, v->s, v->len);
    } else if (v->type == GM_JSON_BOOL) {
        gm_cputs(b, v->b ? "true" : "false");
    } else if (v->type == GM_JSON_OBJECT || v->type == GM_JSON_ARRAY) {
        bool obj = v->type == GM_JSON_OBJECT;
        size_t *idx = v->n ? malloc(v->n * sizeof *idx) : NULL;
        if (v->n && !idx) {
            b->t.oom = true;
            return;
        }
        if (obj)
            gm_json_sorted(v, idx);
        gm_cputs(b, obj ? "{" : "[");
        for (size_t i = 0; i < v->n; i++) {
            const gm_json *k = &v->kids[obj ? idx[i] : i];
            if (i)
                gm_cputs(b, ",");
            if (obj && escape_keys)
                quoted(b, k->key, k->key_len);
            else if (obj)
                gm_cput(b, k->key, k->key_len);
            if (obj)
                gm_cputs(b, ":");
            format_argument(b, k, escape_keys);
        }
        gm_cputs(b, obj ? "}" : "]");
        free(idx);
    } else {
        put_py(b, v);
    }
}

/* "x | upper" of a schema's type: a string upper-cased, a list as Python prints it, else "". */
static void put_upper(gm_str *o, const gm_json *t)
{
    gm_str s = {0};
    if (t && t->type == GM_JSON_STRING)
        gm_str_put(&s, t->s, t->len);
    else if (t && t->type == GM_JSON_ARRAY) {
        gm_str_puts(&s, "[");
        for (size_t i = 0; i < t->n; i++) {
            gm_str_puts(&s, i ? ", '" : "'");
            if (t->kids[i].type == GM_JSON_STRING)
                gm_str_put(&s, t->kids[i].s, t->kids[i].len);
            gm_str_puts(&s, "'");
        }
        gm_str_puts(&s, "]");
    }
    for (size_t i = 0; i < s.n; i++)
        if (s.p[i] >= 'a' && s.p[i] <= 'z')
            s.p[i] = (char)(s.p[i] - 'a' + 'A');
    gm_str_put(o, s.p ? s.p : "", s.n);
    o->oom |= s.oom;
    free(s.p);
}

/* format_argument(t | upper), or of t | map('upper') | list for a list of types. */
static void put_upper_quoted(gm_cbuf *b, const gm_json *t)
{
    if (t->type != GM_JSON_ARRAY) {
        gm_cmark(b, Q);
        put_upper(&b->t, t);
        gm_cmark(b, Q);
        return;
    }
    gm_cputs(b, "[");
    for (size_t i = 0; i < t->n; i++) {
        if (i)
            gm_cputs(b, ",");
        put_upper_quoted(b, &t->kids[i]);
    }
    gm_cputs(b, "]");
}

static bool type_is(const gm_json *v, const char *want)
{
    gm_str u = {0};
    put_upper(&u, gm_json_get(v, "type"));
    bool r = u.p && !strcmp(u.p, want);
    free(u.p);
    return r;
}

static void comma(gm_cbuf *b, bool *add)
{
    if (*add)
        gm_cputs(b, ",");
    *add = true;
}

static void required_list(gm_cbuf *b, const gm_json *req)
{
    gm_cputs(b, "required:[");
    for (size_t i = 0; req && req->type == GM_JSON_ARRAY && i < req->n; i++) {
        if (i)
            gm_cputs(b, ",");
        gm_cmark(b, Q);
        put_py(b, &req->kids[i]);
        gm_cmark(b, Q);
    }
    gm_cputs(b, "]");
}

static void format_parameters(gm_cbuf *b, const gm_json *props, int depth);

static void format_items(gm_cbuf *b, const gm_json *items, int depth)
{
    size_t *idx = malloc(items->n * sizeof *idx);
    if (!idx) {
        b->t.oom = true;
        return;
    }
    gm_json_sorted(items, idx);
    gm_cputs(b, "items:{");
    bool first = true;
    for (size_t i = 0; i < items->n; i++) {
        const gm_json *k = &items->kids[idx[i]];
        if (k->type == GM_JSON_NULL)
            continue;
        if (!first)
            gm_cputs(b, ",");
        first = false;
        if (!strcmp(k->key, "properties")) {
            gm_cputs(b, "properties:{");
            if (k->type == GM_JSON_OBJECT)
                format_parameters(b, k, depth + 1);
            gm_cputs(b, "}");
        } else if (!strcmp(k->key, "required")) {
            required_list(b, k);
        } else if (!strcmp(k->key, "type")) {
            gm_cputs(b, "type:");
            put_upper_quoted(b, k);
        } else {
            gm_cput(b, k->key, k->key_len);
            gm_cputs(b, ":");
            format_argument(b, k, true);
        }
    }
    gm_cputs(b, "}");
    free(idx);
}

/* One property's body, after "key:{". */
static void format_property(gm_cbuf *b, const gm_json *value, int depth)
{
    bool add = false;
    const gm_json *d = gm_json_get(value, "description");
    if (truthy(d)) {
        gm_cputs(b, "description:");
        gm_cmark(b, Q);
        put_py(b, d);
        gm_cmark(b, Q);
        add = true;
    }
    const gm_json *items = gm_json_get(value, "items");
    if (type_is(value, "STRING") && truthy(gm_json_get(value, "enum"))) {
        comma(b, &add);
        gm_cputs(b, "enum:");
        format_argument(b, gm_json_get(value, "enum"), true);
    } else if (type_is(value, "ARRAY") && items && items->type == GM_JSON_OBJECT && items->n) {
        comma(b, &add);
        format_items(b, items, depth);
    }
    if (truthy(gm_json_get(value, "nullable"))) {
        comma(b, &add);
        gm_cputs(b, "nullable:true");
    }
    if (type_is(value, "OBJECT")) {
        const gm_json *p = gm_json_get(value, "properties");
        comma(b, &add);
        gm_cputs(b, "properties:{");
        format_parameters(b, p && p->type == GM_JSON_OBJECT ? p : value, depth + 1);
        gm_cputs(b, "}");
        if (truthy(gm_json_get(value, "required"))) {
            comma(b, &add);
            required_list(b, gm_json_get(value, "required"));
        }
    }
    comma(b, &add);
    gm_cputs(b, "type:");
    gm_cmark(b, Q);
    put_upper(&b->t, gm_json_get(value, "type"));
    gm_cmark(b, Q);
    gm_cputs(b, "}");
}

/* format_parameters: each property that is not a schema keyword, sorted by name. */
static void format_parameters(gm_cbuf *b, const gm_json *props, int depth)
{
    static const char *const standard[] = {"description", "type", "properties", "required", "nullable"};
    if (depth > GM_JSON_MAX_DEPTH || !props->n)
        return;
    size_t *idx = malloc(props->n * sizeof *idx);
    if (!idx) {
        b->t.oom = true;
        return;
    }
    gm_json_sorted(props, idx);
    bool first = true;
    for (size_t i = 0; i < props->n; i++) {
        const gm_json *k = &props->kids[idx[i]];
        bool std = false;
        for (size_t j = 0; j < 5; j++)
            std |= !strcmp(k->key, standard[j]);
        if (std)
            continue;
        if (!first)
            gm_cputs(b, ",");
        first = false;
        gm_cput(b, k->key, k->key_len);
        gm_cputs(b, ":{");
        if (k->type == GM_JSON_OBJECT)
            format_property(b, k, depth);
        else { /* not a schema: only the (empty) type */
            gm_cputs(b, "type:");
            gm_cmark(b, Q);
            gm_cmark(b, Q);
            gm_cputs(b, "}");
        }
    }
    free(idx);
}

static gemma_status format_declaration(gm_chat_ctx *c, const gm_json *tool, size_t i)
{
    gm_cbuf *b = c->b;
    const gm_json *fn = gm_json_get(tool, "function");
    const char *name = gm_json_get_str(fn, "name");
    if (!name)
        return gm_fail(c->err, GEMMA_E_CHAT, "tools[%zu]: needs {\"type\": \"function\", \"function\": {\"name\": ...}}",
                       i);
    gm_cputs(b, "declaration:");
    gm_cputs(b, name);
    gm_cputs(b, "{description:");
    gm_cmark(b, Q);
    const gm_json *d = gm_json_get(fn, "description");
    if (d)
        put_py(b, d);
    gm_cmark(b, Q);
    const gm_json *p = gm_json_get(fn, "parameters");
    if (truthy(p) && p->type == GM_JSON_OBJECT) {
        gm_cputs(b, ",parameters:{");
        const gm_json *props = gm_json_get(p, "properties");
        if (truthy(props)) {
            gm_cputs(b, "properties:{");
            if (props->type == GM_JSON_OBJECT)
                format_parameters(b, props, 0);
            gm_cputs(b, "},");
        }
        if (truthy(gm_json_get(p, "required"))) {
            required_list(b, gm_json_get(p, "required"));
            gm_cputs(b, ",");
        }
        if (truthy(gm_json_get(p, "type"))) {
            gm_cputs(b, "type:");
            gm_cmark(b, Q);
            put_upper(&b->t, gm_json_get(p, "type"));
            gm_cmark(b, Q);
            gm_cputs(b, "}");
        }
    }
    const gm_json *r = gm_json_get(fn, "response");
    if (r) {
        gm_cputs(b, ",response:{");
        if (truthy(gm_json_get(r, "description"))) {
            gm_cputs(b, "description:");
            gm_cmark(b, Q);
            put_py(b, gm_json_get(r, "description"));
            gm_cmark(b, Q);
            gm_cputs(b, ",");
        }
        if (type_is(r, "OBJECT")) {
            gm_cputs(b, "type:");
            gm_cmark(b, Q);
            put_upper(&b->t, gm_json_get(r, "type"));
            gm_cmark(b, Q);
            gm_cputs(b, "}");
        }
    }
    gm_cputs(b, "}");
    return GEMMA_OK;
}

/* strip_thinking: every <|channel>...<channel|> span dropped, then trimmed. */
static void put_stripped(gm_cbuf *b, const char *s)
{
    gm_cbuf t = {0};
    const char *end = s + strlen(s);
    while (s < end) {
        const char *close = strstr(s, "<channel|>");
        const char *part_end = close ? close : end;
        const char *open = NULL;
        for (const char *q = s; q + 10 <= part_end && !open; q++)
            if (!memcmp(q, "<|channel>", 10))
                open = q;
        gm_cput(&t, s, (size_t)((open ? open : part_end) - s));
        s = close ? close + 10 : end;
    }
    b->t.oom |= t.t.oom;
    gm_cput_trimmed(b, t.t.p ? t.t.p : "", t.t.n);
    free(t.t.p);
}

/* A call's arguments between braces: a JSON object as its sorted key:value pairs in Gemma's
 * notation (format_argument of the mapping writes the braces too), any other text as it is. */
static gemma_status put_arguments(gm_cbuf *b, const char *args)
{
    gm_json *v = NULL;
    gemma_status st = args ? gm_json_parse(args, strlen(args), &v, NULL) : GEMMA_E_INVALID_ARG;
    if (st == GEMMA_E_NOMEM)
        return st;
    if (!st && v->type == GM_JSON_OBJECT) {
        format_argument(b, v, false);
    } else {
        gm_cputs(b, "{");
        gm_cputs(b, args ? args : "");
        gm_cputs(b, "}");
    }
    gm_json_free(v);
    return GEMMA_OK;
}

/* The tool messages that follow an assistant's calls, each as a response block; the name
 * comes from the call with the same id (as the template compares them, two missing ids match). */
static bool put_responses(gm_cbuf *b, const gemma_chat_message *msgs, size_t n, size_t i)
{
    const gemma_chat_message *m = &msgs[i];
    bool any = false;
    for (size_t k = i + 1; k < n && gm_role_is(&msgs[k], "tool"); k++) {
        const gemma_chat_message *f = &msgs[k];
        const char *name = f->name ? f->name : "unknown";
        for (size_t j = 0; j < m->n_tool_calls; j++) {
            const char *a = m->tool_calls[j].id, *t = f->tool_call_id;
            if ((!a && !t) || (a && t && !strcmp(a, t)))
                name = m->tool_calls[j].name ? m->tool_calls[j].name : "";
        }
        gm_cmark(b, "<|tool_response>");
        gm_cputs(b, "response:");
        gm_cputs(b, name);
        gm_cputs(b, "{value:");
        quoted(b, gm_content(f), strlen(gm_content(f)));
        gm_cputs(b, "}");
        gm_cmark(b, "<tool_response|>");
        any = true;
    }
    return any;
}

enum { PREV_NONE, PREV_SYSTEM, PREV_CALL, PREV_RESPONSE };

/* The system turn: <|think|>, the system message, the tool declarations. */
static gemma_status system_turn(gm_chat_ctx *c, const gemma_chat_message *msgs, size_t n, size_t *first)
{
    const bool sys = n && (gm_role_is(&msgs[0], "system") || gm_role_is(&msgs[0], "developer"));
    const bool tools = c->tools && c->tools->n;
    *first = 0;
    if (c->o->continuation || !(c->o->enable_thinking || tools || sys))
        return GEMMA_OK;
    gm_cmark(c->b, "<|turn>");
    gm_cputs(c->b, "system\n");
    if (c->o->enable_thinking) {
        gm_cmark(c->b, "<|think|>");
        gm_cputs(c->b, "\n");
    }
    if (sys) {
        gm_cput_trimmed(c->b, gm_content(&msgs[0]), strlen(gm_content(&msgs[0])));
        *first = 1;
    }
    for (size_t i = 0; tools && i < c->tools->n; i++) {
        gm_cmark(c->b, "<|tool>");
        gemma_status st = format_declaration(c, &c->tools->kids[i], i);
        if (st)
            return st;
        gm_cmark(c->b, "<tool|>");
    }
    gm_cmark(c->b, "<turn|>");
    gm_cputs(c->b, "\n");
    return GEMMA_OK;
}

/* Whether the nearest earlier message that is not a tool result is the assistant's: then
 * this assistant message continues the same model turn. */
static bool continues_model_turn(const gemma_chat_message *msgs, size_t first, size_t i)
{
    for (size_t j = i; j-- > first;)
        if (!gm_role_is(&msgs[j], "tool"))
            return gm_is_assistant(&msgs[j]);
    return false;
}

static gemma_status message(gm_chat_ctx *c, const gemma_chat_message *msgs, size_t n, size_t first, size_t i,
                            size_t last_user, int *prev)
{
    gm_cbuf *b = c->b;
    const gemma_chat_message *m = &msgs[i];
    const bool model = gm_is_assistant(m);
    gemma_status st = GEMMA_OK;
    *prev = PREV_NONE;
    if (!(model && continues_model_turn(msgs, first, i))) {
        gm_cmark(b, "<|turn>");
        gm_cputs(b, model ? "model" : m->role);
        gm_cputs(b, "\n");
    }
    if (m->reasoning && m->reasoning[0] && (last_user == SIZE_MAX || i > last_user) && m->n_tool_calls) {
        gm_cmark(b, "<|channel>");
        gm_cputs(b, "thought\n");
        gm_cputs(b, m->reasoning);
        gm_cputs(b, "\n");
        gm_cmark(b, "<channel|>");
    }
    for (size_t k = 0; k < m->n_tool_calls && !st; k++) {
        gm_cmark(b, "<|tool_call>");
        gm_cputs(b, "call:");
        gm_cputs(b, m->tool_calls[k].name ? m->tool_calls[k].name : "");
        st = put_arguments(b, m->tool_calls[k].arguments);
        gm_cmark(b, "<tool_call|>");
        *prev = PREV_CALL;
    }
    bool responses = m->n_tool_calls && put_responses(b, msgs, n, i);
    if (responses)
        *prev = PREV_RESPONSE;
    if (model)
        put_stripped(b, gm_content(m));
    else
        gm_cput_trimmed(b, gm_content(m), strlen(gm_content(m)));
    if (*prev == PREV_CALL && !responses) {
        gm_cmark(b, "<|tool_response>");
    } else if (!(responses && !gm_content(m)[0])) {
        gm_cmark(b, "<turn|>");
        gm_cputs(b, "\n");
    }
    return st;
}

gemma_status gm_render_gemma4(gm_chat_ctx *c, const gemma_chat_message *msgs, size_t n)
{
    size_t first;
    gm_put_bos(c);
    gemma_status st = system_turn(c, msgs, n, &first);
    size_t last_user = SIZE_MAX;
    for (size_t i = first; i < n; i++)
        if (gm_role_is(&msgs[i], "user"))
            last_user = i;
    int prev = first || c->o->enable_thinking ? PREV_SYSTEM : PREV_NONE;
    for (size_t i = first; i < n && !st; i++) {
        const gemma_chat_message *m = &msgs[i];
        if (gm_role_is(m, "tool"))
            continue;
        if (!gm_role_is(m, "user") && !gm_is_assistant(m) && !gm_role_is(m, "system") && !gm_role_is(m, "developer"))
            return gm_fail(c->err, GEMMA_E_CHAT, "message %zu has role \"%s\": expected system, user, assistant or tool",
                           i, m->role);
        st = message(c, msgs, n, first, i, last_user, &prev);
    }
    if (!st && c->o->add_generation_prompt && prev != PREV_CALL && prev != PREV_RESPONSE) {
        gm_cmark(c->b, "<|turn>");
        gm_cputs(c->b, "model\n");
        if (!c->o->enable_thinking) {
            gm_cmark(c->b, "<|channel>");
            gm_cputs(c->b, "thought\n");
            gm_cmark(c->b, "<channel|>");
        }
    }
    return st;
}
