/* JSON reader and writer (see json.h). */
#include "json.h"
#include "util.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct reader {
    const char *s;
    size_t n, at;
    gemma_error *err;
} reader;

static gemma_status bad(reader *r, const char *what)
{
    return gm_fail(r->err, GEMMA_E_INVALID_ARG, "JSON: %s at byte %zu", what, r->at);
}

static void skip_ws(reader *r)
{
    while (r->at < r->n && (r->s[r->at] == ' ' || r->s[r->at] == '\t' || r->s[r->at] == '\n' || r->s[r->at] == '\r'))
        r->at++;
}

/* Grows *p to hold n elements of elem bytes (doubling); false when out of memory. */
static bool reserve(void **p, size_t *cap, size_t n, size_t elem)
{
    if (n <= *cap)
        return true;
    size_t c = *cap ? *cap : 16;
    while (c < n)
        c = c > SIZE_MAX / 2 ? n : c * 2;
    void *q = c <= SIZE_MAX / elem ? realloc(*p, c * elem) : NULL;
    if (!q)
        return false;
    *p = q;
    *cap = c;
    return true;
}

void gm_str_put(gm_str *b, const char *s, size_t n)
{
    if (b->oom || n > SIZE_MAX - b->n - 1 || !reserve((void **)&b->p, &b->cap, b->n + n + 1, 1)) {
        b->oom = true;
        return;
    }
    if (n)
        memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

void gm_str_puts(gm_str *b, const char *s) { gm_str_put(b, s, strlen(s)); }

static void put_utf8(gm_str *b, unsigned cp)
{
    char u[4];
    size_t k;
    if (cp < 0x80)
        u[0] = (char)cp, k = 1;
    else if (cp < 0x800)
        u[0] = (char)(0xC0 | cp >> 6), u[1] = (char)(0x80 | (cp & 63)), k = 2;
    else if (cp < 0x10000)
        u[0] = (char)(0xE0 | cp >> 12), u[1] = (char)(0x80 | (cp >> 6 & 63)), u[2] = (char)(0x80 | (cp & 63)), k = 3;
    else
        u[0] = (char)(0xF0 | cp >> 18), u[1] = (char)(0x80 | (cp >> 12 & 63)), u[2] = (char)(0x80 | (cp >> 6 & 63)),
        u[3] = (char)(0x80 | (cp & 63)), k = 4;
    gm_str_put(b, u, k);
}

static int hex4(const char *p)
{
    int v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

/* \uXXXX (and a following low surrogate) at r->at, which points after the 'u'. */
static gemma_status read_u_escape(reader *r, gm_str *b)
{
    int hi = r->at + 4 <= r->n ? hex4(r->s + r->at) : -1;
    if (hi < 0)
        return bad(r, "bad \\u escape");
    r->at += 4;
    unsigned cp = (unsigned)hi;
    if (hi >= 0xD800 && hi < 0xDC00 && r->at + 6 <= r->n && r->s[r->at] == '\\' && r->s[r->at + 1] == 'u') {
        int lo = hex4(r->s + r->at + 2);
        if (lo >= 0xDC00 && lo < 0xE000) {
            cp = 0x10000 + (((unsigned)hi - 0xD800) << 10) + ((unsigned)lo - 0xDC00);
            r->at += 6;
        }
    }
    if (cp >= 0xD800 && cp < 0xE000)
        cp = 0xFFFD; /* a lone surrogate has no UTF-8 form */
    put_utf8(b, cp);
    return GEMMA_OK;
}

/* A string literal at r->at (the opening quote) into *out (malloc'ed, NUL-terminated). */
static gemma_status read_string(reader *r, char **out, size_t *len)
{
    gm_str b = {0};
    gm_str_put(&b, "", 0);
    r->at++;
    for (;;) {
        size_t run = r->at;
        while (r->at < r->n && r->s[r->at] != '"' && r->s[r->at] != '\\' && (unsigned char)r->s[r->at] >= 0x20)
            r->at++;
        gm_str_put(&b, r->s + run, r->at - run);
        if (r->at >= r->n || (unsigned char)r->s[r->at] < 0x20) {
            free(b.p);
            return bad(r, r->at >= r->n ? "unterminated string" : "control character in a string");
        }
        if (r->s[r->at++] == '"')
            break;
        char c = r->at < r->n ? r->s[r->at++] : 0;
        static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
        const char *k = c ? strchr(from, c) : NULL;
        gemma_status st = GEMMA_OK;
        if (k)
            gm_str_put(&b, to + (k - from), 1);
        else if (c == 'u')
            st = read_u_escape(r, &b);
        else
            st = bad(r, "bad escape in a string");
        if (st) {
            free(b.p);
            return st;
        }
    }
    if (b.oom) {
        free(b.p);
        return gm_fail(r->err, GEMMA_E_NOMEM, "JSON: out of memory");
    }
    *out = b.p;
    *len = b.n;
    return GEMMA_OK;
}

static gemma_status read_number(reader *r, gm_json *v)
{
    size_t a = r->at;
    const char *s = r->s;
    if (r->at < r->n && s[r->at] == '-')
        r->at++;
    size_t d = r->at;
    while (r->at < r->n && s[r->at] >= '0' && s[r->at] <= '9')
        r->at++;
    if (r->at == d || (s[d] == '0' && r->at > d + 1))
        return bad(r, "bad number");
    if (r->at < r->n && s[r->at] == '.') {
        size_t f = ++r->at;
        while (r->at < r->n && s[r->at] >= '0' && s[r->at] <= '9')
            r->at++;
        if (r->at == f)
            return bad(r, "bad number");
    }
    if (r->at < r->n && (s[r->at] == 'e' || s[r->at] == 'E')) {
        r->at++;
        if (r->at < r->n && (s[r->at] == '+' || s[r->at] == '-'))
            r->at++;
        size_t e = r->at;
        while (r->at < r->n && s[r->at] >= '0' && s[r->at] <= '9')
            r->at++;
        if (r->at == e)
            return bad(r, "bad number");
    }
    v->type = GM_JSON_NUMBER;
    v->len = r->at - a;
    if (!(v->s = malloc(v->len + 1)))
        return gm_fail(r->err, GEMMA_E_NOMEM, "JSON: out of memory");
    memcpy(v->s, s + a, v->len);
    v->s[v->len] = '\0';
    return GEMMA_OK;
}

static gemma_status read_value(reader *r, gm_json *v, int depth);

/* An array or object at r->at; members of an object carry their key. */
static gemma_status read_container(reader *r, gm_json *v, int depth)
{
    const bool obj = r->s[r->at] == '{';
    const char close = obj ? '}' : ']';
    size_t cap = 0;
    v->type = obj ? GM_JSON_OBJECT : GM_JSON_ARRAY;
    if (depth >= GM_JSON_MAX_DEPTH)
        return bad(r, "nesting too deep");
    r->at++;
    skip_ws(r);
    if (r->at < r->n && r->s[r->at] == close) {
        r->at++;
        return GEMMA_OK;
    }
    for (;;) {
        if (!reserve((void **)&v->kids, &cap, v->n + 1, sizeof *v->kids))
            return gm_fail(r->err, GEMMA_E_NOMEM, "JSON: out of memory");
        gm_json *k = &v->kids[v->n++];
        memset(k, 0, sizeof *k);
        skip_ws(r);
        gemma_status st;
        if (obj) {
            if (r->at >= r->n || r->s[r->at] != '"')
                return bad(r, "expected a member name");
            if ((st = read_string(r, &k->key, &k->key_len)))
                return st;
            skip_ws(r);
            if (r->at >= r->n || r->s[r->at] != ':')
                return bad(r, "expected ':'");
            r->at++;
        }
        if ((st = read_value(r, k, depth + 1)))
            return st;
        skip_ws(r);
        if (r->at < r->n && r->s[r->at] == ',') {
            r->at++;
            continue;
        }
        if (r->at < r->n && r->s[r->at] == close) {
            r->at++;
            return GEMMA_OK;
        }
        return bad(r, obj ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

static gemma_status read_value(reader *r, gm_json *v, int depth)
{
    skip_ws(r);
    if (r->at >= r->n)
        return bad(r, "unexpected end");
    const char c = r->s[r->at];
    if (c == '{' || c == '[')
        return read_container(r, v, depth);
    if (c == '"') {
        v->type = GM_JSON_STRING;
        return read_string(r, &v->s, &v->len);
    }
    if (c == '-' || (c >= '0' && c <= '9'))
        return read_number(r, v);
    static const char *const lit[] = {"null", "true", "false"};
    for (int i = 0; i < 3; i++) {
        size_t k = strlen(lit[i]);
        if (r->n - r->at >= k && !memcmp(r->s + r->at, lit[i], k)) {
            r->at += k;
            v->type = i ? GM_JSON_BOOL : GM_JSON_NULL;
            v->b = i == 1;
            return GEMMA_OK;
        }
    }
    return bad(r, "unexpected character");
}

static void free_kids(gm_json *v)
{
    for (size_t i = 0; i < v->n; i++)
        free_kids(&v->kids[i]);
    free(v->kids);
    free(v->s);
    free(v->key);
}

void gm_json_free(gm_json *v)
{
    if (!v)
        return;
    free_kids(v);
    free(v);
}

gemma_status gm_json_parse(const char *text, size_t len, gm_json **out, gemma_error *err)
{
    *out = NULL;
    reader r = {text, text ? len : 0, 0, err};
    gm_json *v = calloc(1, sizeof *v);
    if (!v)
        return gm_fail(err, GEMMA_E_NOMEM, "JSON: out of memory");
    gemma_status st = read_value(&r, v, 0);
    if (!st) {
        skip_ws(&r);
        if (r.at != r.n)
            st = bad(&r, "text after the value");
    }
    if (st) {
        gm_json_free(v);
        return st;
    }
    *out = v;
    return GEMMA_OK;
}

const gm_json *gm_json_get(const gm_json *v, const char *key)
{
    size_t k = strlen(key);
    for (size_t i = 0; v && v->type == GM_JSON_OBJECT && i < v->n; i++)
        if (v->kids[i].key_len == k && !memcmp(v->kids[i].key, key, k))
            return &v->kids[i];
    return NULL;
}

const char *gm_json_get_str(const gm_json *v, const char *key)
{
    const gm_json *m = gm_json_get(v, key);
    return m && m->type == GM_JSON_STRING ? m->s : NULL;
}

static int key_cmp(const gm_json *a, const gm_json *b)
{
    size_t n = a->key_len < b->key_len ? a->key_len : b->key_len;
    int c = memcmp(a->key, b->key, n);
    return c ? c : (a->key_len > b->key_len) - (a->key_len < b->key_len);
}

void gm_json_sorted(const gm_json *v, size_t *idx)
{
    for (size_t i = 0; i < v->n; i++) { /* insertion sort: stable, and objects are small */
        size_t j = i;
        for (; j > 0 && key_cmp(&v->kids[idx[j - 1]], &v->kids[i]) > 0; j--)
            idx[j] = idx[j - 1];
        idx[j] = i;
    }
}

/* Python's float repr: the shortest digits that read back, fixed notation for exponents
 * -4 .. 15, else d.ddde+XX. */
static void float_py(double d, char *buf, size_t cap)
{
    if (!isfinite(d)) {
        snprintf(buf, cap, "%s", isnan(d) ? "nan" : d > 0 ? "inf" : "-inf");
        return;
    }
    char e[40];
    for (int p = 1; p <= 17; p++) {
        snprintf(e, sizeof e, "%.*e", p - 1, d);
        if (strtod(e, NULL) == d)
            break;
    }
    char digits[24];
    size_t nd = 0;
    const char *q = e;
    bool neg = *q == '-';
    q += neg;
    for (; *q && *q != 'e'; q++)
        if (*q != '.')
            digits[nd++] = *q;
    int x = atoi(q + 1);
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    char out[64];
    size_t o = 0;
    if (neg)
        out[o++] = '-';
    if (x >= -4 && x < 16) {
        if (x < 0) {
            out[o++] = '0', out[o++] = '.';
            for (int i = -1; i > x; i--)
                out[o++] = '0';
            for (size_t i = 0; i < nd; i++)
                out[o++] = digits[i];
        } else {
            for (int i = 0; i <= x; i++)
                out[o++] = (size_t)i < nd ? digits[i] : '0';
            out[o++] = '.';
            if ((size_t)x + 1 >= nd)
                out[o++] = '0';
            for (size_t i = (size_t)x + 1; i < nd; i++)
                out[o++] = digits[i];
        }
        out[o] = '\0';
    } else {
        out[o++] = digits[0];
        if (nd > 1) {
            out[o++] = '.';
            for (size_t i = 1; i < nd; i++)
                out[o++] = digits[i];
        }
        snprintf(out + o, sizeof out - o, "e%c%02d", x < 0 ? '-' : '+', x < 0 ? -x : x);
    }
    snprintf(buf, cap, "%s", out);
}

void gm_json_number_py(const char *lit, char *buf, size_t cap)
{
    if (!strpbrk(lit, ".eE")) { /* a Python int: as written, except "-0" */
        snprintf(buf, cap, "%s", strcmp(lit, "-0") ? lit : "0");
        return;
    }
    float_py(strtod(lit, NULL), buf, cap);
}

void gm_json_write_string(gm_str *b, const char *s, size_t n)
{
    gm_str_put(b, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        gm_str_put(b, s + run, i - run);
        run = i + 1;
        char e[8];
        const char *k = strchr("\"\\\b\f\n\r\t", c);
        if (c && k)
            snprintf(e, sizeof e, "\\%c", "\"\\bfnrt"[k - "\"\\\b\f\n\r\t"]);
        else
            snprintf(e, sizeof e, "\\u%04x", c);
        gm_str_puts(b, e);
    }
    gm_str_put(b, s + run, n - run);
    gm_str_put(b, "\"", 1);
}

static void write_any(gm_str *b, const gm_json *v, bool py)
{
    char num[64];
    switch (v->type) {
    case GM_JSON_NULL: gm_str_puts(b, "null"); break;
    case GM_JSON_BOOL: gm_str_puts(b, v->b ? "true" : "false"); break;
    case GM_JSON_NUMBER: /* out of double range: Python would write Infinity, not JSON; keep the literal */
        if (py && isfinite(strtod(v->s, NULL)))
            gm_json_number_py(v->s, num, sizeof num);
        else
            snprintf(num, sizeof num, "%s", v->s);
        gm_str_puts(b, strlen(v->s) < sizeof num ? num : v->s);
        break;
    case GM_JSON_STRING: gm_json_write_string(b, v->s, v->len); break;
    case GM_JSON_ARRAY:
    case GM_JSON_OBJECT:
        gm_str_put(b, v->type == GM_JSON_OBJECT ? "{" : "[", 1);
        for (size_t i = 0; i < v->n; i++) {
            if (i)
                gm_str_puts(b, py ? ", " : ",");
            if (v->type == GM_JSON_OBJECT) {
                gm_json_write_string(b, v->kids[i].key, v->kids[i].key_len);
                gm_str_puts(b, py ? ": " : ":");
            }
            write_any(b, &v->kids[i], py);
        }
        gm_str_put(b, v->type == GM_JSON_OBJECT ? "}" : "]", 1);
        break;
    }
}

void gm_json_write_py(gm_str *b, const gm_json *v) { write_any(b, v, true); }
void gm_json_write(gm_str *b, const gm_json *v) { write_any(b, v, false); }
