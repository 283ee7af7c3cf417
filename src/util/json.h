/* A small JSON reader and writer for the library (tool declarations, tool-call arguments):
 * RFC 8259 text in, a tree out. Input is untrusted: depth and size are bounded, every
 * error names the byte offset. Object members keep their order (templates sort or not as
 * they need). Numbers keep their literal text, so nothing is lost in a round trip. */
#ifndef GM_JSON_H
#define GM_JSON_H

#include "gemma.h"

#include <stdbool.h>
#include <stddef.h>

#define GM_JSON_MAX_DEPTH 128

typedef enum gm_json_type {
    GM_JSON_NULL, GM_JSON_BOOL, GM_JSON_NUMBER, GM_JSON_STRING, GM_JSON_ARRAY, GM_JSON_OBJECT
} gm_json_type;

typedef struct gm_json gm_json;
struct gm_json {
    gm_json_type type;
    bool b;        /* BOOL */
    char *s;       /* STRING: decoded UTF-8 (may hold NUL bytes); NUMBER: the literal; NUL-terminated */
    size_t len;
    char *key;     /* the member name when the parent is an object; NUL-terminated */
    size_t key_len;
    gm_json *kids; /* ARRAY / OBJECT: n children */
    size_t n;
};

/* Parses text[0..len) (one value, surrounding whitespace allowed). GEMMA_E_INVALID_ARG with
 * the byte offset for malformed text or nesting deeper than GM_JSON_MAX_DEPTH. */
gemma_status gm_json_parse(const char *text, size_t len, gm_json **out, gemma_error *err);
void gm_json_free(gm_json *v);

/* The member named key of an object (NULL when absent or v is not an object). */
const gm_json *gm_json_get(const gm_json *v, const char *key);
/* The member's string, or NULL when it is absent or not a string. */
const char *gm_json_get_str(const gm_json *v, const char *key);

/* Order of object members by key, bytewise (Jinja's dictsort): fills idx[0..v->n). */
void gm_json_sorted(const gm_json *v, size_t *idx);

/* Python's repr of a JSON number as Jinja prints it: integers as written, other numbers
 * as the shortest float text that reads back ("1.5", "100000.0", "1e-05"). Writes at most
 * cap bytes plus a NUL. */
void gm_json_number_py(const char *literal, char *buf, size_t cap);

/* An append-only text buffer; oom is sticky. */
typedef struct gm_str {
    char *p;
    size_t n, cap;
    bool oom;
} gm_str;

void gm_str_put(gm_str *b, const char *s, size_t n);
void gm_str_puts(gm_str *b, const char *s);

/* JSON text of v as Python's json.dumps(v, ensure_ascii=False) writes it: ", " and ": "
 * separators, members in order, numbers as gm_json_number_py. */
void gm_json_write_py(gm_str *b, const gm_json *v);
/* Compact JSON text of v (no spaces), numbers as parsed. */
void gm_json_write(gm_str *b, const gm_json *v);
/* A JSON string literal of s[0..n). */
void gm_json_write_string(gm_str *b, const char *s, size_t n);

#endif
