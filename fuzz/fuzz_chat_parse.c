/* Fuzz target: the chat output parser (tool calls, thoughts) and the JSON reader behind
 * tool declarations. Byte 0: bit 0 family (Gemma 4 / Gemma 3), bit 1 tools (Gemma 3 looks
 * for calls), bits 2-7 the piece size for streaming (0: all at once). The rest is model
 * output. Every call must carry a JSON object; the same input gives the same events
 * whatever the split. The input is also parsed as JSON and written back. */
#include "fuzz-common.h"
#include "tokenizer/tokenizer.h"
#include "util/json.h"

#include <stdlib.h>
#include <string.h>

typedef struct cp_seen {
    gm_str all;
    int last;
} cp_seen;

static int cp_on_event(void *user, const gemma_chat_event *ev)
{
    cp_seen *s = user;
    char k = (char)('0' + ev->kind);
    if (ev->kind == GEMMA_CHAT_TOOL_CALL || (int)ev->kind != s->last) /* text may come in any pieces */
        gm_str_put(&s->all, &k, 1);
    s->last = (int)ev->kind;
    if (ev->kind == GEMMA_CHAT_TOOL_CALL) {
        gm_json *a = NULL;
        if (!ev->name || !ev->arguments || gm_json_parse(ev->arguments, strlen(ev->arguments), &a, NULL) ||
            a->type != GM_JSON_OBJECT)
            __builtin_trap();
        gm_json_free(a);
        gm_str_puts(&s->all, ev->name);
        gm_str_puts(&s->all, ev->arguments);
    } else {
        gm_str_put(&s->all, ev->text, ev->len);
    }
    return 0;
}

static void cp_run(const uint8_t *data, size_t size, size_t step, gm_str *out, bool *cut)
{
    gemma_chat_parser *p = gm_chat_parser_new(data[0] & 1 ? GM_CHAT_GEMMA3 : GM_CHAT_GEMMA4, data[0] & 2);
    cp_seen s = {.last = -1};
    if (!p)
        return;
    for (size_t at = 1; at < size;) {
        size_t k = step && size - at > step ? step : size - at;
        gemma_chat_parser_push(p, (const char *)data + at, k, cp_on_event, &s);
        at += k;
    }
    gemma_chat_parser_finish(p, cp_on_event, &s, cut);
    gemma_chat_parser_free(p);
    *out = s.all;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 1 << 16)
        return 0;
    gm_str a = {0}, b = {0};
    bool cut_a = false, cut_b = false;
    cp_run(data, size, 0, &a, &cut_a);
    cp_run(data, size, data[0] >> 2, &b, &cut_b);
    /* events may be split differently, but their concatenation may not differ */
    if (!a.oom && !b.oom && (cut_a != cut_b || a.n != b.n || (a.n && memcmp(a.p, b.p, a.n))))
        __builtin_trap();
    free(a.p);
    free(b.p);
    gm_json *v = NULL;
    if (!gm_json_parse((const char *)data + 1, size - 1, &v, NULL)) {
        gm_str w = {0};
        gm_json_write_py(&w, v);
        gm_json *back = NULL; /* what we write reads back */
        if (!w.oom && gm_json_parse(w.p, w.n, &back, NULL))
            __builtin_trap();
        gm_json_free(back);
        free(w.p);
    }
    gm_json_free(v);
    return 0;
}
