/* Detokenization (spec 5.5): token pieces, whole-sequence detokenize with llama.cpp's
 * clean-up rules, and a streaming detokenizer that only ever emits valid UTF-8. */
#include "vocab-internal.h"
#include "../util/util.h"

#include <stdlib.h>
#include <string.h>

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : c >= 'a' && c <= 'f' ? c - 'a' + 10 : 0;
}

/* Writes the piece into buf when it fits (cap may be 0); returns its length. */
static size_t piece(const gm_vocab *v, gemma_token t, bool special, char *buf, size_t cap)
{
    uint32_t a = v->attr[t];
    const char *s = v->arena + v->tok[t].off;
    size_t n = v->tok[t].len;
    if (a & (GM_ATTR_CONTROL | GM_ATTR_UNKNOWN)) {
        if (!special)
            return 0;
    }
    if (a & (GM_ATTR_CONTROL | GM_ATTR_UNKNOWN | GM_ATTR_USER_DEFINED)) {
        if (n <= cap)
            memcpy(buf, s, n);
        return n;
    }
    if (a & GM_ATTR_NORMAL) {
        /* every U+2581 becomes ' ' */
        size_t o = 0;
        for (size_t i = 0; i < n;) {
            if (i + 3 <= n && !memcmp(s + i, "\xe2\x96\x81", 3)) {
                if (o < cap)
                    buf[o] = ' ';
                o++, i += 3;
            } else {
                if (o < cap)
                    buf[o] = s[i];
                o++, i++;
            }
        }
        return o;
    }
    if (a & GM_ATTR_BYTE) {
        if (cap >= 1)
            buf[0] = (char)(hexval(s[3]) * 16 + hexval(s[4]));
        return 1;
    }
    return 0; /* unused / undefined */
}

gemma_status gm_token_to_piece(const gm_vocab *v, gemma_token t, bool special, char *buf, size_t cap, size_t *len)
{
    if (!v || t < 0 || t >= v->n || (!buf && cap)) {
        if (len)
            *len = 0;
        return GEMMA_E_INVALID_ARG;
    }
    size_t n = piece(v, t, special, NULL, 0);
    if (len)
        *len = n;
    if (n > cap)
        return GEMMA_E_BUFFER_TOO_SMALL;
    piece(v, t, special, buf, cap);
    return GEMMA_OK;
}

/* The three clean-up passes of llama_detokenize for BPE vocabularies, in place. */
static size_t clean_spaces(char *t, size_t n)
{
    size_t total = n ? 1 : 0;
    for (size_t i = 1; i < n; i++) { /* " ?", " !", " .", " ," */
        char x = t[i];
        if (t[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ','))
            total--;
        t[total++] = x;
    }
    n = total;
    total = n ? 1 : 0;
    for (size_t i = 1; i < n; i++) { /* " ' " -> "'" */
        char x = t[i];
        if (x == '\'' && i + 1 < n && t[i - 1] == ' ' && t[i + 1] == ' ') {
            total--;
            t[++i] = '\0';
        }
        t[total++] = x;
    }
    n = total;
    total = n ? 1 : 0;
    for (size_t i = 1; i < n; i++) { /* " 's", " 'm", " 're", " 've" */
        char x = t[i];
        if (t[i - 1] == ' ' && x == '\'' && i + 1 < n) {
            char x1 = t[i + 1];
            if (x1 == 's' || x1 == 'm')
                total--;
            else if (i + 2 < n && ((x1 == 'r' && t[i + 2] == 'e') || (x1 == 'v' && t[i + 2] == 'e')))
                total--;
        }
        t[total++] = x;
    }
    return total;
}

gemma_status gm_detokenize(const gm_vocab *v, const gemma_token *ids, size_t n, bool remove_special, bool special,
                           char **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    bool strip_space = v->add_space_prefix;
    if (remove_special && v->add_bos && n > 0 && ids[0] == v->bos)
        ids++, n--, strip_space = false;
    if (remove_special && v->add_eos && n > 0 && ids[n - 1] == v->eos)
        n--;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= v->n)
            return GEMMA_E_INVALID_ARG;
        total += piece(v, ids[i], special, NULL, 0);
    }
    char *buf = malloc(total + 1);
    if (!buf)
        return GEMMA_E_NOMEM;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        size_t k = piece(v, ids[i], special, buf + o, total - o);
        if (i == 0 && strip_space && k && buf[o] == ' ') { /* drop the space prefix */
            memmove(buf + o, buf + o + 1, k - 1);
            k--;
        }
        o += k;
    }
    if (v->clean_spaces)
        o = clean_spaces(buf, o);
    buf[o] = '\0';
    *out = buf;
    *len = o;
    return GEMMA_OK;
}

