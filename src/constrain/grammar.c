/* Grammar text (docs/grammar.md) -> pushdown automaton over bytes.
 *
 * Each rule becomes a list of alternatives, each a run of elements (a byte set or a rule
 * reference) ending with END. Repetitions become auxiliary rules (x* is `a ::= x a |`, which
 * the matcher runs in constant stack through its tail-call rule), and character classes over
 * code points become byte sequences of valid UTF-8. After parsing, alternatives that can never
 * complete are dropped (so a parse can never wander into a dead end) and left recursion, which
 * a top-down matcher cannot run, is refused. */
#include "grammar.h"

#include "../util/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct elvec {
    gm_gel *v;
    uint32_t n, cap;
} elvec;

typedef struct brule {
    const char *name; /* into the grammar text; NULL for auxiliary rules */
    uint32_t name_len, line;
    bool defined;
    elvec body; /* alternatives, each terminated by an END element */
} brule;

typedef struct gb {
    const char *p, *end;
    uint32_t line;
    brule *rules;
    uint32_t n_rules, cap_rules;
    uint32_t *names; /* open addressing: rule id + 1, 0 = empty */
    uint32_t names_mask;
    uint64_t (*sets)[4];
    uint32_t n_sets, cap_sets;
    uint32_t *set_ht; /* set index + 1 */
    uint32_t set_mask;
    uint64_t total_el;
    int depth;
    gemma_error *err;
    gemma_status st;
} gb;

static bool fail(gb *b, gemma_status code, const char *fmt, const char *arg)
{
    if (b->st == GEMMA_OK) {
        char msg[256];
        snprintf(msg, sizeof msg, fmt, arg ? arg : "");
        b->st = gm_fail(b->err, code, "grammar line %u: %s", (unsigned)b->line, msg);
    }
    return false;
}

static bool push_el(gb *b, elvec *e, uint32_t kind, uint32_t arg)
{
    if (++b->total_el > GM_G_MAX_ELEMS)
        return fail(b, GEMMA_E_INVALID_ARG, "grammar too large (more than 2M elements after expanding repetitions)", NULL);
    if (e->n == e->cap) {
        uint32_t cap = e->cap ? e->cap * 2 : 8;
        gm_gel *v = realloc(e->v, cap * sizeof *v);
        if (!v)
            return fail(b, GEMMA_E_NOMEM, "out of memory", NULL);
        e->v = v;
        e->cap = cap;
    }
    e->v[e->n].kind = kind;
    e->v[e->n].arg = arg;
    e->n++;
    return true;
}

static bool push_all(gb *b, elvec *dst, const elvec *src)
{
    for (uint32_t i = 0; i < src->n; i++)
        if (!push_el(b, dst, src->v[i].kind, src->v[i].arg))
            return false;
    return true;
}

/* ---- rules and byte sets ---------------------------------------------------------------- */

static uint64_t hash_bytes(const void *p, size_t n)
{
    const uint8_t *s = p;
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * 1099511628211ull;
    return h ^ (h >> 29);
}

static int64_t new_rule(gb *b, const char *name, uint32_t name_len)
{
    if (b->n_rules == b->cap_rules) {
        uint32_t cap = b->cap_rules ? b->cap_rules * 2 : 64;
        if (cap > GM_G_MAX_ELEMS) {
            fail(b, GEMMA_E_INVALID_ARG, "too many rules", NULL);
            return -1;
        }
        brule *r = realloc(b->rules, cap * sizeof *r);
        if (!r) {
            fail(b, GEMMA_E_NOMEM, "out of memory", NULL);
            return -1;
        }
        b->rules = r;
        b->cap_rules = cap;
    }
    brule *r = &b->rules[b->n_rules];
    memset(r, 0, sizeof *r);
    r->name = name;
    r->name_len = name_len;
    r->line = b->line;
    r->defined = name == NULL;
    return b->n_rules++;
}

static bool names_grow(gb *b)
{
    uint32_t cap = b->names_mask ? (b->names_mask + 1) * 2 : 256;
    uint32_t *t = calloc(cap, sizeof *t);
    if (!t)
        return fail(b, GEMMA_E_NOMEM, "out of memory", NULL);
    for (uint32_t i = 0; b->names_mask && i <= b->names_mask; i++) {
        if (!b->names[i])
            continue;
        const brule *r = &b->rules[b->names[i] - 1];
        uint32_t h = (uint32_t)hash_bytes(r->name, r->name_len) & (cap - 1);
        while (t[h])
            h = (h + 1) & (cap - 1);
        t[h] = b->names[i];
    }
    free(b->names);
    b->names = t;
    b->names_mask = cap - 1;
    return true;
}

