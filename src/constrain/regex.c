/* JSON Schema `pattern` (an ECMAScript regex subset) -> a grammar expression over the JSON
 * text of a string's content: literals, classes ([...], negated, \d \w \s and their
 * negations, .), groups ((...), (?:...)), alternation, quantifiers (* + ? {n} {n,} {n,m}, lazy
 * forms treated as greedy) and ^ / $ at the ends of the pattern. Characters that JSON must
 * escape (", \, control characters) are generated in escaped form. Everything else
 * (backreferences, lookaround, \b, anchors in the middle) is refused with a message. */
#include "regex.h"

#include "grammar.h"
#include "../util/util.h"

#include <stdlib.h>
#include <string.h>

typedef struct rrange {
    uint32_t lo, hi;
} rrange;

typedef struct rx {
    const char *p, *end;
    gm_sb *o;
    const char *err;
    int depth;
    rrange *r; /* class under construction */
    uint32_t n, cap;
} rx;

static bool rerr(rx *x, const char *msg)
{
    if (!x->err)
        x->err = msg;
    return false;
}

static bool add_range(rx *x, uint32_t lo, uint32_t hi)
{
    if (x->n == x->cap) {
        uint32_t cap = x->cap ? x->cap * 2 : 16;
        rrange *r = realloc(x->r, cap * sizeof *r);
        if (!r)
            return rerr(x, "out of memory");
        x->r = r;
        x->cap = cap;
    }
    x->r[x->n++] = (rrange){lo, hi};
    return true;
}

static int cmp_rr(const void *a, const void *b)
{
    const rrange *p = a, *q = b;
    return p->lo < q->lo ? -1 : p->lo > q->lo;
}

/* Sorts, merges and optionally complements the class ranges. */
static bool finish_ranges(rx *x, bool negate)
{
    qsort(x->r, x->n, sizeof *x->r, cmp_rr);
    uint32_t m = 0;
    for (uint32_t i = 0; i < x->n; i++) {
        if (m && x->r[i].lo <= x->r[m - 1].hi + 1)
            x->r[m - 1].hi = GM_MAX(x->r[m - 1].hi, x->r[i].hi);
        else
            x->r[m++] = x->r[i];
    }
    x->n = m;
    if (!negate)
        return true;
    rrange *c = malloc((m + 1) * sizeof *c);
    if (!c)
        return rerr(x, "out of memory");
    uint32_t k = 0, next = 0;
    for (uint32_t i = 0; i < m; i++) {
        if (x->r[i].lo > next)
            c[k++] = (rrange){next, x->r[i].lo - 1};
        next = x->r[i].hi + 1;
    }
    if (next <= 0x10FFFF)
        c[k++] = (rrange){next, 0x10FFFF};
    free(x->r);
    x->r = c;
    x->n = k;
    x->cap = m + 1;
    return true;
}

static void put_cp(gm_sb *o, uint32_t c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        gm_sb_printf(o, "%c", (char)c);
    else if (c < 0x80)
        gm_sb_printf(o, "\\x%02X", (unsigned)c);
    else if (c <= 0xFFFF)
        gm_sb_printf(o, "\\u%04X", (unsigned)c);
    else
        gm_sb_printf(o, "\\U%08X", (unsigned)c);
}

/* Writes the class in x->r as a grammar item over JSON string text: a byte/char class for the
 * characters JSON writes as themselves, plus escaped forms for the others. */
static bool emit_class(rx *x)
{
    static const char *const esc[0x20] = {
        ['\b'] = "\\\\b", ['\f'] = "\\\\f", ['\n'] = "\\\\n", ['\r'] = "\\\\r", ['\t'] = "\\\\t"};
    gm_sb *o = x->o;
    bool any = false, plain = false;
    for (uint32_t i = 0; i < x->n; i++) { /* any character JSON writes as itself? */
        uint32_t lo = GM_MAX(x->r[i].lo, 0x20), hi = x->r[i].hi;
        plain |= lo <= hi && !(lo == hi && (lo == '"' || lo == '\\'));
    }
    gm_sb_puts(o, "(");
    if (plain) {
        gm_sb_puts(o, "[");
        for (uint32_t i = 0; i < x->n; i++) {
            uint32_t lo = GM_MAX(x->r[i].lo, 0x20), hi = x->r[i].hi;
            for (uint32_t s = lo; s <= hi;) { /* split around " and \ */
                uint32_t e = hi;
                if (s <= '"' && e >= '"')
                    e = s == '"' ? s : '"' - 1;
                if (s <= '\\' && e >= '\\')
                    e = s == '\\' ? s : '\\' - 1;
                if (s != '"' && s != '\\') {
                    put_cp(o, s);
                    if (e > s)
                        gm_sb_puts(o, "-"), put_cp(o, e);
                }
                if (e == 0x10FFFF)
                    break;
                s = e + 1;
            }
        }
        gm_sb_puts(o, "]");
        any = true;
    }
    for (uint32_t i = 0; i < x->n; i++)
        for (uint32_t c = x->r[i].lo; c <= x->r[i].hi && c <= '\\'; c++) {
            const char *lit = c == '"' ? "\\\\\\\"" : c == '\\' ? "\\\\\\\\" : c < 0x20 ? esc[c] : NULL;
            if (c >= 0x20 && !lit)
                continue;
            gm_sb_puts(o, any ? " | " : "");
            any = true;
            if (lit)
                gm_sb_printf(o, "\"%s\"", lit);
            else
                gm_sb_printf(o, "\"\\\\u00%02X\"", (unsigned)c);
        }
    gm_sb_puts(o, ")");
    if (!any)
        return rerr(x, "a character class that matches nothing");
    return true;
}

