/* Running a compiled grammar over the model's tokens.
 *
 * The parse state is a set of pushdown stacks of element positions; the top of each stack is
 * a byte set, so feeding a byte filters and advances the stacks (expanding rule references and
 * popping finished rules). A token is allowed when its bytes advance the state without emptying
 * it. To mask the whole vocabulary, the tokens' byte strings are stored as a trie in pre-order:
 * one depth-first walk advances the state byte by byte and skips every subtree whose prefix the
 * grammar already rejects, so tokens sharing a prefix share the work. Masks are cached per state:
 * inside a JSON string the state after each character is the same, so one walk serves them all. */
#include "grammar.h"

#include "../model/model.h"
#include "../tokenizer/tokenizer.h"
#include "../util/util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { TK_NONE = 0, TK_TEXT = 1, TK_EOG = 2 };

struct gm_token_trie {
    int32_t n_vocab;
    uint32_t n_nodes, max_depth;
    uint8_t *byte, *depth; /* per node, pre-order */
    uint32_t *end;         /* per node: index just past its subtree */
    uint32_t *tok_off;     /* tokens ending at node i: tok[tok_off[i] .. tok_off[i + 1]) */
    gemma_token *tok;
    uint8_t *kind;         /* per token: TK_* */
    char *text;            /* token bytes, back to back */
    uint32_t *t_off, *t_len;
};

/* ---- the token trie ---------------------------------------------------------------------- */

typedef struct tok_str {
    const char *p;
    uint32_t len;
    gemma_token id;
} tok_str;

static int cmp_tok(const void *a, const void *b)
{
    const tok_str *x = a, *y = b;
    int c = memcmp(x->p, y->p, GM_MIN(x->len, y->len));
    if (c)
        return c;
    return x->len < y->len ? -1 : x->len > y->len ? 1 : (x->id > y->id) - (x->id < y->id);
}

/* Token texts as the detokenizer prints them; only normal and byte tokens can spell text. */
static gemma_status collect_texts(const gemma_model *model, gm_token_trie *t, size_t *total)
{
    const gm_vocab *v = gm_model_vocab(model);
    size_t cap = 1 << 20, used = 0;
    t->text = malloc(cap);
    if (!t->text)
        return GEMMA_E_NOMEM;
    for (int32_t i = 0; i < t->n_vocab; i++) {
        t->t_off[i] = (uint32_t)used;
        t->t_len[i] = 0;
        if (gm_vocab_is_eog(v, i)) {
            t->kind[i] = TK_EOG;
            continue;
        }
        if (!(gm_vocab_attr(v, i) & (GM_ATTR_NORMAL | GM_ATTR_BYTE)))
            continue;
        size_t n = 0;
        gm_token_to_piece(v, i, false, NULL, 0, &n);
        if (n == 0 || n > 255)
            continue; /* tokens longer than the trie's depth limit are never generated */
        if (used + n > cap) {
            char *p = realloc(t->text, cap *= 2);
            if (!p)
                return GEMMA_E_NOMEM;
            t->text = p;
        }
        if (gm_token_to_piece(v, i, false, t->text + used, n, &n) != GEMMA_OK)
            continue;
        t->t_len[i] = (uint32_t)n;
        t->kind[i] = TK_TEXT;
        used += n;
    }
    *total = used;
    return GEMMA_OK;
}