/* Id of the named rule, created (undefined) on first mention; -1 on failure. */
static int64_t rule_by_name(gb *b, const char *name, uint32_t len)
{
    if (!b->names_mask && !names_grow(b))
        return -1;
    uint32_t h = (uint32_t)hash_bytes(name, len) & b->names_mask;
    uint32_t used = 0;
    for (; b->names[h]; h = (h + 1) & b->names_mask, used++) {
        const brule *r = &b->rules[b->names[h] - 1];
        if (r->name_len == len && !memcmp(r->name, name, len))
            return b->names[h] - 1;
    }
    int64_t id = new_rule(b, name, len);
    if (id < 0)
        return -1;
    b->names[h] = (uint32_t)id + 1;
    /* keep the load factor under 1/2 (counting probes is a cheap proxy for the fill) */
    if (used * 4 > b->names_mask || (uint32_t)id * 2 > b->names_mask)
        if (!names_grow(b))
            return -1;
    return id;
}

static int64_t intern_set(gb *b, const uint64_t set[4])
{
    if (!b->set_mask || b->n_sets * 2 >= b->set_mask) {
        uint32_t cap = b->set_mask ? (b->set_mask + 1) * 2 : 256;
        uint32_t *t = calloc(cap, sizeof *t);
        uint64_t(*s)[4] = realloc(b->sets, (cap / 2) * sizeof *s);
        if (!t || !s) {
            free(t);
            if (s)
                b->sets = s;
            fail(b, GEMMA_E_NOMEM, "out of memory", NULL);
            return -1;
        }
        b->sets = s;
        b->cap_sets = cap / 2;
        for (uint32_t i = 0; i < b->n_sets; i++) {
            uint32_t h = (uint32_t)hash_bytes(b->sets[i], 32) & (cap - 1);
            while (t[h])
                h = (h + 1) & (cap - 1);
            t[h] = i + 1;
        }
        free(b->set_ht);
        b->set_ht = t;
        b->set_mask = cap - 1;
    }
    uint32_t h = (uint32_t)hash_bytes(set, 32) & b->set_mask;
    for (; b->set_ht[h]; h = (h + 1) & b->set_mask)
        if (!memcmp(b->sets[b->set_ht[h] - 1], set, 32))
            return b->set_ht[h] - 1;
    memcpy(b->sets[b->n_sets], set, 32);
    b->set_ht[h] = b->n_sets + 1;
    return b->n_sets++;
}

static bool push_range(gb *b, elvec *e, uint8_t lo, uint8_t hi)
{
    uint64_t set[4] = {0, 0, 0, 0};
    for (unsigned c = lo; c <= hi; c++)
        set[c >> 6] |= 1ull << (c & 63);
    int64_t id = intern_set(b, set);
    return id >= 0 && push_el(b, e, GM_EL_CHARS, (uint32_t)id);
}

/* ---- lexing ------------------------------------------------------------------------------ */

static void skip_ws(gb *b)
{
    while (b->p < b->end) {
        char c = *b->p;
        if (c == '#') {
            while (b->p < b->end && *b->p != '\n')
                b->p++;
        } else if (c == '\n') {
            b->line++;
            b->p++;
        } else if (c == ' ' || c == '\t' || c == '\r') {
            b->p++;
        } else {
            break;
        }
    }
}

static bool is_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

static uint32_t name_len_at(const gb *b, const char *p)
{
    const char *q = p;
    while (q < b->end && is_name_char(*q))
        q++;
    return (uint32_t)(q - p);
}

/* Is the text at p a rule definition ("name ::=")? */
static bool at_definition(const gb *b)
{
    uint32_t n = name_len_at(b, b->p);
    if (!n)
        return false;
    const char *q = b->p + n;
    while (q < b->end && (*q == ' ' || *q == '\t' || *q == '\r' || *q == '\n'))
        q++;
    return b->end - q >= 3 && !memcmp(q, "::=", 3);
}

