/* Word split and word cache for both merge engines.
 *
 * Neither engine pre-splits its input on spaces (llama.cpp's SPM session merges a whole
 * fragment at once), yet a merge only ever forms a text of the vocabulary: a token (SPM) or
 * a merge result (BPE). So a point in the text that no such text spans can never be merged
 * across, and the two sides merge independently: cutting there gives the same ids. Gemma's
 * vocabularies have (almost) no token with a U+2581 after another character, so the points
 * before each word's space qualify. Words keep the merge heaps small, and a word met again
 * in the same call is copied from a cache instead of being merged again; on English text
 * that is most words. */
#include "vocab-internal.h"
#include "../util/util.h"

#include <stdlib.h>
#include <string.h>

#define SPACE "\xe2\x96\x81"
#define GM_SPLIT_MAX_CROSS 64    /* a vocabulary with more crossing texts is not split */
#define GM_WORD_MAX_KEY 64       /* longer words are merged every time */
#define GM_WORD_MAX_ENTRIES 65536 /* bounds the cache of one call (a few MB at most) */

typedef struct gm_cross {
    const char *s; /* points into the vocabulary's arenas */
    uint32_t len;
    uint32_t at; /* byte offset of the crossing U+2581 */
} gm_cross;

/* ---- crossing texts ------------------------------------------------------------------ */

static bool is_space(const char *p) { return !memcmp(p, SPACE, 3); }

static gemma_status add_crossings(gm_vocab *v, const char *s, uint32_t len, uint32_t *cap, gemma_error *err)
{
    for (uint32_t k = 1; k + 3 <= len && v->n_cross <= GM_SPLIT_MAX_CROSS; k++) {
        if (!is_space(s + k) || (k >= 3 && is_space(s + k - 3)))
            continue;
        if (v->n_cross == *cap) {
            uint32_t c = *cap ? *cap * 2 : 8;
            gm_cross *p = realloc(v->cross, c * sizeof *p);
            if (!p)
                return gm_fail(err, GEMMA_E_NOMEM, "out of memory for the vocabulary");
            v->cross = p;
            *cap = c;
        }
        v->cross[v->n_cross++] = (gm_cross){s, len, k};
    }
    return GEMMA_OK;
}

gemma_status gm_vocab_init_split(gm_vocab *v, gemma_error *err)
{
    uint32_t cap = 0;
    gemma_status st = GEMMA_OK;
    if (v->kind == GM_VOCAB_SPM)
        for (int32_t i = 0; i < v->n && !st; i++)
            st = add_crossings(v, v->arena + v->tok[i].off, v->tok[i].len, &cap, err);
    else
        for (uint32_t i = 0; i < v->n_merges && !st; i++)
            st = add_crossings(v, v->m_arena + v->m_off[i], v->m_len[i], &cap, err);
    return st;
}

/* Whether no crossing text occurs over the point before text[i] (a U+2581). */
static bool can_split(const gm_vocab *v, const char *text, size_t len, size_t i)
{
    for (uint32_t k = 0; k < v->n_cross; k++) {
        const gm_cross *c = &v->cross[k];
        if (i >= c->at && i - c->at + c->len <= len && !memcmp(text + i - c->at, c->s, c->len))
            return false;
    }
    return true;
}

/* ---- word cache ---------------------------------------------------------------------- */

typedef struct word_entry {
    uint64_t hash;
    uint32_t key_off, key_len;
    uint32_t ids_off, ids_n;
} word_entry;

typedef struct gm_word_cache {
    uint32_t *slots; /* entry index + 1, 0 = empty */
    uint32_t mask;
    word_entry *e;
    uint32_t n;
    size_t cap;
    char *keys;
    size_t keys_n, keys_cap;
    gemma_token *ids;
    size_t ids_n, ids_cap;
} gm_word_cache;

static void cache_free(gm_word_cache *c)
{
    if (!c)
        return;
    free(c->slots);
    free(c->e);
    free(c->keys);
    free(c->ids);
    free(c);
}

void gm_tok_scratch_free(gm_tok_scratch *sc)
{
    free(sc->sym);
    free(sc->heap);
    free(sc->buf);
    free(sc->buf2);
    cache_free(sc->words);
    *sc = (gm_tok_scratch){0};
}