static gemma_status build_nodes(gm_token_trie *t, tok_str *s, uint32_t n, size_t max_nodes)
{
    t->byte = malloc(max_nodes + 1);
    t->depth = malloc(max_nodes + 1);
    t->end = gm_malloc_array(max_nodes + 1, sizeof *t->end);
    t->tok_off = gm_calloc(max_nodes + 2, sizeof *t->tok_off);
    t->tok = gm_malloc_array(n + 1, sizeof *t->tok);
    uint32_t *tok_node = gm_malloc_array(n + 1, sizeof *tok_node);
    if (!t->byte || !t->depth || !t->end || !t->tok_off || !t->tok || !tok_node) {
        free(tok_node);
        return GEMMA_E_NOMEM;
    }
    uint32_t path[256], depth = 0, nodes = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t lcp = 0;
        if (i) {
            uint32_t m = GM_MIN(s[i].len, s[i - 1].len);
            while (lcp < m && s[i].p[lcp] == s[i - 1].p[lcp])
                lcp++;
        }
        while (depth > lcp)
            t->end[path[--depth]] = nodes;
        for (; depth < s[i].len; depth++) {
            t->byte[nodes] = (uint8_t)s[i].p[depth];
            t->depth[nodes] = (uint8_t)(depth + 1);
            path[depth] = nodes++;
        }
        tok_node[i] = path[depth - 1];
        t->tok[i] = s[i].id;
        t->max_depth = GM_MAX(t->max_depth, depth);
    }
    while (depth)
        t->end[path[--depth]] = nodes;
    /* tokens were attached in node order (a prefix sorts before its extensions) */
    for (uint32_t i = 0; i < n; i++)
        t->tok_off[tok_node[i] + 1]++;
    for (uint32_t i = 0; i < nodes; i++)
        t->tok_off[i + 1] += t->tok_off[i];
    t->n_nodes = nodes;
    free(tok_node);
    return GEMMA_OK;
}

gemma_status gm_token_trie_build(const gemma_model *model, gm_token_trie **out, gemma_error *err)
{
    *out = NULL;
    gm_token_trie *t = calloc(1, sizeof *t);
    if (!t)
        return gm_fail(err, GEMMA_E_NOMEM, "constraint: out of memory");
    t->n_vocab = gemma_vocab_size(model);
    t->kind = gm_calloc((size_t)t->n_vocab + 1, 1);
    t->t_off = gm_malloc_array((size_t)t->n_vocab + 1, sizeof *t->t_off);
    t->t_len = gm_malloc_array((size_t)t->n_vocab + 1, sizeof *t->t_len);
    size_t total = 0;
    gemma_status st = t->kind && t->t_off && t->t_len ? collect_texts(model, t, &total) : GEMMA_E_NOMEM;
    tok_str *s = st ? NULL : gm_malloc_array((size_t)t->n_vocab + 1, sizeof *s);
    if (!st && !s)
        st = GEMMA_E_NOMEM;
    if (!st) {
        uint32_t n = 0;
        for (int32_t i = 0; i < t->n_vocab; i++)
            if (t->kind[i] == TK_TEXT)
                s[n++] = (tok_str){t->text + t->t_off[i], t->t_len[i], i};
        qsort(s, n, sizeof *s, cmp_tok);
        st = build_nodes(t, s, n, total);
    }
    free(s);
    if (st) {
        gm_token_trie_free(t);
        return gm_fail(err, st, "constraint: out of memory building the token trie");
    }
    *out = t;
    return GEMMA_OK;
}

void gm_token_trie_free(gm_token_trie *t)
{
    if (!t)
        return;
    free(t->byte), free(t->depth), free(t->end), free(t->tok_off), free(t->tok);
    free(t->kind), free(t->text), free(t->t_off), free(t->t_len);
    free(t);
}

/* ---- sets of parse stacks ---------------------------------------------------------------- */

/* Stacks back to back as [len, bottom .. top]; hashes kept per stack for the duplicate check. */
typedef struct sset {
    uint32_t *data;
    size_t n, cap;
    uint64_t *hash;
    uint32_t *start;
    uint32_t n_stacks, cap_stacks;
    bool accept; /* the empty stack: the text so far is a complete sentence */
} sset;

static void sset_free(sset *s)
{
    free(s->data), free(s->hash), free(s->start);
}

static uint64_t hash_stack(const uint32_t *v, uint32_t n)
{
    uint64_t h = 0x9E3779B97F4A7C15ull ^ n;
    for (uint32_t i = 0; i < n; i++)
        h = (h ^ v[i]) * 0xBF58476D1CE4E5B9ull, h ^= h >> 31;
    return h;
}

/* Adds a stack unless present. False only when out of memory (a full set drops the stack,
 * which can only make the mask stricter). */