static int hexdig(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Decodes one UTF-8 code point at b->p (the grammar text itself); -1 when invalid. */
static int32_t utf8_next(gb *b)
{
    const uint8_t *s = (const uint8_t *)b->p;
    size_t avail = (size_t)(b->end - b->p);
    uint32_t c = s[0];
    int n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (!n || (size_t)n > avail)
        return -1;
    if (n > 1)
        c &= 0x3Fu >> (n - 1);
    for (int i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return -1;
        c = c << 6 | (s[i] & 0x3F);
    }
    static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (c < min_cp[n] || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        return -1;
    b->p += n;
    return (int32_t)c;
}

/* One character of a literal or class, escapes decoded; -1 (error set) when invalid. */
static int32_t read_char(gb *b)
{
    if (b->p >= b->end)
        return fail(b, GEMMA_E_INVALID_ARG, "unterminated literal or class", NULL), -1;
    if (*b->p != '\\') {
        if (*b->p == '\n')
            return fail(b, GEMMA_E_INVALID_ARG, "newline inside a literal or class (write \\n)", NULL), -1;
        int32_t c = utf8_next(b);
        if (c < 0)
            fail(b, GEMMA_E_INVALID_ARG, "invalid UTF-8 in the grammar text", NULL);
        return c;
    }
    b->p++;
    if (b->p >= b->end)
        return fail(b, GEMMA_E_INVALID_ARG, "unterminated escape", NULL), -1;
    char c = *b->p++;
    int digits = c == 'x' ? 2 : c == 'u' ? 4 : c == 'U' ? 8 : 0;
    if (digits) {
        uint32_t v = 0;
        for (int i = 0; i < digits; i++) {
            int d = b->p < b->end ? hexdig(*b->p) : -1;
            if (d < 0)
                return fail(b, GEMMA_E_INVALID_ARG, "bad hex escape", NULL), -1;
            v = v * 16 + (uint32_t)d;
            b->p++;
        }
        if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF && digits > 2))
            return fail(b, GEMMA_E_INVALID_ARG, "escape is not a Unicode scalar value", NULL), -1;
        return (int32_t)v;
    }
    switch (c) {
    case 'n': return '\n';
    case 'r': return '\r';
    case 't': return '\t';
    case '\\': case '"': case '[': case ']': case '-': case '^': case '/': case '\'': return c;
    default: break;
    }
    char s[2] = {c, 0};
    return fail(b, GEMMA_E_INVALID_ARG, "unknown escape \\%s", s), -1;
}

/* ---- literals and classes ---------------------------------------------------------------- */

/* Appends the UTF-8 bytes of code point c (\xHH escapes below 0x100 in literals are raw
 * bytes, so a grammar can name any byte). */
static bool push_cp(gb *b, elvec *e, uint32_t c, bool raw_byte)
{
    uint8_t u[4];
    int n;
    if (c < 0x80 || (raw_byte && c < 0x100)) {
        u[0] = (uint8_t)c, n = 1;
    } else if (c < 0x800) {
        u[0] = (uint8_t)(0xC0 | c >> 6), u[1] = (uint8_t)(0x80 | (c & 0x3F)), n = 2;
    } else if (c < 0x10000) {
        u[0] = (uint8_t)(0xE0 | c >> 12), u[1] = (uint8_t)(0x80 | ((c >> 6) & 0x3F));
        u[2] = (uint8_t)(0x80 | (c & 0x3F)), n = 3;
    } else {
        u[0] = (uint8_t)(0xF0 | c >> 18), u[1] = (uint8_t)(0x80 | ((c >> 12) & 0x3F));
        u[2] = (uint8_t)(0x80 | ((c >> 6) & 0x3F)), u[3] = (uint8_t)(0x80 | (c & 0x3F)), n = 4;
    }
    for (int i = 0; i < n; i++)
        if (!push_range(b, e, u[i], u[i]))
            return false;
    return true;
}

static bool parse_literal(gb *b, elvec *e)
{
    b->p++; /* opening quote */
    while (b->p < b->end && *b->p != '"') {
        bool raw = b->p + 1 < b->end && b->p[0] == '\\' && b->p[1] == 'x';
        int32_t c = read_char(b);
        if (c < 0 || !push_cp(b, e, (uint32_t)c, raw))
            return false;
    }
    if (b->p >= b->end)
        return fail(b, GEMMA_E_INVALID_ARG, "unterminated string literal", NULL);
    b->p++;
    return true;
}

typedef struct cprange {
    uint32_t lo, hi;
} cprange;

static int cmp_range(const void *a, const void *b)
{
    const cprange *x = a, *y = b;
    return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* Sorts and merges ranges in place; with negate, replaces them by their complement. */
static uint32_t normalize_ranges(cprange *r, uint32_t n, bool negate)
{
    qsort(r, n, sizeof *r, cmp_range);
    uint32_t m = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (m && r[i].lo <= r[m - 1].hi + 1) {
            r[m - 1].hi = GM_MAX(r[m - 1].hi, r[i].hi);
        } else {
            r[m++] = r[i];
        }
    }
    if (!negate)
        return m;
    /* the complement has at most m + 1 ranges; build it from the end to stay in place */
    uint32_t next = 0, k = 0;
    cprange *out = malloc((m + 1) * sizeof *out);
    if (!out)
        return UINT32_MAX;
    for (uint32_t i = 0; i < m; i++) {
        if (r[i].lo > next)
            out[k++] = (cprange){next, r[i].lo - 1};
        next = r[i].hi + 1;
    }
    if (next <= 0x10FFFF)
        out[k++] = (cprange){next, 0x10FFFF};
    memcpy(r, out, k * sizeof *r);
    free(out);
    return k;
}

/* Appends to body one alternative per run of UTF-8 byte ranges covering [lo, hi]
 * (lo >= 0x80): ranges are split where the encoded length changes and where the low bits
 * stop spanning whole continuation bytes, so each piece is a product of byte ranges. */
