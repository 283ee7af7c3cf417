/* JSON Schema -> grammar text (docs/grammar.md lists the supported keywords).
 *
 * Every schema node becomes one rule; shared rules (ws, value, string, ...) are written once.
 * Whitespace between tokens is bounded (one space, or a newline and up to 16 spaces), so a
 * model cannot run away in indentation. Object properties come in schema order, optional ones
 * may be left out; additional properties are generated only when additionalProperties says so
 * (or the object declares no properties). Unsupported keywords are errors naming the schema
 * path, never silently ignored. */
#include "grammar.h"

#include "regex.h"
#include "sb.h"
#include "../util/json.h"
#include "../util/util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ENUM 4096
#define INT_LIMIT 9999999999999999.0 /* 16 digits: beyond it integers are not generated */

typedef struct sref {
    const char *name; /* "#/$defs/X" as written */
    unsigned id;
} sref;

typedef struct sc {
    gm_sb out;
    const char *px;
    const gm_json *root;
    unsigned next;
    sref *refs;
    size_t n_refs;
    gemma_error *err;
    gemma_status st;
} sc;

static unsigned sfail(sc *c, const char *path, const char *msg, const char *arg)
{
    if (c->st == GEMMA_OK)
        c->st = gm_fail(c->err, GEMMA_E_INVALID_ARG, "schema %s: %s%s", *path ? path : "#", msg, arg ? arg : "");
    return 0;
}

static void sub_path(char *dst, size_t cap, const char *path, const char *a, const char *b)
{
    snprintf(dst, cap, "%s/%s%s%s", path, a, b ? "/" : "", b ? b : "");
}

static const char *const annotations[] = {"title", "description", "default", "examples", "$schema", "$id",
                                          "$comment", "readOnly", "writeOnly", "deprecated", "$defs",
                                          "definitions", "strict", NULL};
static const char *const keywords[] = {"type", "properties", "required", "additionalProperties", "items",
                                       "minItems", "maxItems", "minLength", "maxLength", "pattern", "enum",
                                       "const", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
                                       "anyOf", "oneOf", "allOf", "$ref", NULL};

static bool in_list(const char *const *l, const char *k)
{
    for (; *l; l++)
        if (!strcmp(*l, k))
            return true;
    return false;
}

static unsigned new_rule(sc *c, const char *body)
{
    unsigned id = ++c->next;
    gm_sb_printf(&c->out, "%sr%u ::= ", c->px, id);
    gm_sb_puts(&c->out, body);
    gm_sb_puts(&c->out, "\n");
    return id;
}

static unsigned gen(sc *c, const gm_json *s, const char *path);

/* A rule matching exactly the JSON text of v. */
static unsigned literal_rule(sc *c, const gm_json *v)
{
    gm_str t = {0};
    gm_json_write(&t, v);
    gm_sb b = {0};
    gm_sb_literal(&b, t.p ? t.p : "", t.n);
    unsigned id = t.oom || b.failed ? 0 : new_rule(c, b.p);
    free(t.p);
    free(b.p);
    return id;
}

static unsigned gen_enum(sc *c, const gm_json *e, const char *path)
{
    if (e->type != GM_JSON_ARRAY || e->n == 0)
        return sfail(c, path, "enum must be a non-empty array", NULL);
    if (e->n > MAX_ENUM)
        return sfail(c, path, "enum has more than 4096 values", NULL);
    gm_sb b = {0};
    for (size_t i = 0; i < e->n && !c->st; i++)
        gm_sb_printf(&b, "%s%sr%u", i ? " | " : "", c->px, literal_rule(c, &e->kids[i]));
    unsigned id = c->st || b.failed ? 0 : new_rule(c, b.p);
    free(b.p);
    return id;
}

