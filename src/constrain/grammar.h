/* Constrained decoding, internal API: a GBNF-like grammar (docs/grammar.md) compiled to a
 * pushdown automaton over bytes, a matcher that runs it over the model's token byte strings,
 * and the JSON-Schema -> grammar compiler. A compiled grammar is immutable and may be shared
 * by any number of threads; a matcher is one generation's state (one thread at a time). */
#ifndef GM_GRAMMAR_H
#define GM_GRAMMAR_H

#include "gemma.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Limits that keep hostile grammars and schemas bounded in memory and time. */
#define GM_G_MAX_TEXT (4u << 20)      /* grammar text bytes */
#define GM_G_MAX_ELEMS (1u << 21)     /* automaton elements after expanding repetitions */
#define GM_G_MAX_REPEAT 10000         /* n in x{m,n} */
#define GM_G_MAX_NEST 200             /* nested parentheses */
#define GM_G_MAX_STACK 256            /* pushdown stack depth at run time (deeper paths die) */
#define GM_G_MAX_STACKS 4096          /* live parse stacks (ambiguity) */

/* Element kinds. A rule's alternative is a run of elements ending with END. */
enum { GM_EL_CHARS = 0, GM_EL_RULE = 1, GM_EL_END = 2 };

typedef struct gm_gel {
    uint32_t kind : 2;
    uint32_t arg : 30; /* CHARS: byte-set index; RULE: rule id */
} gm_gel;

typedef struct gm_grammar {
    gm_gel *el;
    uint32_t n_el;
    uint32_t *alt;      /* alternative start positions in el, rule by rule */
    uint32_t *rule_alt; /* rule r's alternatives: alt[rule_alt[r] .. rule_alt[r + 1]) */
    uint32_t n_rules;
    uint64_t (*sets)[4]; /* 256-bit byte sets */
    uint32_t n_sets;
    uint32_t root;
} gm_grammar;

/* Compiles grammar text; root names the start rule ("root" when NULL). Errors name the line. */
gemma_status gm_grammar_compile(const char *text, size_t len, const char *root, gm_grammar **out,
                                gemma_error *err);
void gm_grammar_free(gm_grammar *g);

/* JSON Schema (text) -> grammar text. Rule names start with prefix (may be ""); the value's
 * rule is named prefix "root" when prefix is empty, else prefix itself. *out is malloc'ed and
 * NUL-terminated. Errors name the schema path (JSON pointer). */
gemma_status gm_schema_to_grammar(const char *schema, size_t len, const char *prefix, char **out,
                                  size_t *out_len, gemma_error *err);

/* ---- matching --------------------------------------------------------------------------- */

/* The model's tokens as a byte trie (pre-order), shared by all constraints on one model. */
typedef struct gm_token_trie gm_token_trie;
gemma_status gm_token_trie_build(const gemma_model *model, gm_token_trie **out, gemma_error *err);
void gm_token_trie_free(gm_token_trie *t);

typedef struct gm_matcher gm_matcher;
gemma_status gm_matcher_create(const gm_grammar *g, const gm_token_trie *trie, gm_matcher **out);
void gm_matcher_free(gm_matcher *m);
/* Feeds bytes; false (state unchanged) when they cannot continue the grammar. */
bool gm_matcher_feed(gm_matcher *m, const uint8_t *s, size_t n);
/* True when the text so far is a complete sentence of the grammar. */
bool gm_matcher_accepting(const gm_matcher *m);
/* True when no further byte can be added (only the end of generation may follow). */
bool gm_matcher_finished(const gm_matcher *m);
/* Would token t (not an end-of-generation token) continue the grammar? */
bool gm_matcher_allows(gm_matcher *m, gemma_token t);
/* Accepts token t (its bytes must be allowed); false when they are not. */
bool gm_matcher_accept_token(gm_matcher *m, gemma_token t);
/* Sets logits of every token that cannot continue the grammar to -inf (end-of-generation
 * tokens stay only when the grammar accepts). Returns the number of tokens left. */
size_t gm_matcher_mask(gm_matcher *m, float *logits);

/* A matcher for constraint c on model (GEMMA_E_INVALID_ARG when c was built for another). */
gemma_status gm_constraint_matcher(const gemma_constraint *c, const gemma_model *model, gm_matcher **out);

#endif