static bool utf8_alts(gb *b, elvec *body, uint32_t lo, uint32_t hi, int depth)
{
    if (lo > hi)
        return true;
    if (depth > 32)
        return fail(b, GEMMA_E_INTERNAL, "UTF-8 range split did not converge", NULL);
    if (lo <= 0xDFFF && hi >= 0xD800) /* surrogates have no UTF-8 encoding */
        return utf8_alts(b, body, lo, GM_MIN(hi, 0xD7FF), depth + 1) &&
               (hi < 0xE000 || utf8_alts(b, body, 0xE000, hi, depth + 1));
    static const uint32_t len_max[] = {0x7FF, 0xFFFF};
    for (int i = 0; i < 2; i++)
        if (lo <= len_max[i] && hi > len_max[i])
            return utf8_alts(b, body, lo, len_max[i], depth + 1) && utf8_alts(b, body, len_max[i] + 1, hi, depth + 1);
    for (int i = 1; i < 4; i++) {
        uint32_t m = (1u << (6 * i)) - 1;
        if ((lo & ~m) == (hi & ~m))
            continue;
        if (lo & m)
            return utf8_alts(b, body, lo, lo | m, depth + 1) && utf8_alts(b, body, (lo | m) + 1, hi, depth + 1);
        if ((hi & m) != m)
            return utf8_alts(b, body, lo, (hi & ~m) - 1, depth + 1) && utf8_alts(b, body, hi & ~m, hi, depth + 1);
    }
    elvec a = {0}, z = {0};
    bool ok = push_cp(b, &a, lo, false) && push_cp(b, &z, hi, false);
    for (uint32_t i = 0; ok && i < a.n; i++) {
        /* the sets of a and z are singletons: recover their bytes */
        uint8_t x = 0, y = 0;
        for (unsigned c = 0; c < 256; c++) {
            if (b->sets[a.v[i].arg][c >> 6] >> (c & 63) & 1)
                x = (uint8_t)c;
            if (b->sets[z.v[i].arg][c >> 6] >> (c & 63) & 1)
                y = (uint8_t)c;
        }
        ok = push_range(b, body, x, y);
    }
    b->total_el -= a.n + z.n;
    free(a.v);
    free(z.v);
    return ok && push_el(b, body, GM_EL_END, 0);
}

/* Appends the element(s) matching any code point in the n ranges: one byte set when they
 * are all ASCII, else a reference to an auxiliary rule of UTF-8 alternatives. */
static bool push_class(gb *b, elvec *e, const cprange *r, uint32_t n)
{
    if (!n)
        return fail(b, GEMMA_E_INVALID_ARG, "empty character class", NULL);
    uint64_t ascii[4] = {0, 0, 0, 0};
    bool any_ascii = false, multi = false;
    for (uint32_t i = 0; i < n; i++) {
        for (uint32_t c = r[i].lo; c <= r[i].hi && c < 0x80; c++)
            ascii[c >> 6] |= 1ull << (c & 63), any_ascii = true;
        multi |= r[i].hi >= 0x80;
    }
    if (!multi) {
        int64_t id = intern_set(b, ascii);
        return id >= 0 && push_el(b, e, GM_EL_CHARS, (uint32_t)id);
    }
    int64_t aux = new_rule(b, NULL, 0);
    if (aux < 0)
        return false;
    elvec body = {0};
    bool ok = true;
    if (any_ascii) {
        int64_t id = intern_set(b, ascii);
        ok = id >= 0 && push_el(b, &body, GM_EL_CHARS, (uint32_t)id) && push_el(b, &body, GM_EL_END, 0);
    }
    for (uint32_t i = 0; ok && i < n; i++)
        if (r[i].hi >= 0x80)
            ok = utf8_alts(b, &body, GM_MAX(r[i].lo, 0x80), r[i].hi, 0);
    b->rules[aux].body = body;
    return ok && push_el(b, e, GM_EL_RULE, (uint32_t)aux);
}