/* ---- streaming ----------------------------------------------------------------------- */

struct gm_detok {
    const gm_vocab *v;
    bool special;
    char *pend; /* bytes not yet emitted (an incomplete UTF-8 sequence at most, between calls) */
    size_t n_pend, cap_pend;
    char *out;
    size_t cap_out;
};

/* Length of the valid UTF-8 sequence at s[0..n): > 0 valid, 0 when it is a valid but
 * truncated prefix, and -k when the first k bytes are an invalid (maximal) subpart. */
static long utf8_seq(const uint8_t *s, size_t n)
{
    uint8_t c = s[0];
    if (c < 0x80)
        return 1;
    size_t len;
    uint8_t lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        if (c == 0xe0)
            lo = 0xa0;
        if (c == 0xed)
            hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        if (c == 0xf0)
            lo = 0x90;
        if (c == 0xf4)
            hi = 0x8f;
    } else
        return -1;
    for (size_t k = 1; k < len; k++) {
        if (k >= n)
            return 0;
        uint8_t b = s[k];
        if (b < (k == 1 ? lo : 0x80) || b > (k == 1 ? hi : 0xbf))
            return -(long)k;
    }
    return (long)len;
}

gemma_status gm_detok_create(const gm_vocab *v, bool special, gm_detok **out)
{
    *out = NULL;
    gm_detok *d = calloc(1, sizeof *d);
    if (!d)
        return GEMMA_E_NOMEM;
    d->v = v;
    d->special = special;
    *out = d;
    return GEMMA_OK;
}

void gm_detok_free(gm_detok *d)
{
    if (!d)
        return;
    free(d->pend);
    free(d->out);
    free(d);
}

/* Moves complete sequences of pend to out (invalid subparts become U+FFFD); keeps a
 * trailing truncated sequence unless final, when it too becomes U+FFFD. */
static gemma_status drain(gm_detok *d, bool final, const char **text, size_t *len)
{
    if (!gm_scratch_reserve((void **)&d->out, &d->cap_out, 3 * d->n_pend + 1, 1))
        return GEMMA_E_NOMEM;
    const uint8_t *s = (const uint8_t *)d->pend;
    size_t i = 0, o = 0;
    while (i < d->n_pend) {
        long k = utf8_seq(s + i, d->n_pend - i);
        if (k > 0) {
            memcpy(d->out + o, s + i, (size_t)k);
            o += (size_t)k, i += (size_t)k;
        } else if (k == 0 && !final) {
            break;
        } else {
            memcpy(d->out + o, "\xef\xbf\xbd", 3);
            o += 3;
            i += k == 0 ? d->n_pend - i : (size_t)-k;
        }
    }
    if (i > 0 && i < d->n_pend) /* pend may still be NULL when nothing was buffered */
        memmove(d->pend, d->pend + i, d->n_pend - i);
    d->n_pend -= i;
    d->out[o] = '\0';
    *text = d->out;
    *len = o;
    return GEMMA_OK;
}

gemma_status gm_detok_push(gm_detok *d, gemma_token t, const char **text, size_t *len)
{
    *text = "";
    *len = 0;
    if (t < 0 || t >= d->v->n)
        return GEMMA_E_INVALID_ARG;
    size_t k = piece(d->v, t, d->special, NULL, 0);
    if (!gm_scratch_reserve((void **)&d->pend, &d->cap_pend, d->n_pend + k + 1, 1))
        return GEMMA_E_NOMEM;
    piece(d->v, t, d->special, d->pend + d->n_pend, k);
    d->n_pend += k;
    return drain(d, false, text, len);
}

gemma_status gm_detok_flush(gm_detok *d, const char **text, size_t *len)
{
    *text = "";
    *len = 0;
    return drain(d, true, text, len);
}
