/* Tokenization driver (special-token pre-split, BOS/EOS, space escaping) and the
 * SentencePiece-style score-merging engine of Gemma 1/2/3 (spec 5.2, 5.3). */
#include "vocab-internal.h"
#include "../util/util.h"

#include <stdlib.h>
#include <string.h>

/* Inputs are limited so that symbol indices and offsets fit in 32 bits after escaping. */
#define GM_TOK_MAX_INPUT ((size_t)1 << 29)

bool gm_scratch_reserve(void **p, size_t *cap, size_t n, size_t elem)
{
    if (n <= *cap)
        return true;
    size_t c = *cap ? *cap : 256;
    while (c < n)
        c *= 2;
    void *q = c > SIZE_MAX / elem ? NULL : realloc(*p, c * elem);
    if (!q)
        return false;
    *p = q;
    *cap = c;
    return true;
}

/* ---- merge queue --------------------------------------------------------------------- */

bool gm_heap_push(gm_heap *h, gm_bigram b)
{
    if (!gm_scratch_reserve((void **)&h->a, &h->cap, h->n + 1, sizeof *h->a))
        return false;
    size_t i = h->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (h->a[p].key <= b.key)
            break;
        h->a[i] = h->a[p];
        i = p;
    }
    h->a[i] = b;
    return true;
}

gm_bigram gm_heap_pop(gm_heap *h)
{
    gm_bigram top = h->a[0], last = h->a[--h->n];
    size_t i = 0, n = h->n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && h->a[c + 1].key < h->a[c].key)
            c++;
        if (last.key <= h->a[c].key)
            break;
        h->a[i] = h->a[c];
        i = c;
    }
    if (n)
        h->a[i] = last;
    return top;
}

/* ---- SPM engine ---------------------------------------------------------------------- */

/* Higher score must pop first: map the float to an unsigned key that sorts descending. */
static uint32_t score_key(float s)
{
    uint32_t u;
    if (s == 0.0f)
        s = 0.0f; /* -0 and +0 compare equal */
    memcpy(&u, &s, 4);
    u = (u & 0x80000000u) ? ~u : (u | 0x80000000u); /* ascending order */
    return ~u;
}

typedef struct spm_state {
    const gm_vocab *v;
    const char *text;
    gm_sym *sym;
    size_t sym_cap;
    gm_heap heap;
} spm_state;

static bool spm_try_pair(spm_state *s, int32_t l, int32_t r)
{
    if (l < 0 || r < 0)
        return true;
    uint32_t size = s->sym[l].n + s->sym[r].n;
    gemma_token id = gm_vocab_find(s->v, s->text + s->sym[l].off, size);
    if (id < 0)
        return true;
    gm_bigram b = {((uint64_t)score_key(s->v->score[id]) << 32) | (uint32_t)l, r, size, id};
    return gm_heap_push(&s->heap, b);
}

/* Merges one word (spm_state holds the scratch it reuses between words). */
static gemma_status spm_word(void *ctx, const char *text, size_t len, gm_tokens *out, gemma_error *err)
{
    spm_state *s = ctx;
    const gm_vocab *v = s->v;
    if (!gm_scratch_reserve((void **)&s->sym, &s->sym_cap, len, sizeof(gm_sym)))
        return gm_fail(err, GEMMA_E_NOMEM, "tokenizer: out of memory");
    s->text = text;
    s->heap.n = 0;
    int32_t n = 0;
    for (size_t off = 0; off < len; n++) {
        size_t cl = GM_MIN(gm_utf8_len((uint8_t)text[off]), len - off);
        s->sym[n] = (gm_sym){n - 1, off + cl == len ? -1 : n + 1, (uint32_t)off, (uint32_t)cl,
                             gm_vocab_find(v, text + off, cl)};
        off += cl;
    }
    for (int32_t i = 1; i < n; i++)
        if (!spm_try_pair(s, i - 1, i))
            goto nomem;
    while (s->heap.n) {
        gm_bigram b = gm_heap_pop(&s->heap);
        int32_t l = (int32_t)(uint32_t)b.key;
        gm_sym *L = &s->sym[l], *R = &s->sym[b.right];
        if (L->n == 0 || R->n == 0 || L->n + R->n != b.size)
            continue; /* stale: one side was merged away since this pair was queued */
        L->n += R->n;
        L->id = b.id;
        R->n = 0;
        L->next = R->next;
        if (R->next >= 0)
            s->sym[R->next].prev = l;
        if (!spm_try_pair(s, L->prev, l) || !spm_try_pair(s, l, L->next))
            goto nomem;
    }
    /* Every merged symbol is a token, so llama.cpp's rev_merge resegmentation never
     * applies; symbols that are not tokens are single characters: emit their bytes. */
    for (int32_t i = 0; i != -1; i = s->sym[i].next) {
        const gm_sym *y = &s->sym[i];
        if (y->id >= 0) {
            if (gm_tokens_push(out, y->id))
                goto nomem;
            continue;
        }
        for (uint32_t k = 0; k < y->n; k++) {
            gemma_token t = v->byte_tok[(uint8_t)text[y->off + k]];
            if (t < 0)
                return gm_fail(err, GEMMA_E_MODEL, "tokenizer.ggml.tokens: no byte token <0x%02X> for byte fallback",
                               (uint8_t)text[y->off + k]);
            if (gm_tokens_push(out, t))
                goto nomem;
        }
    }
    return GEMMA_OK;
nomem:
    return gm_fail(err, GEMMA_E_NOMEM, "tokenizer: out of memory");
}