static bool parse_class(gb *b, elvec *e)
{
    b->p++; /* '[' */
    bool negate = b->p < b->end && *b->p == '^';
    if (negate)
        b->p++;
    uint32_t n = 0, cap = 16;
    cprange *r = malloc(cap * sizeof *r);
    bool ok = r != NULL;
    if (!ok)
        fail(b, GEMMA_E_NOMEM, "out of memory", NULL);
    while (ok && b->p < b->end && *b->p != ']') {
        int32_t lo = read_char(b), hi = lo;
        if (lo >= 0 && b->p + 1 < b->end && *b->p == '-' && b->p[1] != ']') {
            b->p++;
            hi = read_char(b);
        }
        if (lo < 0 || hi < 0) {
            ok = false;
        } else if (hi < lo) {
            ok = fail(b, GEMMA_E_INVALID_ARG, "character range out of order", NULL);
        } else {
            if (n == cap) {
                cprange *q = realloc(r, (cap *= 2) * sizeof *r);
                ok = q != NULL;
                if (!ok) {
                    fail(b, GEMMA_E_NOMEM, "out of memory", NULL);
                    break;
                }
                r = q;
            }
            r[n++] = (cprange){(uint32_t)lo, (uint32_t)hi};
        }
    }
    if (ok && b->p >= b->end)
        ok = fail(b, GEMMA_E_INVALID_ARG, "unterminated character class", NULL);
    if (ok) {
        b->p++;
        n = normalize_ranges(r, n, negate);
        ok = n != UINT32_MAX ? push_class(b, e, r, n) : fail(b, GEMMA_E_NOMEM, "out of memory", NULL);
    }
    free(r);
    return ok;
}

/* ---- sequences, repetitions, alternatives ------------------------------------------------ */

static bool parse_alternatives(gb *b, elvec *out);

/* Wraps body (taken over) into a new auxiliary rule; returns its id or -1. */
static int64_t aux_rule(gb *b, elvec body)
{
    int64_t id = new_rule(b, NULL, 0);
    if (id < 0) {
        free(body.v);
        return -1;
    }
    b->rules[id].body = body;
    return id;
}

/* x{min,max} (max < 0: unbounded) of the single element x, appended to out. */
static bool repeat(gb *b, elvec *out, gm_gel x, long min, long max)
{
    for (long i = 0; i < min; i++)
        if (!push_el(b, out, x.kind, x.arg))
            return false;
    if (max == min)
        return true;
    if (max < 0) { /* star ::= x star | */
        int64_t star = new_rule(b, NULL, 0);
        if (star < 0)
            return false;
        elvec body = {0};
        bool ok = push_el(b, &body, x.kind, x.arg) && push_el(b, &body, GM_EL_RULE, (uint32_t)star) &&
                  push_el(b, &body, GM_EL_END, 0) && push_el(b, &body, GM_EL_END, 0);
        b->rules[star].body = body;
        return ok && push_el(b, out, GM_EL_RULE, (uint32_t)star);
    }
    int64_t prev = -1; /* opt_k ::= x opt_{k-1} | */
    for (long k = 0; k < max - min; k++) {
        elvec body = {0};
        bool ok = push_el(b, &body, x.kind, x.arg) &&
                  (prev < 0 || push_el(b, &body, GM_EL_RULE, (uint32_t)prev)) &&
                  push_el(b, &body, GM_EL_END, 0) && push_el(b, &body, GM_EL_END, 0);
        if (!ok) {
            free(body.v);
            return false;
        }
        if ((prev = aux_rule(b, body)) < 0)
            return false;
    }
    return push_el(b, out, GM_EL_RULE, (uint32_t)prev);
}

static bool parse_count(gb *b, long *v)
{
    skip_ws(b);
    if (b->p >= b->end || *b->p < '0' || *b->p > '9')
        return fail(b, GEMMA_E_INVALID_ARG, "expected a number in {m,n}", NULL);
    *v = 0;
    while (b->p < b->end && *b->p >= '0' && *b->p <= '9') {
        *v = *v * 10 + (*b->p++ - '0');
        if (*v > GM_G_MAX_REPEAT)
            return fail(b, GEMMA_E_INVALID_ARG, "repetition count above 10000", NULL);
    }
    skip_ws(b);
    return true;
}

/* Quantifier after an atom: sets min/max (max -1 = unbounded); false without one. */
static bool parse_quantifier(gb *b, long *min, long *max)
{
    if (b->p >= b->end)
        return false;
    switch (*b->p) {
    case '*': b->p++, *min = 0, *max = -1; return true;
    case '+': b->p++, *min = 1, *max = -1; return true;
    case '?': b->p++, *min = 0, *max = 1; return true;
    case '{': break;
    default: return false;
    }
    b->p++;
    if (!parse_count(b, min))
        return false;
    *max = *min;
    if (b->p < b->end && *b->p == ',') {
        b->p++;
        skip_ws(b);
        *max = -1;
        if (b->p < b->end && *b->p != '}' && !parse_count(b, max))
            return false;
    }
    if (b->p >= b->end || *b->p != '}')
        return fail(b, GEMMA_E_INVALID_ARG, "expected } after {m,n}", NULL);
    b->p++;
    if (*max >= 0 && *max < *min)
        return fail(b, GEMMA_E_INVALID_ARG, "{m,n} with n < m", NULL);
    return true;
}

