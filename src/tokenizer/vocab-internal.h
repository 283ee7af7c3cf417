/* The layout of gm_vocab, shared by the tokenizer's .c files only. */
#ifndef GM_VOCAB_INTERNAL_H
#define GM_VOCAB_INTERNAL_H

#include "tokenizer.h"

/* Open-addressing table of uint32 values (value + 1; 0 = empty), keyed by byte strings
 * that the owner knows how to compare. */
typedef struct gm_htab {
    uint32_t *slots;
    uint32_t mask; /* capacity - 1 (power of two) */
} gm_htab;

/* text -> id: each slot holds (hash tag << 32 | id + 1), so most misses and collisions
 * are settled without touching the token texts (the hot path of both engines). */
typedef struct gm_tok_htab {
    uint64_t *slots;
    uint32_t mask;
} gm_tok_htab;

typedef struct gm_tok_span {
    uint32_t off, len; /* text of token i: arena[off .. off + len) */
} gm_tok_span;

/* Trie over the texts of special-token candidates (CONTROL, USER_DEFINED, UNKNOWN).
 * The root's children are a direct table (most bytes of ordinary text fail there);
 * deeper edges go through a hash keyed by (node << 8 | byte). */
typedef struct gm_trie {
    uint32_t root[256];  /* child node index, 0 = none */
    /* nodes with a single child (runs of one byte, most of a token's text) skip the hash */
    uint8_t *one_b;
    uint32_t *one_c;     /* that child, 0 = none; UINT32_MAX = several (use the hash) */
    uint32_t *edge_key;  /* (parent << 8 | byte) + 1, 0 = empty */
    uint32_t *edge_val;
    uint32_t edge_mask;
    int32_t *term;       /* per node: token id ending here, -1 none */
    uint32_t n_nodes, cap_nodes;
    uint32_t max_len;
    /* distinct candidate lengths, longest first, and length -> index in that list */
    uint32_t *lens;
    uint32_t n_lens;
    uint32_t *len_index; /* [max_len + 1] */
} gm_trie;

struct gm_vocab {
    gm_vocab_kind kind;
    int32_t n;
    char *arena;       /* all token texts, back to back (< 4 GiB) */
    gm_tok_span *tok;
    float *score;
    uint8_t *attr;
    gm_tok_htab tok_ht;
    gemma_token byte_tok[256];

    /* BPE merges: concatenated pair text, split position and rank */
    char *m_arena;
    uint64_t *m_off;
    uint32_t *m_len;
    uint32_t *m_left;
    uint32_t n_merges;
    gm_htab merge_ht;

    gm_trie trie;

    /* texts that can span a word boundary (segment.c); n_cross > GM_SPLIT_MAX_CROSS: never split */
    struct gm_cross *cross;
    uint32_t n_cross;

    gemma_token bos, eos, unk, pad, eot;
    bool add_bos, add_eos, add_space_prefix, clean_spaces;
    uint8_t *eog; /* per token: 1 when it ends generation */
};

uint64_t gm_hash_bytes(const void *p, size_t n);

/* BPE merge rank of (left, right), where left and right are adjacent in memory
 * (left = p[0..left_len), right = p[left_len..total)); -1 when not a merge. */
int32_t gm_vocab_merge_rank(const gm_vocab *v, const char *p, size_t left_len, size_t total);

/* Trie walking: the child of node for byte b (0 = none; node 0 is the root), and the
 * candidate id whose text is exactly s[0..len) (-1 when none). */
uint32_t gm_trie_step(const gm_vocab *v, uint32_t node, uint8_t b);
int32_t gm_trie_match(const gm_vocab *v, const uint8_t *s, size_t len);

/* Scratch space reused across the fragments of one gm_tokenize call. */
typedef struct gm_tok_scratch {
    void *sym;
    size_t sym_cap;
    void *heap;
    size_t heap_cap;
    char *buf;
    size_t buf_cap;
    char *buf2;
    size_t buf2_cap;
    struct gm_word_cache *words;
} gm_tok_scratch;

void gm_tok_scratch_free(gm_tok_scratch *sc);

/* ---- words (segment.c) ---------------------------------------------------------------- */

/* Finds, at load, the texts (tokens for SPM, merge results for BPE) that contain a U+2581
 * right after another character; the word split below must not cut through those. */
gemma_status gm_vocab_init_split(gm_vocab *v, gemma_error *err);

/* The merge engine's work on one word, text[0..len), appended to out. */
typedef gemma_status (*gm_word_fn)(void *ctx, const char *text, size_t len, gm_tokens *out, gemma_error *err);

/* Runs fn on each word of text[0..len) and appends the ids, exactly as fn on the whole text
 * would: words start at a U+2581 that follows another character, unless a vocabulary text
 * spans that point. A word seen before in this call is copied from sc's cache. */
gemma_status gm_encode_words(const gm_vocab *v, const char *text, size_t len, gm_tok_scratch *sc, gm_word_fn fn,
                             void *ctx, gm_tokens *out, gemma_error *err);

/* Engines, called per raw fragment (already space-escaped) by gm_tokenize. */
gemma_status gm_spm_encode(const gm_vocab *v, const char *text, size_t len, gm_tok_scratch *sc,
                           gm_tokens *out, gemma_error *err);
gemma_status gm_bpe_encode(const gm_vocab *v, const char *text, size_t len, gm_tok_scratch *sc,
                           gm_tokens *out, gemma_error *err);

/* Merge queue shared by both engines: a binary min-heap on key, where key packs
 * (priority << 32 | left index) so ties go to the smaller left index. */
typedef struct gm_bigram {
    uint64_t key;
    int32_t right;
    uint32_t size;
    int32_t id;
} gm_bigram;

typedef struct gm_heap {
    gm_bigram *a;
    size_t n, cap;
} gm_heap;

bool gm_heap_push(gm_heap *h, gm_bigram b);
gm_bigram gm_heap_pop(gm_heap *h);

/* Symbols of the merge loops: a doubly linked list over the fragment's characters. */
typedef struct gm_sym {
    int32_t prev, next;
    uint32_t off, n;
    int32_t id;
} gm_sym;

bool gm_scratch_reserve(void **p, size_t *cap, size_t n, size_t elem);

#endif