gemma_status gm_spm_encode(const gm_vocab *v, const char *text, size_t len, gm_tok_scratch *sc,
                           gm_tokens *out, gemma_error *err)
{
    if (len == 0)
        return GEMMA_OK;
    spm_state s = {v, NULL, sc->sym, sc->sym_cap, {sc->heap, 0, sc->heap_cap}};
    gemma_status st = gm_encode_words(v, text, len, sc, spm_word, &s, out, err);
    sc->sym = s.sym;
    sc->sym_cap = s.sym_cap;
    sc->heap = s.heap.a;
    sc->heap_cap = s.heap.cap;
    return st;
}

/* ---- special-token pre-split --------------------------------------------------------- */

typedef struct st_match {
    size_t pos, len;
    gemma_token id;
} st_match;

typedef struct st_list {
    st_match *m;
    size_t n, cap;
} st_list;

static int cmp_match(const void *a, const void *b)
{
    const st_match *x = a, *y = b;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* Gemma 4's structural tokens (<|tool_call>, <|"|>, <channel|>, ...) are user-defined so
 * that they show in output; chat content must not produce them. */
static bool marker_shaped(const gm_vocab *v, int32_t id)
{
    const char *t = v->arena + v->tok[id].off;
    size_t n = v->tok[id].len;
    return n >= 3 && t[0] == '<' && t[n - 1] == '>' && (t[1] == '|' || t[n - 2] == '|');
}

static bool active(const gm_vocab *v, int32_t id, gm_split split)
{
    if (id < 0)
        return false;
    if (split == GM_SPLIT_ALL)
        return true;
    if (v->attr[id] & (GM_ATTR_CONTROL | GM_ATTR_UNKNOWN))
        return false;
    return split == GM_SPLIT_USER || !marker_shaped(v, id);
}

/* llama.cpp takes candidates longest first and, for each, every non-overlapping occurrence
 * left to right in the text still raw. Equivalent and O(n * depth): one trie walk per
 * position records which candidate lengths match there (a bit per distinct length); then,
 * length by length from the longest, an occurrence is taken when it does not overlap one
 * already taken. Taken ones are never shorter, so checking both end bytes is enough. */
static gemma_status st_partition(const gm_vocab *v, const uint8_t *s, size_t n, gm_split split,
                                 st_list *res, gemma_error *err)
{
    const gm_trie *t = &v->trie;
    size_t W = (t->n_lens + 63) / 64;
    size_t *pos = NULL, npos = 0, cap_pos = 0, cap_mask = 0;
    uint64_t *mask = NULL;
    uint8_t *covered = NULL;
    gemma_status st = GEMMA_OK;
    if (!W)
        return GEMMA_OK;
    for (size_t i = 0; i < n; i++) {
        uint32_t node = t->root[s[i]];
        if (!node)
            continue;
        bool any = false;
        for (size_t k = 1;; k++) {
            if (active(v, t->term[node], split)) {
                if (!any) {
                    if (!gm_scratch_reserve((void **)&pos, &cap_pos, npos + 1, sizeof *pos) ||
                        !gm_scratch_reserve((void **)&mask, &cap_mask, (npos + 1) * W, sizeof *mask))
                        goto nomem;
                    pos[npos] = i;
                    memset(mask + npos * W, 0, W * sizeof *mask);
                    npos++;
                    any = true;
                }
                uint32_t b = t->len_index[k];
                mask[(npos - 1) * W + b / 64] |= 1ull << (b % 64);
            }
            if (i + k >= n || !(node = gm_trie_step(v, node, s[i + k])))
                break;
        }
    }
    if (!npos)
        goto done;
    covered = calloc(n, 1);
    if (!covered)
        goto nomem;
    for (uint32_t b = 0; b < t->n_lens; b++) {
        size_t L = t->lens[b];
        for (size_t e = 0; e < npos; e++) {
            size_t p = pos[e];
            if (!(mask[e * W + b / 64] & (1ull << (b % 64))) || covered[p] || covered[p + L - 1])
                continue;
            memset(covered + p, 1, L);
            if (!gm_scratch_reserve((void **)&res->m, &res->cap, res->n + 1, sizeof *res->m))
                goto nomem;
            res->m[res->n++] = (st_match){p, L, gm_trie_match(v, s + p, L)};
        }
    }
    qsort(res->m, res->n, sizeof *res->m, cmp_match);
    goto done;
nomem:
    st = gm_fail(err, GEMMA_E_NOMEM, "tokenizer: out of memory");
done:
    free(pos);
    free(mask);
    free(covered);
    return st;
}

/* ---- driver -------------------------------------------------------------------------- */

/* Copies a raw fragment into scratch with the optional leading space and every ' ' turned
 * into U+2581 (both tokenizers escape whitespace this way for Gemma). */
static gemma_status escape_fragment(const char *p, size_t n, bool prefix, gm_tok_scratch *sc, size_t *out_len,
                                    gemma_error *err)
{
    size_t spaces = prefix;
    for (size_t i = 0; i < n; i++)
        spaces += p[i] == ' ';
    size_t need = n + prefix + 2 * spaces;
    if (!gm_scratch_reserve((void **)&sc->buf, &sc->buf_cap, need + 1, 1))
        return gm_fail(err, GEMMA_E_NOMEM, "tokenizer: out of memory");
    char *o = sc->buf;
    if (prefix)
        memcpy(o, "\xe2\x96\x81", 3), o += 3;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == ' ')
            memcpy(o, "\xe2\x96\x81", 3), o += 3;
        else
            *o++ = p[i];
    }
    *out_len = (size_t)(o - sc->buf);
    return GEMMA_OK;
}

