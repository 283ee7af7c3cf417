/* JSON Schema `pattern` -> grammar expression (see regex.c for the supported subset). */
#ifndef GM_REGEX_H
#define GM_REGEX_H

#include "sb.h"

#include <stdint.h>

/* Appends to out a parenthesized grammar expression matching the JSON text of the content of
 * a string matched (searched, as JSON Schema says) by the pattern re[0..len); any_char names
 * the rule for one arbitrary JSON string character. Returns NULL or a static error message. */
const char *gm_regex_to_grammar(const char *re, size_t len, const char *any_char, gm_sb *out);

#endif