static const word_entry *cache_find(const gm_word_cache *c, const char *s, size_t n, uint64_t h)
{
    if (!c->slots)
        return NULL;
    for (uint32_t i = (uint32_t)h & c->mask;; i = (i + 1) & c->mask) {
        uint32_t k = c->slots[i];
        if (!k)
            return NULL;
        const word_entry *e = &c->e[k - 1];
        if (e->hash == h && e->key_len == n && !memcmp(c->keys + e->key_off, s, n))
            return e;
    }
}

static bool cache_grow_slots(gm_word_cache *c)
{
    uint32_t cap = c->slots ? (c->mask + 1) * 2 : 1024;
    uint32_t *s = calloc(cap, sizeof *s);
    if (!s)
        return false;
    for (uint32_t k = 0; k < c->n; k++) {
        uint32_t i = (uint32_t)c->e[k].hash & (cap - 1);
        while (s[i])
            i = (i + 1) & (cap - 1);
        s[i] = k + 1;
    }
    free(c->slots);
    c->slots = s;
    c->mask = cap - 1;
    return true;
}

/* Remembers word s[0..n) -> ids[0..m). Failing to allocate only loses the cache entry. */
static void cache_put(gm_word_cache *c, const char *s, size_t n, uint64_t h, const gemma_token *ids, size_t m)
{
    if (c->n >= GM_WORD_MAX_ENTRIES)
        return;
    if ((!c->slots || 2 * (c->n + 1) > c->mask + 1) && !cache_grow_slots(c))
        return;
    if (!gm_scratch_reserve((void **)&c->e, &c->cap, c->n + 1, sizeof *c->e))
        return;
    if (!gm_scratch_reserve((void **)&c->keys, &c->keys_cap, c->keys_n + n, 1) ||
        !gm_scratch_reserve((void **)&c->ids, &c->ids_cap, c->ids_n + m, sizeof *c->ids))
        return;
    memcpy(c->keys + c->keys_n, s, n);
    memcpy(c->ids + c->ids_n, ids, m * sizeof *ids);
    c->e[c->n] = (word_entry){h, (uint32_t)c->keys_n, (uint32_t)n, (uint32_t)c->ids_n, (uint32_t)m};
    c->keys_n += n;
    c->ids_n += m;
    uint32_t i = (uint32_t)h & c->mask;
    while (c->slots[i])
        i = (i + 1) & c->mask;
    c->slots[i] = ++c->n;
}

/* ---- driver -------------------------------------------------------------------------- */

static gemma_status push_ids(gm_tokens *out, const gemma_token *ids, size_t n)
{
    for (size_t k = 0; k < n; k++)
        if (gm_tokens_push(out, ids[k]))
            return GEMMA_E_NOMEM;
    return GEMMA_OK;
}

static gemma_status encode_word(gm_tok_scratch *sc, const char *s, size_t n, gm_word_fn fn, void *ctx,
                                gm_tokens *out, gemma_error *err)
{
    if (n > GM_WORD_MAX_KEY)
        return fn(ctx, s, n, out, err);
    if (!sc->words && !(sc->words = calloc(1, sizeof *sc->words)))
        return fn(ctx, s, n, out, err);
    gm_word_cache *c = sc->words;
    uint64_t h = gm_hash_bytes(s, n);
    const word_entry *e = cache_find(c, s, n, h);
    if (e)
        return push_ids(out, c->ids + e->ids_off, e->ids_n) ? gm_fail(err, GEMMA_E_NOMEM, "tokenizer: out of memory")
                                                            : GEMMA_OK;
    size_t first = out->n;
    gemma_status st = fn(ctx, s, n, out, err);
    if (!st)
        cache_put(c, s, n, h, out->ids + first, out->n - first);
    return st;
}

gemma_status gm_encode_words(const gm_vocab *v, const char *text, size_t len, gm_tok_scratch *sc, gm_word_fn fn,
                             void *ctx, gm_tokens *out, gemma_error *err)
{
    if (v->n_cross > GM_SPLIT_MAX_CROSS)
        return fn(ctx, text, len, out, err);
    size_t start = 0;
    bool prev_space = true;
    /* characters as the engines split them (a lead byte claims its length, clipped) */
    for (size_t off = 0; off < len;) {
        size_t cl = GM_MIN(gm_utf8_len((uint8_t)text[off]), len - off);
        bool space = cl == 3 && is_space(text + off);
        if (space && !prev_space && can_split(v, text, len, off)) {
            gemma_status st = encode_word(sc, text + start, off - start, fn, ctx, out, err);
            if (st)
                return st;
            start = off;
        }
        prev_space = space;
        off += cl;
    }
    return encode_word(sc, text + start, len - start, fn, ctx, out, err);
}
