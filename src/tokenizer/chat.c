/* Chat prompt formats (spec 5.6), hard-coded from the published templates: the Jinja in
 * the file is never executed. Gemma 1/2/3 use <start_of_turn>role\n...<end_of_turn>\n (here);
 * Gemma 4 uses <|turn>role\n...<turn|>\n with an optional system turn (chat-gemma4.c). */
#include "chat-internal.h"
#include "vocab-internal.h"
#include "../util/util.h"

#include <stdlib.h>
#include <string.h>

void gm_cmark(gm_cbuf *b, const char *s)
{
    if (b->t.oom || !gm_scratch_reserve((void **)&b->mk, &b->cap_mk, b->n_mk + 1, sizeof *b->mk)) {
        b->t.oom = true;
        return;
    }
    b->mk[b->n_mk++] = (gm_chat_mark){b->t.n, strlen(s)};
    gm_cputs(b, s);
}

/* Length of the Unicode whitespace character (Python's str.isspace) at s, or 0. */
static size_t ws_len(const unsigned char *s, size_t n)
{
    if (n && ((s[0] >= 0x09 && s[0] <= 0x0d) || (s[0] >= 0x1c && s[0] <= 0x20)))
        return 1;
    if (n >= 2 && s[0] == 0xc2 && (s[1] == 0x85 || s[1] == 0xa0))
        return 2;
    if (n < 3)
        return 0;
    unsigned cp = (unsigned)(s[0] & 0x0f) << 12 | (unsigned)(s[1] & 0x3f) << 6 | (s[2] & 0x3f);
    if ((s[0] & 0xf0) != 0xe0 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
        return 0;
    return cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 || cp == 0x202f ||
                   cp == 0x205f || cp == 0x3000
               ? 3
               : 0;
}

/* Length of a whitespace character ending at s + n, or 0. */
static size_t ws_len_back(const unsigned char *s, size_t n)
{
    for (size_t k = 1; k <= 3 && k <= n; k++)
        if (ws_len(s + n - k, k) == k)
            return k;
    return 0;
}

void gm_cput_trimmed(gm_cbuf *b, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t k;
    while ((k = ws_len(u, n)))
        u += k, n -= k;
    while ((k = ws_len_back(u, n)))
        n -= k;
    gm_cput(b, (const char *)u, n);
}

void gm_put_bos(gm_chat_ctx *c)
{
    size_t n;
    const char *t = c->o->add_bos && c->v->bos >= 0 ? gm_vocab_text(c->v, c->v->bos, &n) : NULL;
    if (t && n < 64) {
        char tmp[64];
        memcpy(tmp, t, n);
        tmp[n] = '\0';
        gm_cmark(c->b, tmp);
    }
}

/* Gemma 3's template has no tools. With tools, gemma.c follows Google's documented JSON
 * convention for Gemma 3 function calling: the first user turn starts with an instruction
 * and the function declarations as JSON; the model answers with {"name": ..., "parameters":
 * {...}}; results come back in a user turn as {"name": ..., "response": ...}, one per line
 * (tests/data/chat/gemma3-tools.jinja is this format as a template). */
static const char g3_tools_intro[] =
    "You have access to functions. If you decide to invoke any of the function(s), you MUST put it in the "
    "format of\n{\"name\": function name, \"parameters\": dictionary of argument name and its value}\n\n"
    "You SHOULD NOT include any other text in the response if you call a function\n";

static void g3_prefix(gm_chat_ctx *c, const char *sys)
{
    if (sys) {
        gm_cputs(c->b, sys);
        gm_cputs(c->b, "\n\n");
    }
    if (!c->tools || !c->tools->n)
        return;
    gm_cputs(c->b, g3_tools_intro);
    gm_cputs(c->b, "[");
    for (size_t i = 0; i < c->tools->n; i++) {
        const gm_json *fn = gm_json_get(&c->tools->kids[i], "function");
        if (i)
            gm_cputs(c->b, ", ");
        if (fn)
            gm_json_write_py(&c->b->t, fn);
        else
            gm_cputs(c->b, "null");
    }
    gm_cputs(c->b, "]\n\n");
}

/* {"name": NAME, "parameters": ARGS}: arguments that are JSON are rewritten as Python's
 * json.dumps writes them, anything else is kept as it is. */
static gemma_status g3_call(gm_cbuf *b, const gemma_tool_call *tc)
{
    gm_json *v = NULL;
    const char *args = tc->arguments ? tc->arguments : "{}";
    gemma_status st = gm_json_parse(args, strlen(args), &v, NULL);
    if (st == GEMMA_E_NOMEM)
        return st;
    gm_cputs(b, "{\"name\": ");
    gm_json_write_string(&b->t, tc->name ? tc->name : "", tc->name ? strlen(tc->name) : 0);
    gm_cputs(b, ", \"parameters\": ");
    if (st) /* not JSON: the text as a JSON string */
        gm_json_write_string(&b->t, args, strlen(args));
    else
        gm_json_write_py(&b->t, v);
    gm_cputs(b, "}");
    gm_json_free(v);
    return GEMMA_OK;
}

/* A tool result: the function's name from the call it answers (by id), else its own. */
static void g3_result(gm_cbuf *b, const gemma_chat_message *m, const gemma_chat_message *caller)
{
    const char *name = m->name && m->name[0] ? m->name : "unknown";
    for (size_t j = 0; caller && j < caller->n_tool_calls; j++) {
        const char *a = caller->tool_calls[j].id, *t = m->tool_call_id;
        if (a && a[0] && t && !strcmp(a, t) && caller->tool_calls[j].name)
            name = caller->tool_calls[j].name;
    }
    gm_cputs(b, "{\"name\": ");
    gm_json_write_string(&b->t, name, strlen(name));
    gm_cputs(b, ", \"response\": ");
    gm_json_write_string(&b->t, gm_content(m), strlen(gm_content(m)));
    gm_cputs(b, "}");
}

static void end_turn(gm_cbuf *b)
{
    gm_cmark(b, "<end_of_turn>");
    gm_cputs(b, "\n");
}

/* The Hugging Face Gemma 3 template (llama.cpp renders it from the GGUF), plus tools. Tool
 * results count as the user's turn; consecutive ones share it. */
gemma_status gm_render_gemma3(gm_chat_ctx *c, const gemma_chat_message *msgs, size_t n)
{
    gm_cbuf *b = c->b;
    gm_put_bos(c);
    size_t first = n && gm_role_is(&msgs[0], "system");
    const gemma_chat_message *caller = NULL;
    size_t turn = 0;
    bool in_tool = false;
    gemma_status st = GEMMA_OK;
    for (size_t i = first; i < n && !st; i++) {
        const gemma_chat_message *m = &msgs[i];
        const bool tool = gm_role_is(m, "tool"), user = tool || gm_role_is(m, "user");
        if (tool && in_tool) {
            gm_cputs(b, "\n");
        } else {
            if (in_tool)
                end_turn(b);
            in_tool = false;
            if (user != (turn % 2 == 0) || (!user && !gm_is_assistant(m)))
                return gm_fail(c->err, GEMMA_E_CHAT, "message %zu has role \"%s\", expected \"%s\": Gemma "
                               "conversations alternate user (or tool results)/assistant after an optional "
                               "leading system message", i, m->role, turn % 2 == 0 ? "user" : "assistant");
            gm_cmark(b, "<start_of_turn>");
            gm_cputs(b, user ? "user\n" : "model\n");
            if (turn++ == 0 && !c->o->continuation)
                g3_prefix(c, first ? gm_content(&msgs[0]) : NULL);
        }
        if (tool) {
            g3_result(b, m, caller);
            in_tool = true;
            continue;
        }
        size_t at = b->t.n;
        gm_cput_trimmed(b, gm_content(m), strlen(gm_content(m)));
        for (size_t k = 0; k < m->n_tool_calls && !st; k++) {
            if (b->t.n > at)
                gm_cputs(b, "\n");
            st = g3_call(b, &m->tool_calls[k]);
        }
        end_turn(b);
        if (!user)
            caller = m;
    }
    if (in_tool)
        end_turn(b);
    if (!st && c->o->add_generation_prompt) {
        gm_cmark(b, "<start_of_turn>");
        gm_cputs(b, "model\n");
    }
    return st;
}

/* tools: a JSON array (NULL or empty: none); errors name the offending element. */
static gemma_status parse_tools(const char *text, gm_json **out, gemma_error *err)
{
    *out = NULL;
    if (!text)
        return GEMMA_OK;
    gemma_status st = gm_json_parse(text, strlen(text), out, err);
    if (st)
        return st == GEMMA_E_NOMEM ? st : gm_fail(err, GEMMA_E_CHAT, "tools: %s", err ? err->message : "bad JSON");
    if ((*out)->type != GM_JSON_ARRAY) {
        gm_json_free(*out);
        *out = NULL;
        return gm_fail(err, GEMMA_E_CHAT, "tools: must be a JSON array");
    }
    return GEMMA_OK;
}

gemma_status gm_chat_render_marked(const gm_vocab *v, gm_chat_family family, const gemma_chat_message *msgs,
                                   size_t n_msgs, const gm_chat_opts *opts, gm_chat_text *out, gemma_error *err)
{
    memset(out, 0, sizeof *out);
    if (!v || !opts || (!msgs && n_msgs))
        return gm_fail(err, GEMMA_E_INVALID_ARG, "chat: NULL argument");
    for (size_t i = 0; i < n_msgs; i++) {
        if (!msgs[i].role)
            return gm_fail(err, GEMMA_E_CHAT, "message %zu: role must not be NULL", i);
        if (!msgs[i].content && !msgs[i].n_tool_calls)
            return gm_fail(err, GEMMA_E_CHAT, "message %zu: content must not be NULL (except with tool calls)", i);
        if (msgs[i].n_tool_calls && !msgs[i].tool_calls)
            return gm_fail(err, GEMMA_E_CHAT, "message %zu: tool_calls is NULL", i);
    }
    gm_cbuf b = {0};
    gm_json *tools;
    gemma_status st = parse_tools(opts->tools, &tools, err);
    gm_chat_ctx c = {v, opts, tools, &b, err};
    gm_cput(&b, "", 0);
    if (!st)
        st = family == GM_CHAT_GEMMA4 ? gm_render_gemma4(&c, msgs, n_msgs) : gm_render_gemma3(&c, msgs, n_msgs);
    gm_json_free(tools);
    if (!st && b.t.oom)
        st = gm_fail(err, GEMMA_E_NOMEM, "chat: out of memory");
    if (st) {
        free(b.t.p);
        free(b.mk);
        return st;
    }
    *out = (gm_chat_text){b.t.p, b.t.n, b.mk, b.n_mk};
    return GEMMA_OK;
}

void gm_chat_text_free(gm_chat_text *t)
{
    free(t->text);
    free(t->marks);
    memset(t, 0, sizeof *t);
}

gemma_status gm_chat_render(const gm_vocab *v, gm_chat_family family, const gemma_chat_message *msgs, size_t n_msgs,
                            const gm_chat_opts *opts, char **out, size_t *len, gemma_error *err)
{
    gm_chat_text t;
    gemma_status st = gm_chat_render_marked(v, family, msgs, n_msgs, opts, &t, err);
    free(t.marks);
    *out = t.text;
    *len = t.len;
    return st;
}

/* A marker is its token when the vocabulary has it as a special token, else plain text. */
static gemma_status push_mark(const gm_vocab *v, const char *s, size_t n, gm_tokens *out, gemma_error *err)
{
    gemma_token id = gm_vocab_find(v, s, n);
    if (id >= 0 && (gm_vocab_attr(v, id) & (GM_ATTR_CONTROL | GM_ATTR_USER_DEFINED)))
        return gm_tokens_push(out, id) ? gm_fail(err, GEMMA_E_NOMEM, "chat: out of memory") : GEMMA_OK;
    return gm_tokenize_split(v, s, n, false, GM_SPLIT_ALL, out, err);
}

gemma_status gm_chat_tokenize(const gm_vocab *v, const gm_chat_text *t, bool trusted, gm_tokens *out,
                              gemma_error *err)
{
    if (trusted) /* the whole text, control-token text in content included, as before */
        return gm_tokenize_split(v, t->text, t->len, false, GM_SPLIT_ALL, out, err);
    size_t at = 0;
    gemma_status st = GEMMA_OK;
    for (size_t k = 0; k <= t->n_marks && !st; k++) {
        size_t end = k < t->n_marks ? t->marks[k].off : t->len;
        if (end > at)
            st = gm_tokenize_split(v, t->text + at, end - at, false, GM_SPLIT_TEXT, out, err);
        if (!st && k < t->n_marks) {
            st = push_mark(v, t->text + end, t->marks[k].len, out, err);
            at = end + t->marks[k].len;
        }
    }
    return st;
}
