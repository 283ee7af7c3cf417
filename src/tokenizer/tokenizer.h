/* Internal tokenizer API: vocabulary loading (tokenizer.ggml.* keys), SentencePiece-style
 * (Gemma 1-3) and rank-BPE (Gemma 4) encoding, detokenization and chat rendering.
 * Behaviour follows docs/gemma-spec.md section 5 (llama.cpp's llama-vocab.cpp).
 * A gm_vocab is immutable after loading and may be shared by any number of threads. */
#ifndef GM_TOKENIZER_H
#define GM_TOKENIZER_H

#include "gemma.h"
#include "../gguf/gguf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct gm_vocab gm_vocab;

typedef enum gm_vocab_kind {
    GM_VOCAB_SPM = 1, /* tokenizer.ggml.model == "llama" (Gemma 1/2/3) */
    GM_VOCAB_BPE = 2  /* tokenizer.ggml.model == "gemma4" */
} gm_vocab_kind;

/* Token attributes (a bit set, as llama.cpp keeps them). */
enum {
    GM_ATTR_UNDEFINED = 0,
    GM_ATTR_UNKNOWN = 1 << 0,
    GM_ATTR_UNUSED = 1 << 1,
    GM_ATTR_NORMAL = 1 << 2,
    GM_ATTR_CONTROL = 1 << 3,
    GM_ATTR_USER_DEFINED = 1 << 4,
    GM_ATTR_BYTE = 1 << 5
};

/* Reads and validates the tokenizer.ggml.* keys. Any inconsistency is GEMMA_E_MODEL
 * with a message naming the key; an unknown tokenizer model is GEMMA_E_UNSUPPORTED.
 * The vocab copies what it needs: it does not refer into ctx afterwards. */
gemma_status gm_vocab_load(const gguf_ctx *ctx, gm_vocab **out, gemma_error *err);
void gm_vocab_free(gm_vocab *v);

gm_vocab_kind gm_vocab_kind_of(const gm_vocab *v);
int32_t gm_vocab_n(const gm_vocab *v);
gemma_token gm_vocab_bos(const gm_vocab *v); /* -1 when none */
gemma_token gm_vocab_eos(const gm_vocab *v);
bool gm_vocab_add_bos(const gm_vocab *v);
bool gm_vocab_is_eog(const gm_vocab *v, gemma_token t);
/* Attribute bits of t (0 when out of range). */
uint32_t gm_vocab_attr(const gm_vocab *v, gemma_token t);
/* Raw token text (bytes, not NUL-terminated); NULL when t is out of range. */
const char *gm_vocab_text(const gm_vocab *v, gemma_token t, size_t *len);
/* Exact text -> id lookup (last id wins for duplicate texts, as in llama.cpp); -1 if absent. */
gemma_token gm_vocab_find(const gm_vocab *v, const char *text, size_t len);
float gm_vocab_score(const gm_vocab *v, gemma_token t);

/* A growable array of token ids. */
typedef struct gm_tokens {
    gemma_token *ids;
    size_t n, cap;
} gm_tokens;

gemma_status gm_tokens_push(gm_tokens *t, gemma_token id);
void gm_tokens_free(gm_tokens *t);

/* Appends the tokens of text[0..len) to out. add_special: BOS (and EOS) when the vocab asks
 * for them; parse_special: split out control-token text (user-defined tokens are always
 * split out). Any byte sequence is accepted. */
gemma_status gm_tokenize(const gm_vocab *v, const char *text, size_t len, bool add_special,
                         bool parse_special, gm_tokens *out, gemma_error *err);

/* Which special-token texts gm_tokenize_split turns into their token. */
typedef enum gm_split {
    GM_SPLIT_USER = 0, /* user-defined tokens only (parse_special false) */
    GM_SPLIT_ALL = 1,  /* control tokens too (parse_special true) */
    GM_SPLIT_TEXT = 2  /* chat content: user-defined tokens except marker-shaped ones (<|...>, <...|>) */
} gm_split;

gemma_status gm_tokenize_split(const gm_vocab *v, const char *text, size_t len, bool add_special, gm_split split,
                               gm_tokens *out, gemma_error *err);

/* Byte-fallback token for byte b: "<0xHH>" (SPM also tries the 1-char token); -1 if none. */
gemma_token gm_vocab_byte_token(const gm_vocab *v, uint8_t b);