static bool parse_atom(gb *b, elvec *atom)
{
    char c = *b->p;
    if (c == '"')
        return parse_literal(b, atom);
    if (c == '[')
        return parse_class(b, atom);
    if (c == '.') {
        b->p++;
        cprange all = {0, 0x10FFFF};
        return push_class(b, atom, &all, 1);
    }
    if (c == '(') {
        if (++b->depth > GM_G_MAX_NEST)
            return fail(b, GEMMA_E_INVALID_ARG, "parentheses nested too deeply", NULL);
        b->p++;
        elvec body = {0};
        if (!parse_alternatives(b, &body)) {
            free(body.v);
            return false;
        }
        skip_ws(b);
        if (b->p >= b->end || *b->p != ')') {
            free(body.v);
            return fail(b, GEMMA_E_INVALID_ARG, "expected )", NULL);
        }
        b->p++;
        b->depth--;
        int64_t id = aux_rule(b, body);
        return id >= 0 && push_el(b, atom, GM_EL_RULE, (uint32_t)id);
    }
    uint32_t n = name_len_at(b, b->p);
    if (!n) {
        char s[2] = {c, 0};
        return fail(b, GEMMA_E_INVALID_ARG, "unexpected character '%s'", s);
    }
    int64_t id = rule_by_name(b, b->p, n);
    b->p += n;
    return id >= 0 && push_el(b, atom, GM_EL_RULE, (uint32_t)id);
}

static bool parse_item(gb *b, elvec *out)
{
    elvec atom = {0};
    bool ok = parse_atom(b, &atom);
    long min, max;
    if (ok && parse_quantifier(b, &min, &max)) {
        gm_gel x = atom.n == 1 ? atom.v[0] : (gm_gel){0, 0};
        if (atom.n != 1) { /* a literal of several bytes: repeat it as one rule */
            elvec body = {0};
            ok = push_all(b, &body, &atom) && push_el(b, &body, GM_EL_END, 0);
            int64_t id = ok ? aux_rule(b, body) : -1;
            if (!ok)
                free(body.v);
            ok = id >= 0;
            x.kind = GM_EL_RULE;
            x.arg = (uint32_t)(id < 0 ? 0 : id);
        }
        ok = ok && repeat(b, out, x, min, max);
    } else if (ok && b->st == GEMMA_OK) {
        ok = push_all(b, out, &atom);
    }
    b->total_el -= atom.n;
    free(atom.v);
    return ok && b->st == GEMMA_OK;
}

static bool parse_sequence(gb *b, elvec *out)
{
    for (;;) {
        skip_ws(b);
        if (b->p >= b->end || *b->p == '|' || *b->p == ')' || at_definition(b))
            break;
        if (!parse_item(b, out))
            return false;
    }
    return push_el(b, out, GM_EL_END, 0);
}

static bool parse_alternatives(gb *b, elvec *out)
{
    if (!parse_sequence(b, out))
        return false;
    while (b->p < b->end && *b->p == '|') {
        b->p++;
        if (!parse_sequence(b, out))
            return false;
    }
    return true;
}

static bool parse_grammar(gb *b)
{
    for (skip_ws(b); b->p < b->end; skip_ws(b)) {
        uint32_t n = name_len_at(b, b->p);
        if (!n || !at_definition(b))
            return fail(b, GEMMA_E_INVALID_ARG, "expected a rule definition (name ::= ...)", NULL);
        int64_t id = rule_by_name(b, b->p, n);
        if (id < 0)
            return false;
        if (b->rules[id].defined) {
            char name[64];
            snprintf(name, sizeof name, "%.*s", (int)GM_MIN(n, 60), b->p);
            return fail(b, GEMMA_E_INVALID_ARG, "rule '%s' is defined twice", name);
        }
        b->rules[id].defined = true;
        b->rules[id].line = b->line;
        b->p = (const char *)memchr(b->p, ':', (size_t)(b->end - b->p)) + 3;
        elvec body = {0};
        if (!parse_alternatives(b, &body)) {
            free(body.v);
            return false;
        }
        if (b->p < b->end && *b->p == ')') {
            free(body.v);
            return fail(b, GEMMA_E_INVALID_ARG, "unbalanced )", NULL);
        }
        b->rules[id].body = body;
    }
    return true;
}


/* ---- analysis ---------------------------------------------------------------------------- */

/* Marks the rules that derive a finite byte string (chars_ok) or the empty string (!chars_ok):
 * a worklist over alternatives, each waiting for its rule references, so hostile grammars
 * (long chains of forward references) stay linear. */
