/* Public tokenizer and chat-template functions of gemma.h, over the model's vocabulary. They
 * live in the runtime layer because they reach the vocabulary through the model (model.h);
 * the tokenizer itself knows nothing of models. */
#include "../tokenizer/tokenizer.h"
#include "../model/model.h"
#include "../util/util.h"

#include <stdlib.h>
#include <string.h>

static const gm_vocab *vocab_of(const gemma_model *m) { return m ? gm_model_vocab(m) : NULL; }

GEMMA_API gemma_status gemma_tokenize(const gemma_model *model, const char *text, size_t len, bool add_bos,
                                      bool parse_special, gemma_token *tokens, size_t cap, size_t *n_tokens)
{
    const gm_vocab *v = vocab_of(model);
    if (n_tokens)
        *n_tokens = 0;
    if (!v || !n_tokens || (!text && len) || (!tokens && cap))
        return GEMMA_E_INVALID_ARG;
    gm_tokens t = {0};
    gemma_status st = gm_tokenize(v, text, len, add_bos, parse_special, &t, NULL);
    if (!st) {
        *n_tokens = t.n;
        if (t.n > cap)
            st = GEMMA_E_BUFFER_TOO_SMALL;
        else if (t.n)
            memcpy(tokens, t.ids, t.n * sizeof *tokens);
    }
    gm_tokens_free(&t);
    return st;
}

GEMMA_API gemma_status gemma_token_to_piece(const gemma_model *model, gemma_token token, bool special, char *buf,
                                            size_t cap, size_t *len)
{
    return gm_token_to_piece(vocab_of(model), token, special, buf, cap, len);
}

GEMMA_API int32_t gemma_vocab_size(const gemma_model *model)
{
    const gm_vocab *v = vocab_of(model);
    return v ? gm_vocab_n(v) : 0;
}

GEMMA_API gemma_token gemma_token_bos(const gemma_model *model)
{
    const gm_vocab *v = vocab_of(model);
    return v ? gm_vocab_bos(v) : -1;
}

GEMMA_API gemma_token gemma_token_eos(const gemma_model *model)
{
    const gm_vocab *v = vocab_of(model);
    return v ? gm_vocab_eos(v) : -1;
}

GEMMA_API bool gemma_token_is_eog(const gemma_model *model, gemma_token token)
{
    const gm_vocab *v = vocab_of(model);
    return v && gm_vocab_is_eog(v, token);
}

/* The public handle wraps the internal streaming detokenizer. */
struct gemma_detok {
    gm_detok *d;
};

GEMMA_API gemma_status gemma_detok_create(const gemma_model *model, bool special, gemma_detok **out)
{
    if (!out)
        return GEMMA_E_INVALID_ARG;
    *out = NULL;
    const gm_vocab *v = vocab_of(model);
    if (!v)
        return GEMMA_E_INVALID_ARG;
    gemma_detok *p = calloc(1, sizeof *p);
    if (!p)
        return GEMMA_E_NOMEM;
    gemma_status st = gm_detok_create(v, special, &p->d);
    if (st) {
        free(p);
        return st;
    }
    *out = p;
    return GEMMA_OK;
}

GEMMA_API void gemma_detok_free(gemma_detok *d)
{
    if (!d)
        return;
    gm_detok_free(d->d);
    free(d);
}

GEMMA_API gemma_status gemma_detok_push(gemma_detok *d, gemma_token token, const char **text, size_t *len)
{
    if (!d || !text || !len)
        return GEMMA_E_INVALID_ARG;
    return gm_detok_push(d->d, token, text, len);
}

GEMMA_API gemma_status gemma_detok_flush(gemma_detok *d, const char **text, size_t *len)
{
    if (!d || !text || !len)
        return GEMMA_E_INVALID_ARG;
    return gm_detok_flush(d->d, text, len);
}

#define CHAT_PARAMS_MIN GM_ABI_MIN(gemma_chat_params, tools)

static const gemma_chat_params chat_defaults = {.size = sizeof chat_defaults, .add_generation_prompt = true,
                                                .add_bos = true};

GEMMA_API gemma_status gemma_chat_params_init(gemma_chat_params *p, size_t size)
{
    return p ? gm_abi_write(p, size, &chat_defaults, sizeof chat_defaults, CHAT_PARAMS_MIN) : GEMMA_E_INVALID_ARG;
}

