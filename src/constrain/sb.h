/* A growable text buffer with a size limit (the schema compiler's output). */
#ifndef GM_SB_H
#define GM_SB_H

#include <stdbool.h>
#include <stddef.h>

typedef struct gm_sb {
    char *p;
    size_t n, cap, limit; /* limit: refuse to grow past it (0 = none); failed is sticky */
    bool failed;
} gm_sb;

void gm_sb_put(gm_sb *b, const char *s, size_t n);
void gm_sb_puts(gm_sb *b, const char *s);
void gm_sb_printf(gm_sb *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Writes s[0..n) as a grammar string literal ("..." with escapes). */
void gm_sb_literal(gm_sb *b, const char *s, size_t n);

#endif
