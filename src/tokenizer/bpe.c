/* Gemma 4 rank-BPE engine (spec 5.4, llama.cpp's llm_tokenizer_bpe_session with the
 * GEMMA4 pre-tokenizer): no byte-to-unicode mapping, split into runs of '\n' and runs of
 * everything else, then merge adjacent pairs by lowest rank. */
#include "vocab-internal.h"
#include "../util/util.h"

#include <stdlib.h>
#include <string.h>

/* Decodes one code point the way llama.cpp's unicode_cpt_from_utf8 does (lead byte and
 * continuation bytes checked, nothing else); returns 0 bytes consumed when invalid. */
static size_t decode_cpt(const uint8_t *s, size_t n, uint32_t *cpt)
{
    uint8_t c = s[0];
    if (!(c & 0x80)) {
        *cpt = c;
        return 1;
    }
    size_t len = !(c & 0x40) ? 0 : !(c & 0x20) ? 2 : !(c & 0x10) ? 3 : !(c & 0x08) ? 4 : 0;
    if (!len || len > n)
        return 0;
    for (size_t k = 1; k < len; k++)
        if ((s[k] & 0xc0) != 0x80)
            return 0;
    static const uint8_t lead_mask[5] = {0, 0, 0x1f, 0x0f, 0x07};
    uint32_t v = c & lead_mask[len];
    for (size_t k = 1; k < len; k++)
        v = (v << 6) | (s[k] & 0x3f);
    *cpt = v;
    return len;
}

static size_t encode_cpt(uint32_t c, char *o)
{
    if (c > 0x10ffff)
        c = 0xfffd; /* llama.cpp throws here; we keep going with the replacement character */
    if (c <= 0x7f) {
        o[0] = (char)c;
        return 1;
    }
    if (c <= 0x7ff) {
        o[0] = (char)(0xc0 | (c >> 6));
        o[1] = (char)(0x80 | (c & 0x3f));
        return 2;
    }
    if (c <= 0xffff) {
        o[0] = (char)(0xe0 | (c >> 12));
        o[1] = (char)(0x80 | ((c >> 6) & 0x3f));
        o[2] = (char)(0x80 | (c & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | (c >> 18));
    o[1] = (char)(0x80 | ((c >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((c >> 6) & 0x3f));
    o[3] = (char)(0x80 | (c & 0x3f));
    return 4;
}

typedef struct bpe_state {
    const gm_vocab *v;
    const char *text;
    gm_sym *sym;
    gm_heap heap;
} bpe_state;

static bool bpe_try_pair(bpe_state *s, int32_t l, int32_t r)
{
    if (l < 0 || r < 0)
        return true;
    int32_t rank = gm_vocab_merge_rank(s->v, s->text + s->sym[l].off, s->sym[l].n, s->sym[l].n + s->sym[r].n);
    if (rank < 0)
        return true;
    gm_bigram b = {((uint64_t)(uint32_t)rank << 32) | (uint32_t)l, r, s->sym[l].n + s->sym[r].n, -1};
    return gm_heap_push(&s->heap, b);
}

static gemma_status emit_symbol(const gm_vocab *v, const char *p, size_t n, gm_tokens *out)
{
    gemma_token id = gm_vocab_find(v, p, n);
    if (id >= 0)
        return gm_tokens_push(out, id);
    for (size_t k = 0; k < n; k++) {
        gemma_token t = v->byte_tok[(uint8_t)p[k]];
        if (t >= 0 && gm_tokens_push(out, t)) /* bytes without a <0xHH> token are dropped */
            return GEMMA_E_NOMEM;
    }
    return GEMMA_OK;
}

/* One word of a pre-tokenized piece: text[0..len) of valid UTF-8. */
static gemma_status bpe_word(void *ctx, const char *text, size_t len, gm_tokens *out, gemma_error *err)
{
    bpe_state *s = ctx;
    const gm_vocab *v = s->v;
    if (text[0] == '\n') { /* a run of newlines that is itself a token is taken whole */
        gemma_token id = gm_vocab_find(v, text, len);
        if (id >= 0)
            return gm_tokens_push(out, id) ? gm_fail(err, GEMMA_E_NOMEM, "tokenizer: out of memory") : GEMMA_OK;
    }
    s->text = text;
    int32_t n = 0;
    for (size_t off = 0; off < len; n++) {
        size_t cl = GM_MIN(gm_utf8_len((uint8_t)text[off]), len - off);
        s->sym[n] = (gm_sym){n - 1, off + cl == len ? -1 : n + 1, (uint32_t)off, (uint32_t)cl, -1};
        off += cl;
    }
    s->heap.n = 0;
    for (int32_t i = 1; i < n; i++)
        if (!bpe_try_pair(s, i - 1, i))
            goto nomem;
    while (s->heap.n) {
        gm_bigram b = gm_heap_pop(&s->heap);
        int32_t l = (int32_t)(uint32_t)b.key;
        gm_sym *L = &s->sym[l], *R = &s->sym[b.right];
        if (L->n == 0 || R->n == 0 || L->n + R->n != b.size)
            continue; /* stale entry */
        L->n += R->n;
        R->n = 0;
        L->next = R->next;
        if (R->next >= 0)
            s->sym[R->next].prev = l;
        if (!bpe_try_pair(s, L->prev, l) || !bpe_try_pair(s, l, L->next))
            goto nomem;
    }
    for (int32_t i = 0; i != -1; i = s->sym[i].next)
        if (emit_symbol(v, text + s->sym[i].off, s->sym[i].n, out))
            goto nomem;
    return GEMMA_OK;
nomem:
    return gm_fail(err, GEMMA_E_NOMEM, "tokenizer: out of memory");
}

gemma_status gm_bpe_encode(const gm_vocab *v, const char *text, size_t len, gm_tok_scratch *sc, gm_tokens *out,
                           gemma_error *err)
{
    if (len == 0)
        return GEMMA_OK;
    /* Normalize as llama.cpp's regex split does: decode, invalid bytes -> U+FFFD, re-encode. */
    if (len > SIZE_MAX / 3 - 1 || !gm_scratch_reserve((void **)&sc->buf2, &sc->buf2_cap, 3 * len + 1, 1) ||
        !gm_scratch_reserve(&sc->sym, &sc->sym_cap, 3 * len, sizeof(gm_sym)))
        return gm_fail(err, GEMMA_E_NOMEM, "tokenizer: out of memory");
    const uint8_t *s = (const uint8_t *)text;
    char *norm = sc->buf2;
    size_t m = 0;
    for (size_t i = 0; i < len;) {
        uint32_t c;
        size_t k = decode_cpt(s + i, len - i, &c);
        if (!k) {
            c = 0xfffd;
            k = 1;
        }
        m += encode_cpt(c, norm + m);
        i += k;
    }
    bpe_state st = {v, norm, sc->sym, {sc->heap, 0, sc->heap_cap}};
    gemma_status rc = GEMMA_OK;
    for (size_t a = 0; a < m && rc == GEMMA_OK;) {
        bool nl = norm[a] == '\n';
        size_t b = a;
        while (b < m && (norm[b] == '\n') == nl)
            b++;
        rc = gm_encode_words(v, norm + a, b - a, sc, bpe_word, &st, out, err);
        a = b;
    }
    sc->heap = st.heap.a;
    sc->heap_cap = st.heap.cap;
    return rc;
}