static gemma_status encode_raw(const gm_vocab *v, const char *p, size_t n, bool prev_special, gm_tok_scratch *sc,
                               gm_tokens *out, gemma_error *err)
{
    size_t len = 0;
    bool prefix = v->kind == GM_VOCAB_SPM && v->add_space_prefix && prev_special;
    gemma_status st = escape_fragment(p, n, prefix, sc, &len, err);
    if (st)
        return st;
    return v->kind == GM_VOCAB_SPM ? gm_spm_encode(v, sc->buf, len, sc, out, err)
                                   : gm_bpe_encode(v, sc->buf, len, sc, out, err);
}

gemma_status gm_tokenize(const gm_vocab *v, const char *text, size_t len, bool add_special, bool parse_special,
                         gm_tokens *out, gemma_error *err)
{
    return gm_tokenize_split(v, text, len, add_special, parse_special ? GM_SPLIT_ALL : GM_SPLIT_USER, out, err);
}

gemma_status gm_tokenize_split(const gm_vocab *v, const char *text, size_t len, bool add_special, gm_split split,
                               gm_tokens *out, gemma_error *err)
{
    if (!v || !out || (!text && len))
        return gm_fail(err, GEMMA_E_INVALID_ARG, "gm_tokenize: NULL argument");
    if (len > GM_TOK_MAX_INPUT)
        return gm_fail(err, GEMMA_E_INVALID_ARG, "tokenize: input of %zu bytes is too long (limit %zu)", len,
                       GM_TOK_MAX_INPUT);
    st_list sp = {0};
    gm_tok_scratch sc = {0};
    gemma_status st = st_partition(v, (const uint8_t *)text, len, split, &sp, err);
    if (st)
        goto done;
    if (add_special && v->add_bos && (st = gm_tokens_push(out, v->bos)))
        goto oom;
    bool prev_special = true;
    size_t at = 0;
    for (size_t k = 0; k <= sp.n; k++) {
        size_t end = k < sp.n ? sp.m[k].pos : len;
        if (end > at) {
            if ((st = encode_raw(v, text + at, end - at, prev_special, &sc, out, err)))
                goto done;
            prev_special = false;
        }
        if (k < sp.n) {
            if ((st = gm_tokens_push(out, sp.m[k].id)))
                goto oom;
            prev_special = true;
            at = sp.m[k].pos + sp.m[k].len;
        }
    }
    if (add_special && v->add_eos && (st = gm_tokens_push(out, v->eos)))
        goto oom;
    goto done;
oom:
    st = gm_fail(err, GEMMA_E_NOMEM, "tokenizer: out of memory");
done:
    free(sp.m);
    gm_tok_scratch_free(&sc);
    return st;
}