static bool sset_add(sset *s, const uint32_t *v, uint32_t n)
{
    uint64_t h = hash_stack(v, n);
    for (uint32_t i = 0; i < s->n_stacks; i++)
        if (s->hash[i] == h && s->data[s->start[i]] == n && !memcmp(s->data + s->start[i] + 1, v, n * 4))
            return true;
    if (s->n_stacks >= GM_G_MAX_STACKS)
        return true;
    if (s->n_stacks == s->cap_stacks) {
        uint32_t cap = s->cap_stacks ? s->cap_stacks * 2 : 8;
        uint64_t *hh = realloc(s->hash, cap * sizeof *hh);
        if (hh)
            s->hash = hh;
        uint32_t *st = realloc(s->start, cap * sizeof *st);
        if (st)
            s->start = st;
        if (!hh || !st)
            return false;
        s->cap_stacks = cap;
    }
    if (s->n + n + 1 > s->cap) {
        size_t cap = GM_MAX(s->cap * 2, s->n + n + 64);
        uint32_t *d = realloc(s->data, cap * sizeof *d);
        if (!d)
            return false;
        s->data = d;
        s->cap = cap;
    }
    s->hash[s->n_stacks] = h;
    s->start[s->n_stacks++] = (uint32_t)s->n;
    s->data[s->n++] = n;
    memcpy(s->data + s->n, v, n * 4);
    s->n += n;
    return true;
}

static void sset_clear(sset *s)
{
    s->n = 0;
    s->n_stacks = 0;
    s->accept = false;
}

static bool sset_copy(sset *dst, const sset *src)
{
    sset_clear(dst);
    dst->accept = src->accept;
    for (uint32_t i = 0; i < src->n_stacks; i++)
        if (!sset_add(dst, src->data + src->start[i] + 1, src->data[src->start[i]]))
            return false;
    return true;
}

/* ---- the matcher ------------------------------------------------------------------------- */

#define SCRATCH_WORDS (1u << 17)
#define MAX_EXPAND_DEPTH 1024
#define N_CACHE 8

typedef struct mask_entry {
    uint32_t *key; /* accept flag, then the stacks as in sset.data */
    size_t key_n;
    uint64_t hash;
    uint64_t *bits; /* allowed text tokens */
    uint64_t used;  /* LRU clock */
} mask_entry;

struct gm_matcher {
    const gm_grammar *g;
    const gm_token_trie *trie;
    sset cur;
    sset *lvl; /* per trie depth, 0 .. max_depth */
    uint32_t *scratch;
    uint32_t top;
    bool oom;
    mask_entry cache[N_CACHE];
    uint64_t clock;
    uint32_t *key;
    size_t key_cap;
};

/* Expands the stack buf[0..len) until its top is a byte set, adding the results to out.
 * Rule references push a return position (skipped when it would only pop, so right
 * recursion such as `a ::= x a |` runs in constant depth); END pops. */
static void expand(gm_matcher *m, sset *out, const uint32_t *buf, uint32_t len, int depth)
{
    const gm_grammar *g = m->g;
    if (depth > MAX_EXPAND_DEPTH)
        return;
    uint32_t top = buf[len - 1];
    gm_gel e = g->el[top];
    if (e.kind == GM_EL_CHARS) {
        m->oom |= !sset_add(out, buf, len);
        return;
    }
    if (e.kind == GM_EL_END) {
        if (len == 1)
            out->accept = true;
        else
            expand(m, out, buf, len - 1, depth + 1);
        return;
    }
    uint32_t ret = top + 1, base = len - 1;
    bool push_ret = g->el[ret].kind != GM_EL_END;
    uint32_t n = base + push_ret + 1;
    if (n > GM_G_MAX_STACK || m->top + n > SCRATCH_WORDS)
        return; /* too deep: this path dies */
    uint32_t *nb = m->scratch + m->top;
    m->top += n;
    memcpy(nb, buf, base * 4);
    if (push_ret)
        nb[base] = ret;
    for (uint32_t a = g->rule_alt[e.arg]; a < g->rule_alt[e.arg + 1]; a++) {
        nb[n - 1] = g->alt[a];
        expand(m, out, nb, n, depth + 1);
    }
    m->top -= n;
}

