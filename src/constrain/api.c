/* Public constraint API: compile a grammar or a JSON Schema for one model's vocabulary. */
#include "grammar.h"

#include "../util/util.h"

#include <stdlib.h>

struct gemma_constraint {
    const gemma_model *model;
    gm_grammar *g;
    gm_token_trie *trie;
};

static gemma_status finish(const gemma_model *model, gm_grammar *g, gemma_constraint **out, gemma_error *err)
{
    gemma_constraint *c = calloc(1, sizeof *c);
    if (!c) {
        gm_grammar_free(g);
        return gm_fail(err, GEMMA_E_NOMEM, "constraint: out of memory");
    }
    c->model = model;
    c->g = g;
    gemma_status st = gm_token_trie_build(model, &c->trie, err);
    if (st) {
        gemma_constraint_free(c);
        return st;
    }
    *out = c;
    return GEMMA_OK;
}

gemma_status gemma_constraint_from_grammar(const gemma_model *model, const char *grammar, size_t len,
                                           const char *root, gemma_constraint **out, gemma_error *err)
{
    if (!out)
        return gm_fail(err, GEMMA_E_INVALID_ARG, "constraint: out is NULL");
    *out = NULL;
    if (!model)
        return gm_fail(err, GEMMA_E_INVALID_ARG, "constraint: model is NULL");
    gm_grammar *g;
    gemma_status st = gm_grammar_compile(grammar, len, root, &g, err);
    return st ? st : finish(model, g, out, err);
}

gemma_status gemma_constraint_from_json_schema(const gemma_model *model, const char *schema, size_t len,
                                               gemma_constraint **out, gemma_error *err)
{
    if (!out)
        return gm_fail(err, GEMMA_E_INVALID_ARG, "constraint: out is NULL");
    *out = NULL;
    if (!model)
        return gm_fail(err, GEMMA_E_INVALID_ARG, "constraint: model is NULL");
    char *text;
    size_t n;
    gemma_status st = gm_schema_to_grammar(schema, len, NULL, &text, &n, err);
    if (st)
        return st;
    gm_grammar *g;
    st = gm_grammar_compile(text, n, NULL, &g, err);
    free(text);
    if (st) { /* e.g. a $ref cycle that never consumes input */
        gm_err_prefix(err, "schema");
        return st;
    }
    return finish(model, g, out, err);
}

gemma_status gemma_json_schema_to_grammar(const char *schema, size_t len, const char *prefix, char **grammar,
                                          size_t *grammar_len, gemma_error *err)
{
    if (!grammar)
        return gm_fail(err, GEMMA_E_INVALID_ARG, "grammar is NULL");
    return gm_schema_to_grammar(schema, len, prefix, grammar, grammar_len, err);
}

void gemma_constraint_free(gemma_constraint *c)
{
    if (!c)
        return;
    gm_grammar_free(c->g);
    gm_token_trie_free(c->trie);
    free(c);
}

gemma_status gm_constraint_matcher(const gemma_constraint *c, const gemma_model *model, gm_matcher **out)
{
    *out = NULL;
    if (c->model != model)
        return GEMMA_E_INVALID_ARG;
    return gm_matcher_create(c->g, c->trie, out);
}
