/* The server's operational endpoints and strict request checks: /metrics (Prometheus text),
 * /tokenize and /detokenize (llama-server's shapes), one model's JSON, and the checks made on
 * a body before the OpenAI parser sees it (valid UTF-8, no raw control bytes, nothing after
 * the JSON value, a model this server serves). */
#include "server.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at s[0..n), 0 when invalid (overlong, surrogate, > U+10FFFF). */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    if (s[0] < 0x80)
        return 1;
    size_t k = s[0] >= 0xF0 ? 4 : s[0] >= 0xE0 ? 3 : s[0] >= 0xC2 ? 2 : 0;
    if (k == 0 || s[0] > 0xF4 || k > n)
        return 0;
    for (size_t i = 1; i < k; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    if ((s[0] == 0xE0 && s[1] < 0xA0) || (s[0] == 0xED && s[1] > 0x9F) || (s[0] == 0xF0 && s[1] < 0x90) ||
        (s[0] == 0xF4 && s[1] > 0x8F))
        return 0;
    return k;
}

bool ops_check_body(const char *body, size_t len, char *err, size_t cap)
{
    const unsigned char *s = (const unsigned char *)body;
    for (size_t i = 0; i < len;) {
        if (s[i] < 0x20 && s[i] != '\t' && s[i] != '\n' && s[i] != '\r')
            return snprintf(err, cap, "the request body has a raw control byte (0x%02x) at offset %zu; JSON strings "
                                      "escape them", s[i], i), false;
        size_t k = utf8_seq(s + i, len - i);
        if (!k)
            return snprintf(err, cap, "the request body is not valid UTF-8 (offset %zu)", i), false;
        i += k;
    }
    const char *end = NULL;
    cJSON *doc = cJSON_ParseWithLengthOpts(body, len, &end, false);
    cJSON_Delete(doc);
    if (!doc)
        return snprintf(err, cap, "the request body is not valid JSON"), false;
    while (end < body + len && (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r'))
        end++;
    if (end < body + len)
        return snprintf(err, cap, "the request body has data after its JSON value (offset %zu)",
                        (size_t)(end - body)), false;
    return true;
}

bool ops_model_known(const serve_config *cfg, const char *body, size_t len)
{
    cJSON *doc = cJSON_ParseWithLength(body, len);
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(doc, "model");
    bool ok = !cJSON_IsString(m) || !strcmp(m->valuestring, cfg->model_id) ||
              (cfg->file_id && !strcmp(m->valuestring, cfg->file_id));
    cJSON_Delete(doc);
    return ok;
}

char *ops_error(const char *message, const char *type, const char *param, const char *code)
{
    cJSON *root = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(root, "error");
    cJSON_AddStringToObject(e, "message", message);
    cJSON_AddStringToObject(e, "type", type);
    if (param)
        cJSON_AddStringToObject(e, "param", param);
    else
        cJSON_AddNullToObject(e, "param");
    if (code)
        cJSON_AddStringToObject(e, "code", code);
    else
        cJSON_AddNullToObject(e, "code");
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return s;
}

char *ops_model(const serve_config *cfg, long created)
{
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "id", cfg->model_id);
    cJSON_AddStringToObject(m, "object", "model");
    cJSON_AddNumberToObject(m, "created", (double)created);
    cJSON_AddStringToObject(m, "owned_by", "gemma.c");
    char *s = cJSON_PrintUnformatted(m);
    cJSON_Delete(m);
    return s;
}

/* {"content": TEXT, "add_special": bool, "parse_special": bool, "with_pieces": bool}
 * -> {"tokens": [ids]} or, with pieces, {"tokens": [{"id": N, "piece": TEXT}]}. */
char *ops_tokenize(const serve_config *cfg, const char *body, size_t len, char *err, size_t cap)
{
    cJSON *doc = cJSON_ParseWithLength(body, len), *out = NULL;
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(doc, "content");
    gemma_token *t = NULL;
    size_t n = 0;
    if (!cJSON_IsString(content)) {
        snprintf(err, cap, "content must be a string");
        goto done;
    }
    bool bos = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(doc, "add_special"));
    bool special = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(doc, "parse_special"));
    bool pieces = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(doc, "with_pieces"));
    const char *text = content->valuestring;
    size_t want = strlen(text) + 2;
    if (!(t = malloc(want * sizeof *t)) ||
        gemma_tokenize(cfg->model, text, strlen(text), bos, special, t, want, &n) != GEMMA_OK) {
        snprintf(err, cap, "cannot tokenize the content");
        goto done;
    }
    out = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(out, "tokens");
    for (size_t i = 0; i < n; i++) {
        if (!pieces) {
            cJSON_AddItemToArray(arr, cJSON_CreateNumber(t[i]));
            continue;
        }
        char piece[256];
        size_t pl = 0;
        if (gemma_token_to_piece(cfg->model, t[i], true, piece, sizeof piece - 1, &pl))
            pl = 0;
        piece[pl] = 0;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "id", t[i]);
        cJSON_AddStringToObject(o, "piece", piece);
        cJSON_AddItemToArray(arr, o);
    }