static unsigned gen_ref(sc *c, const gm_json *r, const char *path)
{
    if (r->type != GM_JSON_STRING)
        return sfail(c, path, "$ref must be a string", NULL);
    for (size_t i = 0; i < c->n_refs; i++)
        if (!strcmp(c->refs[i].name, r->s))
            return c->refs[i].id;
    const gm_json *target = NULL;
    if (!strcmp(r->s, "#")) {
        target = c->root;
    } else if (!strncmp(r->s, "#/$defs/", 8) || !strncmp(r->s, "#/definitions/", 14)) {
        const char *name = r->s + (r->s[2] == '$' ? 8 : 14);
        target = gm_json_get(gm_json_get(c->root, r->s[2] == '$' ? "$defs" : "definitions"), name);
    } else {
        return sfail(c, path, "$ref supports only \"#\", \"#/$defs/NAME\" and \"#/definitions/NAME\": ", r->s);
    }
    if (!target)
        return sfail(c, path, "$ref target not found: ", r->s);
    sref *nr = realloc(c->refs, (c->n_refs + 1) * sizeof *nr);
    if (!nr)
        return sfail(c, path, "out of memory", NULL);
    c->refs = nr;
    unsigned id = ++c->next; /* reserved before compiling the target, so recursion finds it */
    c->refs[c->n_refs++] = (sref){r->s, id};
    unsigned t = gen(c, target, r->s + 1);
    if (t)
        gm_sb_printf(&c->out, "%sr%u ::= %sr%u\n", c->px, id, c->px, t);
    return t ? id : 0;
}

/* ---- numbers ----------------------------------------------------------------------------- */

static bool all_digits(const char *s, int n, char d)
{
    for (int i = 0; i < n; i++)
        if (s[i] != d)
            return false;
    return true;
}

/* Alternatives for the n-digit numbers in [a, z] (digit strings of length n), each a run of
 * digit classes, appended after the common prefix pre. */
static void digits_range(gm_sb *b, const char *pre, const char *a, const char *z, int n, bool *first)
{
    char p[256];
    if (n == 0 || !strncmp(a, z, (size_t)n)) {
        gm_sb_printf(b, "%s%s\"\"", *first ? "" : " | ", pre);
        for (int i = 0; i < n; i++)
            gm_sb_printf(b, " \"%c\"", a[i]);
        *first = false;
        return;
    }
    if (a[0] == z[0]) {
        snprintf(p, sizeof p, "%s\"%c\" ", pre, a[0]);
        digits_range(b, p, a + 1, z + 1, n - 1, first);
        return;
    }
    char nines[24], zeros[24];
    memset(nines, '9', sizeof nines), memset(zeros, '0', sizeof zeros);
    int lo = a[0], hi = z[0];
    if (!all_digits(a + 1, n - 1, '0')) { /* a's block is partial */
        snprintf(p, sizeof p, "%s\"%c\" ", pre, a[0]);
        digits_range(b, p, a + 1, nines, n - 1, first);
        lo++;
    }
    bool z_partial = !all_digits(z + 1, n - 1, '9');
    hi -= z_partial;
    if (lo <= hi) {
        gm_sb_printf(b, "%s%s[%c-%c]", *first ? "" : " | ", pre, lo, hi);
        for (int i = 1; i < n; i++)
            gm_sb_puts(b, " [0-9]");
        *first = false;
    }
    if (z_partial) {
        snprintf(p, sizeof p, "%s\"%c\" ", pre, z[0]);
        digits_range(b, p, zeros, z + 1, n - 1, first);
    }
}

/* Alternatives for the naturals in [lo, hi] written without leading zeros. */
static void nat_range(gm_sb *b, uint64_t lo, uint64_t hi, const char *pre, bool *first)
{
    char a[24], z[24];
    uint64_t p10 = 1;
    for (int d = 1; d <= 16; d++, p10 *= 10) {
        uint64_t dlo = d == 1 ? 0 : p10, dhi = p10 * 10 - 1;
        if (hi < dlo || lo > dhi)
            continue;
        snprintf(a, sizeof a, "%0*llu", d, (unsigned long long)GM_MAX(lo, dlo));
        snprintf(z, sizeof z, "%0*llu", d, (unsigned long long)GM_MIN(hi, dhi));
        digits_range(b, pre, a, z, d, first);
    }
}