/* out = in advanced by byte c. */
static void advance(gm_matcher *m, const sset *in, uint8_t c, sset *out)
{
    sset_clear(out);
    for (uint32_t i = 0; i < in->n_stacks; i++) {
        const uint32_t *s = in->data + in->start[i];
        uint32_t len = s[0], top = s[len];
        if (!(m->g->sets[m->g->el[top].arg][c >> 6] >> (c & 63) & 1))
            continue;
        if (m->top + len > SCRATCH_WORDS)
            continue;
        uint32_t *buf = m->scratch + m->top;
        m->top += len;
        memcpy(buf, s + 1, len * 4);
        buf[len - 1] = top + 1;
        expand(m, out, buf, len, 0);
        m->top -= len;
    }
}

static bool sset_alive(const sset *s)
{
    return s->n_stacks || s->accept;
}

gemma_status gm_matcher_create(const gm_grammar *g, const gm_token_trie *trie, gm_matcher **out)
{
    *out = NULL;
    gm_matcher *m = calloc(1, sizeof *m);
    if (!m)
        return GEMMA_E_NOMEM;
    m->g = g;
    m->trie = trie;
    m->lvl = calloc((size_t)trie->max_depth + 2, sizeof *m->lvl);
    m->scratch = gm_malloc_array(SCRATCH_WORDS, sizeof *m->scratch);
    if (!m->lvl || !m->scratch) {
        gm_matcher_free(m);
        return GEMMA_E_NOMEM;
    }
    for (uint32_t a = g->rule_alt[g->root]; a < g->rule_alt[g->root + 1]; a++)
        expand(m, &m->cur, &g->alt[a], 1, 0);
    if (m->oom) {
        gm_matcher_free(m);
        return GEMMA_E_NOMEM;
    }
    *out = m;
    return GEMMA_OK;
}

void gm_matcher_free(gm_matcher *m)
{
    if (!m)
        return;
    sset_free(&m->cur);
    for (uint32_t i = 0; m->lvl && i <= m->trie->max_depth + 1; i++)
        sset_free(&m->lvl[i]);
    free(m->lvl);
    free(m->scratch);
    for (int i = 0; i < N_CACHE; i++)
        free(m->cache[i].key), free(m->cache[i].bits);
    free(m->key);
    free(m);
}

bool gm_matcher_accepting(const gm_matcher *m)
{
    return m->cur.accept;
}

bool gm_matcher_finished(const gm_matcher *m)
{
    return m->cur.n_stacks == 0;
}

/* The state after bytes s[0..n) (in m->lvl), or NULL when they leave the grammar. */
static const sset *walk(gm_matcher *m, const uint8_t *s, size_t n)
{
    const sset *cur = &m->cur;
    if (n > m->trie->max_depth) /* the levels cover one token; gm_matcher_feed splits longer text */
        return NULL;
    for (size_t i = 0; i < n; i++) {
        sset *next = &m->lvl[i + 1];
        advance(m, cur, s[i], next);
        if (!sset_alive(next))
            return NULL;
        cur = next;
    }
    return cur;
}

bool gm_matcher_feed(gm_matcher *m, const uint8_t *s, size_t n)
{
    for (size_t off = 0; off < n;) {
        size_t k = GM_MIN(n - off, (size_t)m->trie->max_depth);
        if (!k)
            return false;
        const sset *st = walk(m, s + off, k);
        if (!st || !sset_copy(&m->cur, st))
            return false;
        off += k;
    }
    return true;
}

static const uint8_t *token_bytes(const gm_token_trie *t, gemma_token tok, size_t *n)
{
    *n = t->t_len[tok];
    return (const uint8_t *)t->text + t->t_off[tok];
}

bool gm_matcher_allows(gm_matcher *m, gemma_token t)
{
    if (t < 0 || t >= m->trie->n_vocab)
        return false;
    if (m->trie->kind[t] == TK_EOG)
        return m->cur.accept;
    if (m->trie->kind[t] != TK_TEXT)
        return false;
    size_t n;
    const uint8_t *s = token_bytes(m->trie, t, &n);
    return walk(m, s, n) != NULL;
}