done:
    free(t);
    cJSON_Delete(doc);
    char *s = out ? cJSON_PrintUnformatted(out) : NULL;
    cJSON_Delete(out);
    return s;
}

/* {"tokens": [ids]} -> {"content": TEXT}; text as the model writes it (control tokens left out). */
char *ops_detokenize(const serve_config *cfg, const char *body, size_t len, char *err, size_t cap)
{
    cJSON *doc = cJSON_ParseWithLength(body, len), *out = NULL;
    const cJSON *toks = cJSON_GetObjectItemCaseSensitive(doc, "tokens"), *it;
    char *text = NULL;
    size_t tl = 0;
    if (!cJSON_IsArray(toks)) {
        snprintf(err, cap, "tokens must be an array of token ids");
        goto done;
    }
    text = malloc((size_t)cJSON_GetArraySize(toks) * 64 + 1);
    cJSON_ArrayForEach(it, toks)
    {
        size_t pl = 0;
        if (!text || !cJSON_IsNumber(it) || it->valuedouble < 0 || it->valuedouble >= gemma_vocab_size(cfg->model) ||
            gemma_token_to_piece(cfg->model, (gemma_token)it->valuedouble, false, text + tl, 64, &pl)) {
            snprintf(err, cap, "tokens must hold ids from 0 to %d", gemma_vocab_size(cfg->model) - 1);
            goto done;
        }
        tl += pl;
    }
    text[tl] = 0;
    out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "content", text);
done:
    free(text);
    cJSON_Delete(doc);
    char *s = out ? cJSON_PrintUnformatted(out) : NULL;
    cJSON_Delete(out);
    return s;
}

char *ops_metrics(const serve_metrics *m, int queue, int busy, int slots)
{
    double pre = (double)atomic_load(&m->prefill_us) * 1e-6, dec = (double)atomic_load(&m->decode_us) * 1e-6;
    unsigned long long pt = atomic_load(&m->prompt_tokens), ct = atomic_load(&m->cached_tokens),
                       gt = atomic_load(&m->generated_tokens);
    size_t cap = 2048;
    char *s = malloc(cap);
    if (s)
        snprintf(s, cap,
                 "# HELP gemma_requests_total Completion requests served.\n# TYPE gemma_requests_total counter\n"
                 "gemma_requests_total %llu\n"
                 "# HELP gemma_rejected_total Requests refused because the queue was full.\n"
                 "# TYPE gemma_rejected_total counter\ngemma_rejected_total %llu\n"
                 "# HELP gemma_prompt_tokens_total Prompt tokens of served requests.\n"
                 "# TYPE gemma_prompt_tokens_total counter\ngemma_prompt_tokens_total %llu\n"
                 "# HELP gemma_cached_tokens_total Prompt tokens reused from a session's cache.\n"
                 "# TYPE gemma_cached_tokens_total counter\ngemma_cached_tokens_total %llu\n"
                 "# HELP gemma_generated_tokens_total Tokens generated.\n"
                 "# TYPE gemma_generated_tokens_total counter\ngemma_generated_tokens_total %llu\n"
                 "# HELP gemma_queue_depth Requests waiting for a session.\n# TYPE gemma_queue_depth gauge\n"
                 "gemma_queue_depth %d\n"
                 "# HELP gemma_slots_active Sessions serving a request.\n# TYPE gemma_slots_active gauge\n"
                 "gemma_slots_active %d\n# HELP gemma_slots Sessions.\n# TYPE gemma_slots gauge\ngemma_slots %d\n"
                 "# HELP gemma_prefill_tokens_per_second Prompt tokens evaluated per second of prefill.\n"
                 "# TYPE gemma_prefill_tokens_per_second gauge\ngemma_prefill_tokens_per_second %.2f\n"
                 "# HELP gemma_decode_tokens_per_second Tokens generated per second of decoding.\n"
                 "# TYPE gemma_decode_tokens_per_second gauge\ngemma_decode_tokens_per_second %.2f\n",
                 atomic_load(&m->requests), atomic_load(&m->rejected), pt, ct, gt, queue, busy, slots,
                 pre > 0 ? (double)(pt - ct) / pre : 0.0, dec > 0 ? (double)gt / dec : 0.0);
    return s;
}