static uint32_t hexn(rx *x, int n)
{
    uint32_t v = 0;
    for (int i = 0; i < n; i++, x->p++) {
        char c = x->p < x->end ? *x->p : 0;
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0)
            return rerr(x, "bad hex escape"), UINT32_MAX;
        v = v * 16 + (uint32_t)d;
    }
    return v;
}

/* One escape after '\': adds its ranges to the class; *single gets the code point of a
 * one-character escape (UINT32_MAX for \d and friends). */
static bool escape(rx *x, uint32_t *single)
{
    if (x->p >= x->end)
        return rerr(x, "pattern ends with \\");
    char c = *x->p++;
    *single = UINT32_MAX;
    static const char *const cls[] = {"d09", "w09azAZ__", "s  \t\t\n\n\r\r\f\f\v\v"};
    const char *def = c == 'd' || c == 'D' ? cls[0] : c == 'w' || c == 'W' ? cls[1] : c == 's' || c == 'S' ? cls[2] : NULL;
    if (def) {
        if (c >= 'A' && c <= 'Z')
            return rerr(x, "\\D, \\W and \\S are not supported (write a negated class)");
        for (const char *d = def + 1; *d; d += 2)
            if (!add_range(x, (uint8_t)d[0], (uint8_t)d[1]))
                return false;
        return true;
    }
    uint32_t v;
    switch (c) {
    case 'n': v = '\n'; break;
    case 't': v = '\t'; break;
    case 'r': v = '\r'; break;
    case 'f': v = '\f'; break;
    case 'v': v = '\v'; break;
    case 'x': v = hexn(x, 2); break;
    case 'u': v = hexn(x, 4); break;
    default:
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
            return rerr(x, "unsupported escape (backreferences, \\b, \\p{...} are not supported)");
        v = (uint8_t)c;
    }
    if (v == UINT32_MAX || (v >= 0xD800 && v <= 0xDFFF))
        return rerr(x, "bad escape");
    *single = v;
    return add_range(x, v, v);
}

/* Decodes one UTF-8 code point of the pattern. */
static uint32_t next_cp(rx *x)
{
    const uint8_t *s = (const uint8_t *)x->p;
    uint32_t c = s[0];
    int n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (!n || x->end - x->p < n)
        return rerr(x, "invalid UTF-8 in the pattern"), UINT32_MAX;
    if (n > 1)
        c &= 0x3Fu >> (n - 1);
    for (int i = 1; i < n; i++)
        c = c << 6 | (s[i] & 0x3F);
    x->p += n;
    return c;
}

static bool parse_class(rx *x)
{
    x->p++;
    bool negate = x->p < x->end && *x->p == '^';
    x->p += negate;
    x->n = 0;
    bool first = true;
    while (x->p < x->end && (*x->p != ']' || first)) {
        first = false;
        uint32_t lo;
        if (*x->p == '\\') {
            x->p++;
            if (!escape(x, &lo))
                return false;
            if (lo == UINT32_MAX)
                continue;
            x->n--; /* re-added below as a range start */
        } else if ((lo = next_cp(x)) == UINT32_MAX) {
            return false;
        }
        uint32_t hi = lo;
        if (x->end - x->p >= 2 && *x->p == '-' && x->p[1] != ']') {
            x->p++;
            if (*x->p == '\\') {
                x->p++;
                if (!escape(x, &hi) || hi == UINT32_MAX)
                    return rerr(x, "bad class range");
                x->n--;
            } else if ((hi = next_cp(x)) == UINT32_MAX) {
                return false;
            }
            if (hi < lo)
                return rerr(x, "class range out of order");
        }
        if (!add_range(x, lo, hi))
            return false;
    }
    if (x->p >= x->end)
        return rerr(x, "unterminated [");
    x->p++;
    return finish_ranges(x, negate) && emit_class(x);
}

static bool parse_alt(rx *x);

