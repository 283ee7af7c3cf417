/* Chat prompt formats (spec 5.6), hard-coded from the published templates: the Jinja in
 * the file is never executed. Gemma 1/2/3 use <start_of_turn>role\n...<end_of_turn>\n;
 * Gemma 4 uses <|turn>role\n...<turn|>\n with an optional system turn. */
#include "vocab-internal.h"
#include "../util/util.h"

#include <stdlib.h>
#include <string.h>

typedef struct sbuf {
    char *p;
    size_t n, cap;
    bool oom;
} sbuf;

static void put(sbuf *b, const char *s, size_t n)
{
    if (b->oom || !gm_scratch_reserve((void **)&b->p, &b->cap, b->n + n + 1, 1)) {
        b->oom = true;
        return;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void puts_(sbuf *b, const char *s) { put(b, s, strlen(s)); }

static bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

/* Jinja's | trim: leading and trailing whitespace removed. */
static void put_trimmed(sbuf *b, const char *s, size_t n)
{
    while (n && is_ws(*s))
        s++, n--;
    while (n && is_ws(s[n - 1]))
        n--;
    put(b, s, n);
}

gemma_status gm_chat_family_for_arch(const char *arch, gm_chat_family *out, gemma_error *err)
{
    static const char *const g3[] = {"gemma", "gemma2", "gemma3", "gemma3n", "gemma-embedding"};
    for (size_t i = 0; arch && i < sizeof g3 / sizeof *g3; i++)
        if (!strcmp(arch, g3[i])) {
            *out = GM_CHAT_GEMMA3;
            return GEMMA_OK;
        }
    if (arch && !strcmp(arch, "gemma4")) {
        *out = GM_CHAT_GEMMA4;
        return GEMMA_OK;
    }
    return gm_fail(err, GEMMA_E_UNSUPPORTED, "no chat format known for architecture \"%s\"", arch ? arch : "(none)");
}

static bool role_is(const gemma_chat_message *m, const char *r) { return m->role && !strcmp(m->role, r); }
static bool is_assistant(const gemma_chat_message *m) { return role_is(m, "assistant") || role_is(m, "model"); }

static void put_bos(sbuf *b, const gm_vocab *v, bool add_bos)
{
    size_t n;
    const char *t = add_bos && v->bos >= 0 ? gm_vocab_text(v, v->bos, &n) : NULL;
    if (t)
        put(b, t, n);
}

/* The Hugging Face Gemma 3 template (llama.cpp renders it from the GGUF). */
static gemma_status render_gemma3(const gm_vocab *v, const gemma_chat_message *msgs, size_t n,
                                  const gm_chat_opts *o, sbuf *b, gemma_error *err)
{
    put_bos(b, v, o->add_bos);
    size_t first = 0;
    const char *sys = NULL;
    if (n && role_is(&msgs[0], "system")) {
        sys = msgs[0].content;
        first = 1;
    }
    for (size_t i = first; i < n; i++) {
        const gemma_chat_message *m = &msgs[i];
        bool want_user = (i - first) % 2 == 0;
        if (want_user ? !role_is(m, "user") : !is_assistant(m))
            return gm_fail(err, GEMMA_E_CHAT, "message %zu has role \"%s\", expected \"%s\": Gemma conversations "
                           "alternate user/assistant after an optional leading system message",
                           i, m->role ? m->role : "(null)", want_user ? "user" : "assistant");
        puts_(b, "<start_of_turn>");
        puts_(b, want_user ? "user" : "model");
        puts_(b, "\n");
        if (i == first && sys) {
            puts_(b, sys);
            puts_(b, "\n\n");
        }
        put_trimmed(b, m->content, strlen(m->content));
        puts_(b, "<end_of_turn>\n");
    }
    if (o->add_generation_prompt)
        puts_(b, "<start_of_turn>model\n");
    return GEMMA_OK;
}

/* strip_thinking: drop every <|channel>...<channel|> span, then trim. */
static void put_stripped(sbuf *b, const char *s)
{
    sbuf t = {0};
    const char *end = s + strlen(s);
    while (s < end) {
        const char *close = strstr(s, "<channel|>");
        const char *part_end = close ? close : end;
        const char *open = NULL;
        for (const char *q = s; q + 10 <= part_end; q++)
            if (!memcmp(q, "<|channel>", 10)) {
                open = q;
                break;
            }
        put(&t, s, (size_t)((open ? open : part_end) - s));
        s = close ? close + 10 : end;
    }
    if (t.oom)
        b->oom = true;
    else if (t.p)
        put_trimmed(b, t.p, t.n);
    free(t.p);
}

/* google-gemma-4-31B-it.jinja, without tools and media. */
static gemma_status render_gemma4(const gm_vocab *v, const gemma_chat_message *msgs, size_t n,
                                  const gm_chat_opts *o, sbuf *b, gemma_error *err)
{
    put_bos(b, v, o->add_bos);
    size_t first = 0;
    bool has_sys = n && (role_is(&msgs[0], "system") || role_is(&msgs[0], "developer"));
    if (o->enable_thinking || has_sys) {
        puts_(b, "<|turn>system\n");
        if (o->enable_thinking)
            puts_(b, "<|think|>\n");
        if (has_sys) {
            put_trimmed(b, msgs[0].content, strlen(msgs[0].content));
            first = 1;
        }
        puts_(b, "<turn|>\n");
    }
    for (size_t i = first; i < n; i++) {
        const gemma_chat_message *m = &msgs[i];
        if (!role_is(m, "user") && !is_assistant(m) && !role_is(m, "system"))
            return gm_fail(err, GEMMA_E_CHAT, "message %zu has role \"%s\": expected user, assistant or system",
                           i, m->role ? m->role : "(null)");
        bool model = is_assistant(m);
        /* consecutive assistant messages continue the same model turn */
        bool cont = model && i > first && role_is(&msgs[i - 1], "assistant");
        if (!cont) {
            puts_(b, "<|turn>");
            puts_(b, model ? "model" : m->role);
            puts_(b, "\n");
        }
        if (model)
            put_stripped(b, m->content);
        else
            put_trimmed(b, m->content, strlen(m->content));
        puts_(b, "<turn|>\n");
    }
    if (o->add_generation_prompt) {
        puts_(b, "<|turn>model\n");
        if (!o->enable_thinking)
            puts_(b, "<|channel>thought\n<channel|>");
    }
    return GEMMA_OK;
}

gemma_status gm_chat_render(const gm_vocab *v, gm_chat_family family, const gemma_chat_message *msgs, size_t n_msgs,
                            const gm_chat_opts *opts, char **out, size_t *len, gemma_error *err)
{
    *out = NULL;
    *len = 0;
    if (!v || !opts || (!msgs && n_msgs))
        return gm_fail(err, GEMMA_E_INVALID_ARG, "chat: NULL argument");
    for (size_t i = 0; i < n_msgs; i++)
        if (!msgs[i].role || !msgs[i].content)
            return gm_fail(err, GEMMA_E_CHAT, "message %zu: role and content must not be NULL", i);
    sbuf b = {0};
    put(&b, "", 0);
    gemma_status st = family == GM_CHAT_GEMMA4 ? render_gemma4(v, msgs, n_msgs, opts, &b, err)
                                               : render_gemma3(v, msgs, n_msgs, opts, &b, err);
    if (!st && b.oom)
        st = gm_fail(err, GEMMA_E_NOMEM, "chat: out of memory");
    if (st) {
        free(b.p);
        return st;
    }
    *out = b.p;
    *len = b.n;
    return GEMMA_OK;
}