static bool fixpoint(gb *b, bool chars_ok, uint8_t *mark)
{
    uint32_t n_alts = 0, n_refs = 0;
    for (uint32_t r = 0; r < b->n_rules; r++)
        for (uint32_t i = 0; i < b->rules[r].body.n; i++)
            n_alts += b->rules[r].body.v[i].kind == GM_EL_END, n_refs += b->rules[r].body.v[i].kind == GM_EL_RULE;
    uint32_t *alt_rule = gm_malloc_array(n_alts + 1, sizeof *alt_rule);
    uint32_t *pending = gm_calloc(n_alts + 1, sizeof *pending);
    uint32_t *ref_off = gm_calloc(b->n_rules + 2, sizeof *ref_off);
    uint32_t *refs = gm_malloc_array(n_refs + 1, sizeof *refs);
    uint32_t *queue = gm_malloc_array(b->n_rules + 1, sizeof *queue);
    bool ok = alt_rule && pending && ref_off && refs && queue;
    if (ok) {
        for (uint32_t r = 0; r < b->n_rules; r++)
            for (uint32_t i = 0; i < b->rules[r].body.n; i++)
                if (b->rules[r].body.v[i].kind == GM_EL_RULE)
                    ref_off[b->rules[r].body.v[i].arg + 2]++;
        for (uint32_t r = 0; r < b->n_rules; r++)
            ref_off[r + 2] += ref_off[r + 1];
        uint32_t a = 0, qn = 0;
        for (uint32_t r = 0; r < b->n_rules; r++) {
            bool dead = false;
            for (uint32_t i = 0; i < b->rules[r].body.n; i++) {
                gm_gel e = b->rules[r].body.v[i];
                if (e.kind == GM_EL_RULE) {
                    refs[ref_off[e.arg + 1]++] = a, pending[a]++;
                } else if (e.kind == GM_EL_CHARS) {
                    dead |= !chars_ok;
                } else {
                    alt_rule[a] = r;
                    if (dead)
                        pending[a] = UINT32_MAX / 2; /* never completes */
                    if (!pending[a] && !mark[r])
                        mark[r] = 1, queue[qn++] = r;
                    a++, dead = false;
                }
            }
        }
        for (uint32_t qi = 0; qi < qn; qi++) {
            uint32_t r = queue[qi];
            for (uint32_t k = ref_off[r]; k < ref_off[r + 1]; k++) {
                uint32_t alt = refs[k];
                if (--pending[alt] == 0 && !mark[alt_rule[alt]])
                    mark[alt_rule[alt]] = 1, queue[qn++] = alt_rule[alt];
            }
        }
    }
    free(alt_rule), free(pending), free(ref_off), free(refs), free(queue);
    return ok || fail(b, GEMMA_E_NOMEM, "out of memory", NULL);
}

/* Drops the alternatives that mention a rule that can never complete. */
static void prune(gb *b, const uint8_t *productive)
{
    for (uint32_t r = 0; r < b->n_rules; r++) {
        elvec *e = &b->rules[r].body;
        uint32_t w = 0, start = 0;
        bool keep = true;
        for (uint32_t i = 0; i < e->n; i++) {
            if (e->v[i].kind == GM_EL_RULE && !productive[e->v[i].arg])
                keep = false;
            if (e->v[i].kind != GM_EL_END)
                continue;
            if (keep) {
                memmove(e->v + w, e->v + start, (i + 1 - start) * sizeof *e->v);
                w += i + 1 - start;
            }
            start = i + 1;
            keep = true;
        }
        e->n = w;
    }
}

static bool rule_name_fail(gb *b, uint32_t r, const char *fmt)
{
    char name[72];
    if (b->rules[r].name)
        snprintf(name, sizeof name, "%.*s", (int)GM_MIN(b->rules[r].name_len, 64), b->rules[r].name);
    else
        snprintf(name, sizeof name, "(group or repetition)");
    b->line = b->rules[r].line;
    return fail(b, GEMMA_E_INVALID_ARG, fmt, name);
}

/* Refuses left recursion (a rule reaching itself before consuming a byte): depth-first over
 * the "may start with" edges, iteratively so that long rule chains cannot overflow the C stack. */
static bool check_left_recursion(gb *b, const uint8_t *nullable)
{
    typedef struct frame { uint32_t rule, pos; bool prefix; } frame;
    uint8_t *color = gm_calloc(b->n_rules + 1, 1);
    frame *st = gm_malloc_array(b->n_rules + 1, sizeof *st);
    bool ok = color && st;
    if (!ok)
        fail(b, GEMMA_E_NOMEM, "out of memory", NULL);
    for (uint32_t root = 0; ok && root < b->n_rules; root++) {
        if (color[root])
            continue;
        uint32_t sp = 0;
        st[sp++] = (frame){root, 0, true};
        color[root] = 1;
        while (ok && sp) {
            frame *f = &st[sp - 1];
            const elvec *e = &b->rules[f->rule].body;
            bool descended = false;
            while (f->pos < e->n && !descended) {
                gm_gel x = e->v[f->pos++];
                if (x.kind == GM_EL_END) {
                    f->prefix = true;
                } else if (!f->prefix) {
                    continue;
                } else if (x.kind == GM_EL_CHARS) {
                    f->prefix = false;
                } else {
                    f->prefix = nullable[x.arg];
                    if (color[x.arg] == 1) {
                        ok = rule_name_fail(b, x.arg, "rule '%s' is left-recursive (it can reach itself before consuming a byte)");
                        break;
                    }
                    if (!color[x.arg]) {
                        color[x.arg] = 1;
                        st[sp++] = (frame){x.arg, 0, true};
                        descended = true;
                    }
                }
            }
            if (ok && !descended) {
                color[st[sp - 1].rule] = 2;
                sp--;
            }
        }
    }
    free(color);
    free(st);
    return ok;
}