static bool parse_atom(rx *x)
{
    char c = *x->p;
    if (c == '(') {
        if (++x->depth > 100)
            return rerr(x, "groups nested too deeply");
        x->p++;
        if (x->end - x->p >= 2 && x->p[0] == '?' && x->p[1] == ':')
            x->p += 2;
        else if (x->p < x->end && *x->p == '?')
            return rerr(x, "lookaround and named groups are not supported");
        gm_sb_puts(x->o, "(");
        if (!parse_alt(x))
            return false;
        if (x->p >= x->end || *x->p != ')')
            return rerr(x, "missing )");
        x->p++;
        x->depth--;
        gm_sb_puts(x->o, ")");
        return true;
    }
    if (c == '[')
        return parse_class(x);
    x->n = 0;
    if (c == '.') {
        x->p++;
        return add_range(x, '\n', '\n') && add_range(x, '\r', '\r') && add_range(x, 0x2028, 0x2029) &&
               finish_ranges(x, true) && emit_class(x);
    }
    if (c == '\\') {
        x->p++;
        uint32_t v;
        return escape(x, &v) && finish_ranges(x, false) && emit_class(x);
    }
    if (c == '^' || c == '$')
        return rerr(x, "anchors are supported only at the start and end of the pattern");
    if (c == '*' || c == '+' || c == '?' || c == '{')
        return rerr(x, "quantifier without anything to repeat");
    uint32_t v = next_cp(x);
    return v != UINT32_MAX && add_range(x, v, v) && finish_ranges(x, false) && emit_class(x);
}

static bool parse_count(rx *x, long *v)
{
    if (x->p >= x->end || *x->p < '0' || *x->p > '9')
        return rerr(x, "bad {n,m}");
    *v = 0;
    while (x->p < x->end && *x->p >= '0' && *x->p <= '9')
        if ((*v = *v * 10 + (*x->p++ - '0')) > 1000000)
            return rerr(x, "repetition count too large");
    return true;
}

static bool parse_quant(rx *x)
{
    if (x->p >= x->end)
        return true;
    char c = *x->p;
    if (c == '*' || c == '+' || c == '?') {
        gm_sb_printf(x->o, "%c", c);
        x->p++;
    } else if (c == '{') {
        x->p++;
        long lo, hi;
        if (!parse_count(x, &lo))
            return false;
        hi = lo;
        if (x->p < x->end && *x->p == ',') {
            x->p++;
            hi = -1;
            if (x->p < x->end && *x->p != '}' && !parse_count(x, &hi))
                return false;
        }
        if (x->p >= x->end || *x->p != '}')
            return rerr(x, "bad {n,m}");
        x->p++;
        if (lo > GM_G_MAX_REPEAT)
            return rerr(x, "repetition minimum above 10000");
        if (hi >= 0 && hi < lo)
            return rerr(x, "{n,m} with m < n");
        if (hi > GM_G_MAX_REPEAT)
            hi = GM_G_MAX_REPEAT; /* fewer repetitions than allowed still match */
        if (hi < 0)
            gm_sb_printf(x->o, "{%ld,}", lo);
        else
            gm_sb_printf(x->o, "{%ld,%ld}", lo, hi);
    } else {
        return true;
    }
    if (x->p < x->end && *x->p == '?')
        x->p++; /* lazy: the same language */
    if (x->p < x->end && (*x->p == '*' || *x->p == '+' || *x->p == '?' || *x->p == '{'))
        return rerr(x, "nested quantifiers are not supported");
    return true;
}

static bool parse_concat(rx *x)
{
    bool empty = true;
    while (x->p < x->end && *x->p != '|' && *x->p != ')') {
        gm_sb_puts(x->o, " ");
        if (!parse_atom(x) || !parse_quant(x))
            return false;
        empty = false;
    }
    if (empty)
        gm_sb_puts(x->o, " \"\"");
    return true;
}

static bool parse_alt(rx *x)
{
    if (!parse_concat(x))
        return false;
    while (x->p < x->end && *x->p == '|') {
        x->p++;
        gm_sb_puts(x->o, " |");
        if (!parse_concat(x))
            return false;
    }
    return true;
}

const char *gm_regex_to_grammar(const char *re, size_t len, const char *any_char, gm_sb *out)
{
    rx x = {re, re + len, out, NULL, 0, NULL, 0, 0};
    bool start = len && re[0] == '^';
    bool end = len > (size_t)start && re[len - 1] == '$' && !(len >= 2 && re[len - 2] == '\\');
    x.p += start;
    x.end -= end;
    gm_sb_puts(out, "(");
    if (!start) /* JSON Schema patterns match anywhere in the string */
        gm_sb_printf(out, "%s* ", any_char);
    gm_sb_puts(out, "(");
    if (parse_alt(&x) && x.p < x.end)
        rerr(&x, "unbalanced )");
    gm_sb_puts(out, ")");
    if (!end)
        gm_sb_printf(out, " %s*", any_char);
    gm_sb_puts(out, ")");
    free(x.r);
    return x.err;
}