bool gm_matcher_accept_token(gm_matcher *m, gemma_token t)
{
    if (t < 0 || t >= m->trie->n_vocab || m->trie->kind[t] != TK_TEXT)
        return t >= 0 && t < m->trie->n_vocab && m->trie->kind[t] == TK_EOG && m->cur.accept;
    size_t n;
    const uint8_t *s = token_bytes(m->trie, t, &n);
    const sset *st = walk(m, s, n);
    return st && sset_copy(&m->cur, st);
}

/* ---- masks ------------------------------------------------------------------------------- */

/* Serializes the current state as a cache key (the stacks in their canonical order of
 * creation are enough: the same state reached the same way gives the same key). */
static bool make_key(gm_matcher *m, size_t *n, uint64_t *h)
{
    size_t need = m->cur.n + 1;
    if (need > m->key_cap) {
        uint32_t *k = realloc(m->key, need * 4);
        if (!k)
            return false;
        m->key = k;
        m->key_cap = need;
    }
    m->key[0] = m->cur.accept;
    memcpy(m->key + 1, m->cur.data, m->cur.n * 4);
    *n = need;
    *h = hash_stack(m->key, (uint32_t)need);
    return true;
}

static void walk_trie(gm_matcher *m, uint64_t *bits)
{
    const gm_token_trie *t = m->trie;
    for (uint32_t i = 0; i < t->n_nodes;) {
        uint32_t d = t->depth[i];
        const sset *parent = d == 1 ? &m->cur : &m->lvl[d - 1];
        sset *s = &m->lvl[d];
        advance(m, parent, t->byte[i], s);
        if (!sset_alive(s)) {
            i = t->end[i];
            continue;
        }
        for (uint32_t k = t->tok_off[i]; k < t->tok_off[i + 1]; k++)
            bits[t->tok[k] >> 6] |= 1ull << (t->tok[k] & 63);
        i = s->n_stacks ? i + 1 : t->end[i];
    }
}

/* The allowed-token bits for the current state, from the cache or a trie walk. */
static const uint64_t *mask_bits(gm_matcher *m)
{
    size_t kn;
    uint64_t h;
    if (!make_key(m, &kn, &h))
        return NULL;
    mask_entry *victim = &m->cache[0];
    for (int i = 0; i < N_CACHE; i++) {
        mask_entry *c = &m->cache[i];
        if (c->bits && c->hash == h && c->key_n == kn && !memcmp(c->key, m->key, kn * 4)) {
            c->used = ++m->clock;
            return c->bits;
        }
        if (c->used < victim->used)
            victim = c;
    }
    size_t words = ((size_t)m->trie->n_vocab + 63) / 64;
    if (!victim->bits && !(victim->bits = gm_malloc_array(words, 8)))
        return NULL;
    uint32_t *key = realloc(victim->key, kn * 4);
    if (!key)
        return NULL;
    victim->key = key;
    memcpy(key, m->key, kn * 4);
    victim->key_n = kn;
    victim->hash = h;
    victim->used = ++m->clock;
    memset(victim->bits, 0, words * 8);
    walk_trie(m, victim->bits);
    return victim->bits;
}

size_t gm_matcher_mask(gm_matcher *m, float *logits)
{
    const gm_token_trie *t = m->trie;
    const uint64_t *bits = m->cur.n_stacks ? mask_bits(m) : NULL;
    if (m->cur.n_stacks && !bits) { /* out of memory: fall back to checking token by token */
        size_t n = 0;
        for (int32_t i = 0; i < t->n_vocab; i++) {
            if (!gm_matcher_allows(m, i))
                logits[i] = -INFINITY;
            else
                n++;
        }
        return n;
    }
    size_t n = 0;
    for (int32_t i = 0; i < t->n_vocab; i++) {
        bool ok = t->kind[i] == TK_EOG ? m->cur.accept : bits && (bits[i >> 6] >> (i & 63) & 1);
        if (!ok)
            logits[i] = -INFINITY;
        n += ok;
    }
    return n;
}