static bool flatten(gb *b, gm_grammar *g)
{
    uint32_t n_el = 0;
    for (uint32_t r = 0; r < b->n_rules; r++)
        n_el += b->rules[r].body.n;
    g->el = gm_malloc_array(n_el + 1, sizeof *g->el);
    g->alt = gm_malloc_array(n_el + 1, sizeof *g->alt);
    g->rule_alt = gm_malloc_array(b->n_rules + 1, sizeof *g->rule_alt);
    if (!g->el || !g->alt || !g->rule_alt)
        return fail(b, GEMMA_E_NOMEM, "out of memory", NULL);
    uint32_t pos = 0, na = 0;
    for (uint32_t r = 0; r < b->n_rules; r++) {
        g->rule_alt[r] = na;
        const elvec *e = &b->rules[r].body;
        for (uint32_t i = 0; i < e->n; i++) {
            if (i == 0 || e->v[i - 1].kind == GM_EL_END)
                g->alt[na++] = pos + i;
            g->el[pos + i] = e->v[i];
        }
        pos += e->n;
    }
    g->rule_alt[b->n_rules] = na;
    g->n_el = n_el;
    g->n_rules = b->n_rules;
    g->sets = b->sets;
    g->n_sets = b->n_sets;
    b->sets = NULL;
    return true;
}

static bool analyze(gb *b, const char *root, gm_grammar *g)
{
    for (uint32_t r = 0; r < b->n_rules; r++)
        if (!b->rules[r].defined)
            return rule_name_fail(b, r, "rule '%s' is used but never defined");
    int64_t rid = -1;
    if (b->names_mask) {
        uint32_t len = (uint32_t)strlen(root);
        for (uint32_t i = 0; i <= b->names_mask && rid < 0; i++) {
            const brule *r = b->names[i] ? &b->rules[b->names[i] - 1] : NULL;
            if (r && r->name_len == len && !memcmp(r->name, root, len))
                rid = b->names[i] - 1;
        }
    }
    if (rid < 0)
        return fail(b, GEMMA_E_INVALID_ARG, "no rule named '%s' (the start rule)", root);
    uint8_t *mark = gm_calloc(b->n_rules + 1, 1);
    if (!mark)
        return fail(b, GEMMA_E_NOMEM, "out of memory", NULL);
    bool ok = fixpoint(b, true, mark);
    if (ok && !mark[rid])
        ok = rule_name_fail(b, (uint32_t)rid, "start rule '%s' can never complete (every alternative recurses forever)");
    if (ok) {
        prune(b, mark);
        memset(mark, 0, b->n_rules);
        ok = fixpoint(b, false, mark) && check_left_recursion(b, mark);
    }
    free(mark);
    g->root = (uint32_t)rid;
    return ok && flatten(b, g);
}

void gm_grammar_free(gm_grammar *g)
{
    if (!g)
        return;
    free(g->el);
    free(g->alt);
    free(g->rule_alt);
    free(g->sets);
    free(g);
}

gemma_status gm_grammar_compile(const char *text, size_t len, const char *root, gm_grammar **out,
                                gemma_error *err)
{
    if (!out)
        return gm_fail(err, GEMMA_E_INVALID_ARG, "grammar: out is NULL");
    *out = NULL;
    if (!text && len)
        return gm_fail(err, GEMMA_E_INVALID_ARG, "grammar: text is NULL");
    if (len > GM_G_MAX_TEXT)
        return gm_fail(err, GEMMA_E_INVALID_ARG, "grammar: text longer than 4 MiB");
    gb b;
    memset(&b, 0, sizeof b);
    b.p = text;
    b.end = text + len;
    b.line = 1;
    b.err = err;
    gm_grammar *g = calloc(1, sizeof *g);
    if (!g)
        return gm_fail(err, GEMMA_E_NOMEM, "grammar: out of memory");
    if (parse_grammar(&b))
        analyze(&b, root ? root : "root", g);
    for (uint32_t r = 0; r < b.n_rules; r++)
        free(b.rules[r].body.v);
    free(b.rules);
    free(b.names);
    free(b.sets);
    free(b.set_ht);
    if (b.st != GEMMA_OK) {
        gm_grammar_free(g);
        return b.st;
    }
    *out = g;
    return GEMMA_OK;
}