/* Alternatives for the integers in [lo, hi]. */
static void int_range(gm_sb *b, double lo, double hi, bool *first)
{
    if (lo <= -1)
        nat_range(b, (uint64_t)GM_MAX(1, -GM_MIN(hi, -1)), (uint64_t)-lo, "\"-\" ", first);
    if (hi >= 0)
        nat_range(b, (uint64_t)GM_MAX(lo, 0), (uint64_t)hi, "", first);
}

static bool bound(const gm_json *s, const char *k, double *v)
{
    const gm_json *x = gm_json_get(s, k);
    if (!x || x->type != GM_JSON_NUMBER)
        return false;
    *v = strtod(x->s, NULL);
    return isfinite(*v);
}

/* Integer bounds from minimum/maximum/exclusive*; false when no integer fits. */
static bool int_bounds(const gm_json *s, double *lo, double *hi)
{
    double v;
    *lo = -INT_LIMIT, *hi = INT_LIMIT;
    if (bound(s, "minimum", &v))
        *lo = GM_MAX(*lo, ceil(v));
    if (bound(s, "exclusiveMinimum", &v))
        *lo = GM_MAX(*lo, floor(v) + 1);
    if (bound(s, "maximum", &v))
        *hi = GM_MIN(*hi, floor(v));
    if (bound(s, "exclusiveMaximum", &v))
        *hi = GM_MIN(*hi, ceil(v) - 1);
    return *lo <= *hi;
}

static bool has_bounds(const gm_json *s)
{
    return gm_json_get(s, "minimum") || gm_json_get(s, "maximum") || gm_json_get(s, "exclusiveMinimum") ||
           gm_json_get(s, "exclusiveMaximum");
}