/* Text of one token per spec 5.5. Writes up to cap bytes; *len gets the full length.
 * Returns GEMMA_E_BUFFER_TOO_SMALL when cap < *len, GEMMA_E_INVALID_ARG for a bad id. */
gemma_status gm_token_to_piece(const gm_vocab *v, gemma_token t, bool special, char *buf,
                               size_t cap, size_t *len);

/* Whole-sequence detokenization (llama_detokenize): remove_special drops a leading BOS and
 * a trailing EOS when the vocab adds them; clean_spaces applies for the BPE vocab.
 * *out is malloc'ed and NUL-terminated; *len excludes the NUL. */
gemma_status gm_detokenize(const gm_vocab *v, const gemma_token *ids, size_t n, bool remove_special,
                           bool special, char **out, size_t *len);

/* Streaming detokenizer: holds back incomplete UTF-8 so output is always valid UTF-8. */
typedef struct gm_detok gm_detok;
gemma_status gm_detok_create(const gm_vocab *v, bool special, gm_detok **out);
void gm_detok_free(gm_detok *d);
gemma_status gm_detok_push(gm_detok *d, gemma_token t, const char **text, size_t *len);
gemma_status gm_detok_flush(gm_detok *d, const char **text, size_t *len);

/* Chat rendering. The family comes from the architecture's ops entry (gm_model_chat_family). */
typedef enum gm_chat_family {
    GM_CHAT_GEMMA3 = 1, /* gemma, gemma2, gemma3, gemma3n: <start_of_turn>role ... */
    GM_CHAT_GEMMA4 = 2  /* gemma4: <|turn>role ... <turn|> */
} gm_chat_family;


typedef struct gm_chat_opts {
    bool add_generation_prompt;
    bool add_bos;
    bool enable_thinking; /* Gemma 4 only */
    const char *tools;    /* OpenAI tools, JSON text (NULL: none) */
    bool continuation;    /* later turns of a session: no system turn or tool declarations again */
} gm_chat_opts;

/* Renders msgs into a malloc'ed NUL-terminated string (*out, *len without the NUL).
 * GEMMA_E_CHAT with a message for bad roles or non-alternating turns. */
gemma_status gm_chat_render(const gm_vocab *v, gm_chat_family family, const gemma_chat_message *msgs,
                            size_t n_msgs, const gm_chat_opts *opts, char **out, size_t *len,
                            gemma_error *err);

/* A rendered chat and the spans of the template's own markers in it (BOS, turn and channel
 * markers). Everything else, message content above all, is text. */
typedef struct gm_chat_mark {
    size_t off, len;
} gm_chat_mark;

typedef struct gm_chat_text {
    char *text; /* NUL-terminated */
    size_t len;
    gm_chat_mark *marks;
    size_t n_marks;
} gm_chat_text;

gemma_status gm_chat_render_marked(const gm_vocab *v, gm_chat_family family, const gemma_chat_message *msgs,
                                   size_t n_msgs, const gm_chat_opts *opts, gm_chat_text *out, gemma_error *err);
void gm_chat_text_free(gm_chat_text *t);

/* Appends the tokens of a rendered chat: markers become their special tokens, the text
 * between them is tokenized without turning control or marker-shaped text into tokens
 * (so content cannot forge turns). trusted: the whole text with every special token parsed. */
gemma_status gm_chat_tokenize(const gm_vocab *v, const gm_chat_text *t, bool trusted, gm_tokens *out,
                              gemma_error *err);

/* params (NULL: defaults) read over the defaults into *p, as gemma.h's growable structs are. */
gemma_status gm_chat_params_read(const gemma_chat_params *params, gemma_chat_params *p, gemma_error *err);

/* Renders msgs for model and tokenizes them as gm_chat_tokenize does (api.c).
 * continuation: a later turn of a session (no system turn again). */
gemma_status gm_chat_tokenize_model(const gemma_model *model, const gemma_chat_message *msgs, size_t n_msgs,
                                   const gemma_chat_params *p, bool continuation, gm_tokens *out, gemma_error *err);

/* A parser for family's output (chat-parse.c); tools: Gemma 3 looks for calls. NULL when out of memory. */
gemma_chat_parser *gm_chat_parser_new(gm_chat_family family, bool tools);

/* UTF-8 helpers shared by the tokenizer files. */
/* Sequence length from the lead byte's high nibble, as llama.cpp's unicode_len_utf8. */
static inline size_t gm_utf8_len(uint8_t c)
{
    static const uint8_t lut[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return lut[c >> 4];
}

#endif
