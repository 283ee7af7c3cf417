/* The model's answer on its way to the client: chat output goes through gemma_chat_parser,
 * which splits it into content, reasoning and tool calls (a call is held back until it is
 * complete, then sent whole); completions pass through. Plain responses collect, streamed
 * ones send each piece as it is decided. */
#include "server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool add(char **p, size_t *len, size_t *cap, const char *s, size_t n)
{
    if (*len + n + 1 > *cap) {
        size_t c = (*len + n + 1) * 2;
        char *q = realloc(*p, c);
        if (!q)
            return false;
        *p = q;
        *cap = c;
    }
    memcpy(*p + *len, s, n);
    *len += n;
    (*p)[*len] = 0;
    return true;
}

static void on_call(serve_answer *a, const gemma_chat_event *ev)
{
    serve_call *c = realloc(a->calls, (a->n_calls + 1) * sizeof *c);
    if (!c) {
        a->failed = true;
        return;
    }
    a->calls = c;
    c += a->n_calls;
    const char *dash = strchr(a->id, '-'); /* the response id's unique part */
    snprintf(c->id, sizeof c->id, "call_%d_%.20s", (int)ev->index, dash ? dash + 1 : a->id);
    c->name = strdup(ev->name);
    c->arguments = strdup(ev->arguments);
    if (!c->name || !c->arguments) {
        free(c->name);
        free(c->arguments);
        a->failed = true;
        return;
    }
    a->n_calls++;
    if (a->sink)
        a->sink(a->sink_user, openai_call_chunks(a->cfg, a->r, a->id, a->created, (int)ev->index, c));
    a->called = a->r->tool_choice >= TOOLS_REQUIRED; /* the forced call is made: the answer is complete */
}

static int on_event(void *user, const gemma_chat_event *ev)
{
    serve_answer *a = user;
    if (ev->kind == GEMMA_CHAT_TOOL_CALL)
        on_call(a, ev);
    else if (a->sink && ev->kind == GEMMA_CHAT_CONTENT)
        a->sink(a->sink_user, openai_chunk(a->cfg, a->r, a->id, a->created, ev->text, ev->len, false, NULL));
    else if (a->sink)
        a->sink(a->sink_user, openai_reasoning_chunk(a->cfg, a->r, a->id, a->created, ev->text, ev->len));
    else if (ev->kind == GEMMA_CHAT_CONTENT)
        a->failed |= !add(&a->content, &a->content_len, &a->content_cap, ev->text, ev->len);
    else
        a->failed |= !add(&a->reasoning, &a->reasoning_len, &a->reasoning_cap, ev->text, ev->len);
    return a->failed || a->called;
}

bool answer_init(serve_answer *a, const serve_config *cfg, const serve_request *r, const char *id, long created,
                 answer_sink sink, void *sink_user, const char *prefill)
{
    *a = (serve_answer){.cfg = cfg, .r = r, .id = id, .created = created, .sink = sink, .sink_user = sink_user};
    if (r->kind != SERVE_CHAT)
        return true;
    gemma_chat_params p;
    gemma_chat_params_init(&p, sizeof p);
    p.tools = r->tools;
    p.enable_thinking = r->thinking;
    if (gemma_chat_parser_create(cfg->model, &p, &a->parser, NULL))
        return false;
    return !prefill || !answer_push(a, prefill, strlen(prefill));
}

int answer_push(serve_answer *a, const char *text, size_t len)
{
    if (a->parser)
        return gemma_chat_parser_push(a->parser, text, len, on_event, a) != GEMMA_OK || a->failed || a->called;
    if (a->sink && len)
        a->sink(a->sink_user, openai_chunk(a->cfg, a->r, a->id, a->created, text, len, false, NULL));
    else if (!a->sink)
        a->failed |= !add(&a->content, &a->content_len, &a->content_cap, text, len);
    return a->failed;
}

void answer_finish(serve_answer *a, serve_outcome *o)
{
    bool cut = false;
    if (a->parser && !a->called)
        gemma_chat_parser_finish(a->parser, on_event, a, &cut);
    o->text = a->content ? a->content : "";
    o->len = a->content_len;
    o->reasoning = a->reasoning;
    o->reasoning_len = a->reasoning_len;
    o->calls = a->calls;
    o->n_calls = a->n_calls;
    o->cut_call = cut;
}

void answer_free(serve_answer *a)
{
    gemma_chat_parser_free(a->parser);
    free(a->content);
    free(a->reasoning);
    for (size_t i = 0; i < a->n_calls; i++) {
        free(a->calls[i].name);
        free(a->calls[i].arguments);
    }
    free(a->calls);
    memset(a, 0, sizeof *a);
}