static void check_bound_types(sc *c, const gm_json *s, const char *path)
{
    static const char *const k[] = {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"};
    for (int i = 0; i < 4; i++) {
        const gm_json *x = gm_json_get(s, k[i]);
        double v;
        if (x && (x->type != GM_JSON_NUMBER || !(v = strtod(x->s, NULL), fabs(v) < 1e15)))
            sfail(c, path, k[i], " must be a number below 1e15 in magnitude");
    }
}

static void gen_integer(sc *c, gm_sb *b, const gm_json *s, const char *path)
{
    check_bound_types(c, s, path);
    if (!has_bounds(s)) {
        gm_sb_printf(b, "%sinteger", c->px);
        return;
    }
    double lo, hi;
    bool first = true;
    if (!int_bounds(s, &lo, &hi)) {
        sfail(c, path, "no integer satisfies minimum/maximum", NULL);
        return;
    }
    gm_sb_puts(b, "(");
    int_range(b, lo, hi, &first);
    gm_sb_puts(b, ")");
}

/* Bounded numbers: an integer part in range, with a fraction only where any fraction keeps
 * the value in range (non-negative k: k + 1 <= max; negative k: k - 1 >= min). */
static void gen_number(sc *c, gm_sb *b, const gm_json *s, const char *path)
{
    check_bound_types(c, s, path);
    if (!has_bounds(s)) {
        gm_sb_printf(b, "%snumber", c->px);
        return;
    }
    double lo, hi, v, fr_lo = -INT_LIMIT, fr_hi = INT_LIMIT;
    if (!int_bounds(s, &lo, &hi)) {
        sfail(c, path, "number range without an integer inside is not supported", NULL);
        return;
    }
    if (bound(s, "minimum", &v) || bound(s, "exclusiveMinimum", &v))
        fr_lo = ceil(v) + 1;
    if (bound(s, "maximum", &v) || bound(s, "exclusiveMaximum", &v))
        fr_hi = floor(v) - 1;
    double flo = GM_MAX(lo, fr_lo), fhi = GM_MIN(hi, fr_hi);
    bool first = true;
    gm_sb_puts(b, "(");
    if (flo <= fhi) {
        gm_sb_puts(b, "(");
        int_range(b, flo, fhi, &first);
        gm_sb_puts(b, ") (\".\" [0-9]{1,6})?");
        first = false;
        if (lo < flo)
            int_range(b, lo, flo - 1, &first);
        if (fhi < hi)
            int_range(b, fhi + 1, hi, &first);
    } else {
        int_range(b, lo, hi, &first);
    }
    gm_sb_puts(b, ")");
}

/* ---- strings, arrays, objects ------------------------------------------------------------ */

static bool count_kw(sc *c, const gm_json *s, const char *k, const char *path, long *v, long dflt)
{
    const gm_json *x = gm_json_get(s, k);
    *v = dflt;
    if (!x)
        return true;
    double d = x->type == GM_JSON_NUMBER ? strtod(x->s, NULL) : -1;
    if (!(d >= 0) || d != floor(d))
        return sfail(c, path, k, " must be a non-negative integer"), false;
    *v = d > GM_G_MAX_REPEAT ? GM_G_MAX_REPEAT + 1 : (long)d;
    return true;
}

static void gen_string(sc *c, gm_sb *b, const gm_json *s, const char *path)
{
    long min, max;
    if (!count_kw(c, s, "minLength", path, &min, 0) || !count_kw(c, s, "maxLength", path, &max, -1))
        return;
    const gm_json *pat = gm_json_get(s, "pattern");
    if (pat) {
        if (pat->type != GM_JSON_STRING)
            return (void)sfail(c, path, "pattern must be a string", NULL);
        if (gm_json_get(s, "minLength") || gm_json_get(s, "maxLength"))
            return (void)sfail(c, path, "pattern together with minLength/maxLength is not supported", NULL);
        char any[80];
        snprintf(any, sizeof any, "%schar", c->px);
        gm_sb_puts(b, "\"\\\"\" ");
        const char *e = gm_regex_to_grammar(pat->s, pat->len, any, b);
        gm_sb_puts(b, " \"\\\"\"");
        if (e)
            sfail(c, path, "pattern: ", e);
        return;
    }
    if (min > GM_G_MAX_REPEAT)
        return (void)sfail(c, path, "minLength above 10000 is not supported", NULL);
    if (max > GM_G_MAX_REPEAT)
        max = GM_G_MAX_REPEAT; /* shorter strings still validate */
    if (max >= 0 && max < min)
        return (void)sfail(c, path, "maxLength < minLength", NULL);
    if (min == 0 && max < 0)
        gm_sb_printf(b, "%sstring", c->px);
    else if (max < 0)
        gm_sb_printf(b, "\"\\\"\" %schar{%ld,} \"\\\"\"", c->px, min);
    else
        gm_sb_printf(b, "\"\\\"\" %schar{%ld,%ld} \"\\\"\"", c->px, min, max);
}

static void gen_array(sc *c, gm_sb *b, const gm_json *s, const char *path)
{
    long min, max;
    if (!count_kw(c, s, "minItems", path, &min, 0) || !count_kw(c, s, "maxItems", path, &max, -1))
        return;
    if (min > GM_G_MAX_REPEAT)
        return (void)sfail(c, path, "minItems above 10000 is not supported", NULL);
    if (max > GM_G_MAX_REPEAT)
        max = GM_G_MAX_REPEAT;
    if (max >= 0 && max < min)
        return (void)sfail(c, path, "maxItems < minItems", NULL);
    const gm_json *items = gm_json_get(s, "items");
    char p[512];
    sub_path(p, sizeof p, path, "items", NULL);
    unsigned it = items ? gen(c, items, p) : 0;
    if (c->st)
        return;
    char item[96];
    if (it)
        snprintf(item, sizeof item, "%sr%u %sws", c->px, it, c->px);
    else
        snprintf(item, sizeof item, "%svalue %sws", c->px, c->px);
    if (max == 0) {
        gm_sb_printf(b, "\"[\" %sws \"]\"", c->px);
        return;
    }
    gm_sb_printf(b, "\"[\" %sws (%s (\",\" %sws %s)", c->px, item, c->px, item);
    long lo = min > 0 ? min - 1 : 0;
    if (max < 0)
        gm_sb_printf(b, "{%ld,})%s \"]\"", lo, min ? "" : "?");
    else
        gm_sb_printf(b, "{%ld,%ld})%s \"]\"", lo, max - 1, min ? "" : "?");
}

static bool is_required(const gm_json *req, const char *name, size_t len)
{
    for (size_t i = 0; req && req->type == GM_JSON_ARRAY && i < req->n; i++)
        if (req->kids[i].type == GM_JSON_STRING && req->kids[i].len == len && !memcmp(req->kids[i].s, name, len))
            return true;
    return false;
}

/* Members in schema order as a chain of rules: first_i (nothing written yet) and after_i
 * (something written, so a comma comes first), each either taking member i or, when it is
 * optional, skipping it. Additional members (when allowed) may follow. */
static void gen_object(sc *c, gm_sb *b, const gm_json *s, const char *path)
{
    const gm_json *props = gm_json_get(s, "properties"), *req = gm_json_get(s, "required");
    const gm_json *add = gm_json_get(s, "additionalProperties");
    if (props && props->type != GM_JSON_OBJECT)
        return (void)sfail(c, path, "properties must be an object", NULL);
    if (req && req->type != GM_JSON_ARRAY)
        return (void)sfail(c, path, "required must be an array", NULL);
    for (size_t i = 0; req && i < req->n; i++)
        if (req->kids[i].type != GM_JSON_STRING || !gm_json_get(props, req->kids[i].s))
            return (void)sfail(c, path, "required names a property not in properties", NULL);
    size_t n = props ? props->n : 0;
    bool extra = add ? !(add->type == GM_JSON_BOOL && !add->b) : n == 0;
    unsigned add_rule = 0;
    char p[512];
    if (add && add->type != GM_JSON_BOOL) {
        sub_path(p, sizeof p, path, "additionalProperties", NULL);
        add_rule = gen(c, add, p);
    }
    char tail[160] = ""; /* after the declared members: more members, then nothing */
    if (extra) {
        char val[48];
        snprintf(val, sizeof val, add_rule ? "%sr%u" : "%svalue", c->px, add_rule);
        gm_sb kv = {0};
        gm_sb_printf(&kv, "%sstring %sws \":\" %sws %s %sws", c->px, c->px, c->px, val, c->px);
        unsigned k = kv.failed ? 0 : new_rule(c, kv.p);
        free(kv.p);
        snprintf(tail, sizeof tail, "(\",\" %sws %sr%u)*", c->px, c->px, k);
        if (n == 0) {
            gm_sb_printf(b, "\"{\" %sws (%sr%u %s)? \"}\"", c->px, c->px, k, tail);
            return;
        }
    }
    unsigned after = new_rule(c, *tail ? tail : "\"\""), first = new_rule(c, "\"\"");
    for (size_t i = n; i-- > 0 && !c->st;) {
        const gm_json *m = &props->kids[i];
        sub_path(p, sizeof p, path, "properties", m->key);
        unsigned v = gen(c, m, p);
        gm_str name = {0};
        gm_json_write_string(&name, m->key, m->key_len);
        gm_sb kv = {0};
        gm_sb_literal(&kv, name.p ? name.p : "", name.n);
        gm_sb_printf(&kv, " %sws \":\" %sws %sr%u %sws", c->px, c->px, c->px, v, c->px);
        unsigned k = kv.failed || name.oom || c->st ? 0 : new_rule(c, kv.p);
        free(name.p);
        free(kv.p);
        if (!k)
            return (void)sfail(c, path, "out of memory", NULL);
        bool r = is_required(req, m->key, m->key_len);
        char body[256];
        int o = snprintf(body, sizeof body, "\",\" %sws %sr%u %sr%u", c->px, c->px, k, c->px, after);
        if (!r)
            snprintf(body + o, sizeof body - (size_t)o, " | %sr%u", c->px, after);
        unsigned na = new_rule(c, body);
        o = snprintf(body, sizeof body, "%sr%u %sr%u", c->px, k, c->px, after);
        if (!r)
            snprintf(body + o, sizeof body - (size_t)o, " | %sr%u", c->px, first);
        first = new_rule(c, body);
        after = na;
    }
    gm_sb_printf(b, "\"{\" %sws %sr%u \"}\"", c->px, c->px, first);
}

/* ---- schema nodes ------------------------------------------------------------------------ */

static const char *infer_type(const gm_json *s)
{
    static const struct { const char *kw, *type; } hints[] = {
        {"properties", "object"}, {"additionalProperties", "object"}, {"required", "object"},
        {"items", "array"}, {"minItems", "array"}, {"maxItems", "array"}, {"minLength", "string"},
        {"maxLength", "string"}, {"pattern", "string"}, {"minimum", "number"}, {"maximum", "number"},
        {"exclusiveMinimum", "number"}, {"exclusiveMaximum", "number"}};
    for (size_t i = 0; i < sizeof hints / sizeof hints[0]; i++)
        if (gm_json_get(s, hints[i].kw))
            return hints[i].type;
    return NULL;
}

static void gen_type(sc *c, gm_sb *b, const char *t, const gm_json *s, const char *path)
{
    if (!strcmp(t, "string"))
        gen_string(c, b, s, path);
    else if (!strcmp(t, "integer"))
        gen_integer(c, b, s, path);
    else if (!strcmp(t, "number"))
        gen_number(c, b, s, path);
    else if (!strcmp(t, "object"))
        gen_object(c, b, s, path);
    else if (!strcmp(t, "array"))
        gen_array(c, b, s, path);
    else if (!strcmp(t, "boolean") || !strcmp(t, "null"))
        gm_sb_printf(b, "%s%s", c->px, t);
    else
        sfail(c, path, "unknown type: ", t);
}

static unsigned gen_alternatives(sc *c, const gm_json *list, const char *kw, const char *path)
{
    if (list->type != GM_JSON_ARRAY || list->n == 0)
        return sfail(c, path, kw, " must be a non-empty array");
    gm_sb b = {0};
    char p[512];
    for (size_t i = 0; i < list->n && !c->st; i++) {
        char idx[24];
        snprintf(idx, sizeof idx, "%zu", i);
        sub_path(p, sizeof p, path, kw, idx);
        unsigned id = gen(c, &list->kids[i], p);
        gm_sb_printf(&b, "%s%sr%u", i ? " | " : "", c->px, id);
    }
    unsigned id = c->st || b.failed ? 0 : new_rule(c, b.p);
    free(b.p);
    return id;
}

static unsigned gen_alternatives_any(sc *c)
{
    char body[48];
    snprintf(body, sizeof body, "%svalue", c->px);
    return new_rule(c, body);
}

static unsigned gen(sc *c, const gm_json *s, const char *path)
{
    if (c->st)
        return 0;
    if (c->out.failed)
        return sfail(c, path, "schema too large (its grammar exceeds 4 MiB)", NULL);
    if (s->type == GM_JSON_BOOL)
        return s->b ? gen_alternatives_any(c) : sfail(c, path, "the schema false matches nothing", NULL);
    if (s->type != GM_JSON_OBJECT)
        return sfail(c, path, "a schema must be an object or a boolean", NULL);
    for (size_t i = 0; i < s->n; i++)
        if (!in_list(keywords, s->kids[i].key) && !in_list(annotations, s->kids[i].key))
            return sfail(c, path, "keyword not supported: ", s->kids[i].key);
    const gm_json *x;
    if ((x = gm_json_get(s, "$ref")))
        return gen_ref(c, x, path);
    if ((x = gm_json_get(s, "const")))
        return literal_rule(c, x);
    if ((x = gm_json_get(s, "enum")))
        return gen_enum(c, x, path);
    if ((x = gm_json_get(s, "anyOf")) || (x = gm_json_get(s, "oneOf")))
        return gen_alternatives(c, x, gm_json_get(s, "anyOf") ? "anyOf" : "oneOf", path);
    if ((x = gm_json_get(s, "allOf"))) {
        if (x->type != GM_JSON_ARRAY || x->n != 1)
            return sfail(c, path, "allOf is supported only with a single schema", NULL);
        char p[512];
        sub_path(p, sizeof p, path, "allOf", "0");
        return gen(c, &x->kids[0], p);
    }
    const gm_json *t = gm_json_get(s, "type");
    gm_sb b = {0};
    if (!t) {
        const char *it = infer_type(s);
        if (it)
            gen_type(c, &b, it, s, path);
        else
            gm_sb_printf(&b, "%svalue", c->px);
    } else if (t->type == GM_JSON_STRING) {
        gen_type(c, &b, t->s, s, path);
    } else if (t->type == GM_JSON_ARRAY && t->n > 0) {
        for (size_t i = 0; i < t->n && !c->st; i++) {
            gm_sb_puts(&b, i ? " | (" : "(");
            if (t->kids[i].type != GM_JSON_STRING)
                sfail(c, path, "type must be a string or an array of strings", NULL);
            else
                gen_type(c, &b, t->kids[i].s, s, path);
            gm_sb_puts(&b, ")");
        }
    } else {
        sfail(c, path, "type must be a string or a non-empty array of strings", NULL);
    }
    unsigned id = c->st ? 0 : b.failed ? sfail(c, path, "out of memory", NULL) : new_rule(c, b.p);
    free(b.p);
    return id;
}

static void shared_rules(sc *c)
{
    static const char *const rules[] = {
        "ws ::= ( \" \" | \"\\n\" \" \"{0,16} )?",
        "value ::= @object | @array | @string | @number | @boolean | @null",
        "object ::= \"{\" @ws ( @string @ws \":\" @ws @value @ws ( \",\" @ws @string @ws \":\" @ws @value @ws )* )? \"}\"",
        "array ::= \"[\" @ws ( @value @ws ( \",\" @ws @value @ws )* )? \"]\"",
        "string ::= \"\\\"\" @char* \"\\\"\"",
        "char ::= [^\"\\\\\\x00-\\x1F] | \"\\\\\" ( [\"\\\\/bfnrt] | \"u\" ( [0-9a-cA-Ce-fE-F] [0-9a-fA-F]{3} | [dD] [0-7] [0-9a-fA-F]{2} ) )",
        "number ::= \"-\"? ( \"0\" | [1-9] [0-9]{0,15} ) ( \".\" [0-9]{1,16} )? ( [eE] [-+]? [0-9]{1,2} )?",
        "integer ::= \"-\"? ( \"0\" | [1-9] [0-9]{0,15} )",
        "boolean ::= \"true\" | \"false\"",
        "null ::= \"null\"",
    };
    for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++) {
        gm_sb_puts(&c->out, c->px);
        for (const char *r = rules[i]; *r; r++)
            if (*r == '@')
                gm_sb_puts(&c->out, c->px);
            else
                gm_sb_put(&c->out, r, 1);
        gm_sb_puts(&c->out, "\n");
    }
}