gemma_status gm_chat_params_read(const gemma_chat_params *params, gemma_chat_params *p, gemma_error *err)
{
    *p = chat_defaults;
    return params ? gm_abi_read(p, sizeof *p, params, CHAT_PARAMS_MIN, "gemma_chat_params", err) : GEMMA_OK;
}

static gemma_status render_marked(const gemma_model *model, const gemma_chat_message *msgs, size_t n_msgs,
                                  const gemma_chat_params *p, bool continuation, gm_chat_text *t, gemma_error *err)
{
    const gm_chat_family fam = gm_model_chat_family(model);
    gm_chat_opts o = {p->add_generation_prompt, p->add_bos, p->enable_thinking, p->tools, continuation};
    return gm_chat_render_marked(gm_model_vocab(model), fam, msgs, n_msgs, &o, t, err);
}

GEMMA_API gemma_status gemma_chat_render(const gemma_model *model, const gemma_chat_message *msgs, size_t n_msgs,
                                         bool add_generation_prompt, bool add_bos, char *buf, size_t cap,
                                         size_t *len, gemma_error *err)
{
    if (len)
        *len = 0;
    if (!vocab_of(model) || !len || (!buf && cap))
        return gm_fail(err, GEMMA_E_INVALID_ARG, "gemma_chat_render: NULL model, len or buffer");
    gemma_chat_params p = chat_defaults;
    p.add_generation_prompt = add_generation_prompt;
    p.add_bos = add_bos;
    gm_chat_text t;
    gemma_status st = render_marked(model, msgs, n_msgs, &p, false, &t, err);
    if (st)
        return st;
    *len = t.len;
    if (cap <= t.len)
        st = gm_fail(err, GEMMA_E_BUFFER_TOO_SMALL, "chat: %zu bytes needed, buffer holds %zu", t.len + 1, cap);
    else
        memcpy(buf, t.text, t.len + 1);
    gm_chat_text_free(&t);
    return st;
}

gemma_status gm_chat_tokenize_model(const gemma_model *model, const gemma_chat_message *msgs, size_t n_msgs,
                                   const gemma_chat_params *p, bool continuation, gm_tokens *out, gemma_error *err)
{
    gm_chat_text t;
    gemma_status st = render_marked(model, msgs, n_msgs, p, continuation, &t, err);
    if (!st)
        st = gm_chat_tokenize(vocab_of(model), &t, p->trusted_content, out, err);
    gm_chat_text_free(&t);
    return st;
}

GEMMA_API gemma_status gemma_chat_tokenize(const gemma_model *model, const gemma_chat_message *msgs,
                                           size_t n_msgs, const gemma_chat_params *params, gemma_token *tokens,
                                           size_t cap, size_t *n_tokens, gemma_error *err)
{
    if (n_tokens)
        *n_tokens = 0;
    if (!vocab_of(model) || !n_tokens || (!tokens && cap))
        return gm_fail(err, GEMMA_E_INVALID_ARG, "gemma_chat_tokenize: NULL model, n_tokens or buffer");
    gemma_chat_params p;
    gm_tokens ids = {0};
    gemma_status st = gm_chat_params_read(params, &p, err);
    if (!st)
        st = gm_chat_tokenize_model(model, msgs, n_msgs, &p, false, &ids, err);
    if (!st) {
        *n_tokens = ids.n;
        if (ids.n > cap)
            st = gm_fail(err, GEMMA_E_BUFFER_TOO_SMALL, "chat: %zu tokens, buffer holds %zu", ids.n, cap);
        else if (ids.n)
            memcpy(tokens, ids.ids, ids.n * sizeof *tokens);
    }
    gm_tokens_free(&ids);
    return st;
}

GEMMA_API gemma_status gemma_chat_parser_create(const gemma_model *model, const gemma_chat_params *params,
                                                gemma_chat_parser **out, gemma_error *err)
{
    if (!out)
        return gm_fail(err, GEMMA_E_INVALID_ARG, "gemma_chat_parser_create: out is NULL");
    *out = NULL;
    if (!model)
        return gm_fail(err, GEMMA_E_INVALID_ARG, "gemma_chat_parser_create: model is NULL");
    const gm_chat_family fam = gm_model_chat_family(model);
    gemma_chat_params p;
    gemma_status st = gm_chat_params_read(params, &p, err);
    if (st)
        return st;
    /* "tools": any non-empty array (a tool is an object) */
    if (!(*out = gm_chat_parser_new(fam, p.tools && strchr(p.tools, '{'))))
        return gm_fail(err, GEMMA_E_NOMEM, "out of memory");
    return GEMMA_OK;
}
