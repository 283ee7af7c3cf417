/* A growable text buffer with a size limit, for the grammar text the schema compiler writes. */
#include "sb.h"

#include "../util/util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- writing ----------------------------------------------------------------------------- */

void gm_sb_put(gm_sb *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = GM_MAX(b->cap * 2, b->n + n + 256);
        if (b->limit && cap > b->limit + 1)
            cap = b->limit + 1;
        char *p = b->n + n + 1 <= cap ? realloc(b->p, cap) : NULL;
        if (!p) {
            b->failed = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

void gm_sb_puts(gm_sb *b, const char *s)
{
    gm_sb_put(b, s, strlen(s));
}

void gm_sb_printf(gm_sb *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp)
        b->failed = true;
    else
        gm_sb_put(b, tmp, (size_t)n);
}

void gm_sb_literal(gm_sb *b, const char *s, size_t n)
{
    gm_sb_put(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            gm_sb_put(b, e, 2);
        } else if (c < 0x20 || c == 0x7F) {
            gm_sb_printf(b, "\\x%02X", c);
        } else {
            gm_sb_put(b, s + i, 1);
        }
    }
    gm_sb_put(b, "\"", 1);
}
