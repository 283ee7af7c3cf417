/* Shared by the chat renderers (chat.c: Gemma 1/2/3, chat-gemma4.c: Gemma 4). */
#ifndef GM_CHAT_INTERNAL_H
#define GM_CHAT_INTERNAL_H

#include "tokenizer.h"
#include "../util/json.h"

#include <string.h>

/* The rendered text and where the template's own markers lie in it: only those become
 * special tokens when the chat is tokenized (message content is text). */
typedef struct gm_cbuf {
    gm_str t;
    gm_chat_mark *mk;
    size_t n_mk, cap_mk;
} gm_cbuf;

static inline void gm_cput(gm_cbuf *b, const char *s, size_t n) { gm_str_put(&b->t, s, n); }
static inline void gm_cputs(gm_cbuf *b, const char *s) { gm_str_put(&b->t, s, strlen(s)); }
/* A template marker: "<start_of_turn>", "<|turn>", "<|\"|>", ... */
void gm_cmark(gm_cbuf *b, const char *s);
/* Jinja's | trim (Python's str.strip(): Unicode whitespace too). */
void gm_cput_trimmed(gm_cbuf *b, const char *s, size_t n);

static inline bool gm_role_is(const gemma_chat_message *m, const char *r) { return m->role && !strcmp(m->role, r); }
static inline bool gm_is_assistant(const gemma_chat_message *m)
{
    return gm_role_is(m, "assistant") || gm_role_is(m, "model");
}
static inline const char *gm_content(const gemma_chat_message *m) { return m->content ? m->content : ""; }

/* What the renderers get: options plus the parsed tools (a JSON array, or NULL). */
typedef struct gm_chat_ctx {
    const gm_vocab *v;
    const gm_chat_opts *o;
    const gm_json *tools;
    gm_cbuf *b;
    gemma_error *err;
} gm_chat_ctx;

gemma_status gm_render_gemma4(gm_chat_ctx *c, const gemma_chat_message *msgs, size_t n);
gemma_status gm_render_gemma3(gm_chat_ctx *c, const gemma_chat_message *msgs, size_t n);
void gm_put_bos(gm_chat_ctx *c);

#endif