gemma_status gm_schema_to_grammar(const char *schema, size_t len, const char *prefix, char **out,
                                  size_t *out_len, gemma_error *err)
{
    *out = NULL;
    prefix = prefix ? prefix : "";
    for (const char *p = prefix; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '_'))
            return gm_fail(err, GEMMA_E_INVALID_ARG, "grammar rule prefix may hold only letters, digits, - and _");
    if (strlen(prefix) > 32)
        return gm_fail(err, GEMMA_E_INVALID_ARG, "grammar rule prefix longer than 32 characters");
    gm_json *root = NULL;
    gemma_status st = gm_json_parse(schema, len, &root, err);
    if (st) {
        gm_err_prefix(err, "schema");
        return st;
    }
    sc c = {.px = prefix, .root = root, .err = err};
    c.out.limit = GM_G_MAX_TEXT;
    unsigned id = gen(&c, root, "");
    if (!c.st) {
        gm_sb_printf(&c.out, "%s ::= %sr%u\n", *prefix ? prefix : "root", prefix, id);
        shared_rules(&c);
        if (c.out.failed)
            sfail(&c, "", "schema too large (its grammar exceeds 4 MiB)", NULL);
    }
    gm_json_free(root);
    free(c.refs);
    if (c.st) {
        free(c.out.p);
        return c.st;
    }
    *out = c.out.p;
    if (out_len)
        *out_len = c.out.n;
    return GEMMA_OK;
}
