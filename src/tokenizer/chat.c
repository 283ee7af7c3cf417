/* Chat prompt formats (spec 5.6), hard-coded from the published templates: the Jinja in
 * the file is never executed. Gemma 1/2/3 use <start_of_turn>role\n...<end_of_turn>\n;
 * Gemma 4 uses <|turn>role\n...<turn|>\n with an optional system turn. */
#include "vocab-internal.h"
#include "../util/util.h"

#include <stdlib.h>
#include <string.h>

/* The rendered text and where the template's own markers lie in it: only those become
 * control tokens when the chat is tokenized (message content is text). */
typedef struct sbuf {
    char *p;
    size_t n, cap;
    gm_chat_mark *mk;
    size_t n_mk, cap_mk;
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

/* A template marker: "<start_of_turn>", "<|turn>", ... */
static void mark(sbuf *b, const char *s)
{
    if (b->oom || !gm_scratch_reserve((void **)&b->mk, &b->cap_mk, b->n_mk + 1, sizeof *b->mk)) {
        b->oom = true;
        return;
    }
    b->mk[b->n_mk++] = (gm_chat_mark){b->n, strlen(s)};
    puts_(b, s);
}

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
    if (t) {
        size_t at = b->n;
        put(b, t, n);
        if (!b->oom && gm_scratch_reserve((void **)&b->mk, &b->cap_mk, b->n_mk + 1, sizeof *b->mk))
            b->mk[b->n_mk++] = (gm_chat_mark){at, n};
        else
            b->oom = true;
    }
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
        mark(b, "<start_of_turn>");
        puts_(b, want_user ? "user" : "model");
        puts_(b, "\n");
        if (i == first && sys) {
            puts_(b, sys);
            puts_(b, "\n\n");
        }
        put_trimmed(b, m->content, strlen(m->content));
        mark(b, "<end_of_turn>");
        puts_(b, "\n");
    }
    if (o->add_generation_prompt) {
        mark(b, "<start_of_turn>");
        puts_(b, "model\n");
    }
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
        mark(b, "<|turn>");
        puts_(b, "system\n");
        if (o->enable_thinking) {
            mark(b, "<|think|>");
            puts_(b, "\n");
        }
        if (has_sys) {
            put_trimmed(b, msgs[0].content, strlen(msgs[0].content));
            first = 1;
        }
        mark(b, "<turn|>");
        puts_(b, "\n");
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
            mark(b, "<|turn>");
            puts_(b, model ? "model" : m->role);
            puts_(b, "\n");
        }
        if (model)
            put_stripped(b, m->content);
        else
            put_trimmed(b, m->content, strlen(m->content));
        mark(b, "<turn|>");
        puts_(b, "\n");
    }
    if (o->add_generation_prompt) {
        mark(b, "<|turn>");
        puts_(b, "model\n");
        if (!o->enable_thinking) {
            mark(b, "<|channel>");
            puts_(b, "thought\n");
            mark(b, "<channel|>");
        }
    }
    return GEMMA_OK;
}

gemma_status gm_chat_render_marked(const gm_vocab *v, gm_chat_family family, const gemma_chat_message *msgs,
                                   size_t n_msgs, const gm_chat_opts *opts, gm_chat_text *out, gemma_error *err)
{
    memset(out, 0, sizeof *out);
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
        free(b.mk);
        return st;
    }
    *out = (gm_chat_text){b.p, b.n, b.mk, b.n_mk};
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
