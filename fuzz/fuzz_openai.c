/* Fuzz target: the server's OpenAI request parser (tools/server/openai.c) and, for each
 * request it accepts, the response and stream-chunk builders. Byte 0 picks the endpoint
 * (bit 0: chat or completion); the rest is the HTTP request body. A rejected body must come
 * with a message. */
#include "fuzz-common.h"
#include "../tools/server/server.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    serve_config cfg = {.model_id = "fuzz", .max_tokens = 16};
    gemma_sampler_params_init(&cfg.sampling, sizeof cfg.sampling, NULL);
    serve_kind kind = data[0] & 1 ? SERVE_COMPLETION : SERVE_CHAT;
    serve_request r;
    char err[512];
    err[0] = 0;
    if (!openai_parse(&cfg, kind, (const char *)data + 1, size - 1, &r, err, sizeof err)) {
        if (!err[0] || !memchr(err, 0, sizeof err))
            __builtin_trap();
        openai_request_free(&r);
        return 0;
    }
    if (kind == SERVE_CHAT ? (!r.msgs || !r.n_msgs) : !r.prompt)
        __builtin_trap();
    for (size_t i = 0; i < r.n_msgs; i++)
        if (!r.msgs[i].role || !r.msgs[i].content)
            __builtin_trap();
    const char *text = kind == SERVE_CHAT ? r.msgs[0].content : r.prompt;
    serve_call call = {"call_0", (char *)"f", (char *)(r.tools ? r.tools : "{}")};
    serve_outcome o = {.text = text, .len = strlen(text), .reasoning = text, .reasoning_len = strlen(text),
                       .calls = &call, .n_calls = r.tools != NULL, .stop = GEMMA_STOP_EOG, .prompt_tokens = 3,
                       .completion_tokens = 4, .cached_tokens = 2};
    free(openai_response(&cfg, &r, "id", 1, &o));
    free(openai_call_chunks(&cfg, &r, "id", 1, 0, &call));
    free(openai_reasoning_chunk(&cfg, &r, "id", 1, text, strlen(text)));
    free(openai_chunk(&cfg, &r, "id", 1, text, strlen(text), true, NULL));
    free(openai_chunk(&cfg, &r, "id", 1, "", 0, false, &o));
    free(openai_usage_chunk(&cfg, &r, "id", 1, &o));
    openai_request_free(&r);
    return 0;
}
