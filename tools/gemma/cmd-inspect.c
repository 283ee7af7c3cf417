/* gemma inspect: what a GGUF model file contains, and whether it is valid.
 * Uses the public gemma_gguf_* inspection API, then tries gemma_model_load. */
#include "args.h"
#include "cli.h"
#include "gemma.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char help[] =
    "usage: gemma inspect [MODEL] [options]\n"
    "\n"
    "Shows what a GGUF model file contains and checks that it is valid: the container\n"
    "(header, every metadata record, every tensor's type, shape and byte range) and then\n"
    "the model itself (it is loaded the way 'gemma run' loads it). Nothing is executed.\n"
    "\n"
    "MODEL is a .gguf file; without it (or -m FILE) the default model is used.\n"
    "\n"
    "options:\n"
    "  -m, --model FILE  the model file (same as giving MODEL)\n"
    "  --json            print one JSON object instead of text (all metadata included)\n"
    "  --tensors         also list every tensor: name, type, shape, offset, bytes\n"
    "  --kv              also list every metadata key with its value (arrays summarised)\n"
    "  --no-load         check the container only; skip loading the model\n"
    "  --check-tensors   also scan every tensor for NaN/Inf while loading; the first bad\n"
    "                    one is reported (tensor, row, element) and the exit status is 1\n"
    "  --no-mmap         load the model by reading the file instead of mapping it\n"
    "  -h, --help        this text\n"
    "\n"
    "The summary shows architecture, size, layer and attention dimensions, the sliding-\n"
    "window layout (which layers are global), the vocabulary, whether a chat template is\n"
    "present, and a histogram of tensor types with their byte totals.\n"
    "\n"
    "exit status: 0 when the file is valid (a well-formed model that this build does not\n"
    "support, such as another architecture, still counts as valid; the report says so),\n"
    "1 when it is malformed or inconsistent (the message names the field and byte offset),\n"
    "2 for usage errors.\n"
    "\n"
    "examples:\n"
    "  gemma inspect model.gguf\n"
    "  gemma inspect model.gguf --tensors | grep attn_q\n"
    "  gemma inspect model.gguf --json | python3 -m json.tool\n";

typedef struct opts {
    const char *path;
    bool json, tensors, kv, load;
    args_common load_opts; /* --no-mmap, --check-tensors */
} opts;

/* ---- what the summary holds ----------------------------------------------------------- */

#define MAX_LAYERS 512
#define MAX_TYPES 64

typedef struct type_stat {
    const char *name;
    uint64_t count, bytes;
} type_stat;

typedef struct summary {
    char arch[64], name[256], size_label[64], tok_model[64];
    bool size_derived;
    int64_t n_layer, n_embd, n_ctx, n_swa, vocab;
    int64_t head[MAX_LAYERS], head_kv[MAX_LAYERS], ff[MAX_LAYERS];
    int n_head_vals, n_head_kv_vals, n_ff_vals; /* 0 absent, 1 scalar, n_layer per layer */
    int64_t head_dim, head_dim_swa;
    char swa_desc[128];
    bool global[MAX_LAYERS];
    bool has_swa_layout;
    bool chat_template;
    type_stat types[MAX_TYPES];
    int n_types;
    uint64_t n_params, n_bytes;
    gemma_status load_status;
    char load_msg[512];
    bool load_tried;
} summary;

static void copy_str(const gemma_gguf *g, const char *key, char *out, size_t cap)
{
    const char *s;
    size_t n;
    out[0] = '\0';
    if (gemma_gguf_get_str(g, key, &s, &n) == GEMMA_OK)
        snprintf(out, cap, "%.*s", (int)(n < cap ? n : cap - 1), s);
}

static int64_t get_u32(const gemma_gguf *g, const char *arch, const char *suffix)
{
    char key[160];
    uint32_t v;
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    return gemma_gguf_get_u32(g, key, &v) == GEMMA_OK ? (int64_t)v : -1;
}

/* A per-layer integer key: scalar (1 value) or array (one per element, up to cap). */
static int get_ints(const gemma_gguf *g, const char *arch, const char *suffix, int64_t *out, int cap)
{
    char key[160];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    int64_t i = gemma_gguf_find_key(g, key);
    if (i < 0)
        return 0;
    uint64_t n = gemma_gguf_kv_count(g, (size_t)i);
    int got = 0;
    for (uint64_t k = 0; k < n && got < cap; k++)
        if (gemma_gguf_kv_get_int(g, (size_t)i, k, &out[got]) == GEMMA_OK)
            got++;
    return got;
}

static void sliding_layout(const gemma_gguf *g, summary *s)
{
    s->n_swa = get_u32(g, s->arch, "attention.sliding_window");
    if (s->n_layer <= 0 || s->n_layer > MAX_LAYERS)
        return;
    char key[160];
    snprintf(key, sizeof key, "%s.attention.sliding_window_pattern", s->arch);
    int64_t k = gemma_gguf_find_key(g, key);
    bool is_array = k >= 0 && gemma_gguf_kv_type(g, (size_t)k) == GEMMA_GGUF_ARRAY;
    if (s->n_swa <= 0) {
        for (int64_t il = 0; il < s->n_layer; il++)
            s->global[il] = true;
        snprintf(s->swa_desc, sizeof s->swa_desc, "none (every layer is global)");
    } else if (is_array && gemma_gguf_kv_elem_type(g, (size_t)k) == GEMMA_GGUF_BOOL) {
        /* Gemma 4: one flag per layer, true = sliding-window (local) layer. */
        if (gemma_gguf_kv_count(g, (size_t)k) != (uint64_t)s->n_layer) {
            snprintf(s->swa_desc, sizeof s->swa_desc, "pattern array has %" PRIu64 " entries for %" PRId64 " layers",
                     gemma_gguf_kv_count(g, (size_t)k), s->n_layer);
            return;
        }
        for (int64_t il = 0; il < s->n_layer; il++) {
            int64_t v = 0;
            gemma_gguf_kv_get_int(g, (size_t)k, (uint64_t)il, &v);
            s->global[il] = v == 0;
        }
        snprintf(s->swa_desc, sizeof s->swa_desc, "%" PRId64 " tokens, per-layer pattern from the file", s->n_swa);
    } else {
        /* Gemma 3: a period P (default 6; an array is ignored, as llama.cpp does); layer il
         * is global iff P != 0 and il % P == P-1. */
        int64_t p = 6;
        if (k >= 0 && gemma_gguf_kv_type(g, (size_t)k) == GEMMA_GGUF_UINT32)
            gemma_gguf_kv_get_int(g, (size_t)k, 0, &p);
        for (int64_t il = 0; il < s->n_layer; il++)
            s->global[il] = p != 0 && il % p == p - 1;
        snprintf(s->swa_desc, sizeof s->swa_desc, "%" PRId64 " tokens, pattern period %" PRId64 "%s",
                 s->n_swa, p, k >= 0 && gemma_gguf_kv_type(g, (size_t)k) == GEMMA_GGUF_UINT32 ? "" : " (default)");
    }
    s->has_swa_layout = true;
}

static void tensor_stats(const gemma_gguf *g, summary *s)
{
    for (size_t i = 0; i < gemma_gguf_n_tensors(g); i++) {
        gemma_tensor_info t = {.size = sizeof t};
        if (gemma_gguf_tensor(g, i, &t) != GEMMA_OK)
            continue;
        s->n_params += t.n_elements;
        s->n_bytes += t.nbytes;
        int k = 0;
        while (k < s->n_types && strcmp(s->types[k].name, t.type_name))
            k++;
        if (k == s->n_types) {
            if (k == MAX_TYPES)
                continue;
            s->types[s->n_types++] = (type_stat){t.type_name, 0, 0};
        }
        s->types[k].count++;
        s->types[k].bytes += t.nbytes;
    }
}

static void summarise(const gemma_gguf *g, summary *s)
{
    memset(s, 0, sizeof *s);
    copy_str(g, "general.architecture", s->arch, sizeof s->arch);
    copy_str(g, "general.name", s->name, sizeof s->name);
    copy_str(g, "general.size_label", s->size_label, sizeof s->size_label);
    copy_str(g, "tokenizer.ggml.model", s->tok_model, sizeof s->tok_model);
    s->n_layer = get_u32(g, s->arch, "block_count");
    s->n_embd = get_u32(g, s->arch, "embedding_length");
    s->n_ctx = get_u32(g, s->arch, "context_length");
    s->n_head_vals = get_ints(g, s->arch, "attention.head_count", s->head, MAX_LAYERS);
    s->n_head_kv_vals = get_ints(g, s->arch, "attention.head_count_kv", s->head_kv, MAX_LAYERS);
    s->n_ff_vals = get_ints(g, s->arch, "feed_forward_length", s->ff, MAX_LAYERS);
    s->head_dim = get_u32(g, s->arch, "attention.key_length");
    if (s->head_dim < 0 && s->n_embd > 0 && s->n_head_vals > 0 && s->head[0] > 0)
        s->head_dim = s->n_embd / s->head[0];
    s->head_dim_swa = get_u32(g, s->arch, "attention.key_length_swa");
    int64_t tok = gemma_gguf_find_key(g, "tokenizer.ggml.tokens");
    s->vocab = tok >= 0 ? (int64_t)gemma_gguf_kv_count(g, (size_t)tok) : -1;
    s->chat_template = gemma_gguf_find_key(g, "tokenizer.chat_template") >= 0;
    sliding_layout(g, s);
    tensor_stats(g, s);
    if (!s->size_label[0]) {
        const bool fits = s->n_layer > 0 && s->n_layer <= INT32_MAX;
        const char *l = fits ? gemma_arch_size_label(s->arch, (int32_t)s->n_layer) : NULL;
        s->size_derived = true;
        if (l)
            snprintf(s->size_label, sizeof s->size_label, "%s", l);
        else if (s->n_params == 0)
            snprintf(s->size_label, sizeof s->size_label, "?");
        else if (s->n_params >= 1000000000ull)
            snprintf(s->size_label, sizeof s->size_label, "%.1fB", (double)s->n_params / 1e9);
        else
            snprintf(s->size_label, sizeof s->size_label, "%.0fM", (double)s->n_params / 1e6);
    }
}

static void try_load(const opts *o, summary *s)
{
    gemma_model *m = NULL;
    gemma_error err = {0};
    gemma_model_params p = args_model_params(&o->load_opts);
    s->load_tried = true;
    s->load_status = gemma_model_load(o->path, &p, &m, &err);
    snprintf(s->load_msg, sizeof s->load_msg, "%s", err.message[0] ? err.message : gemma_strerror(s->load_status));
    gemma_model_free(m);
}

/* ---- text output ---------------------------------------------------------------------- */

static double mib(uint64_t b) { return (double)b / (1024.0 * 1024.0); }

/* "4" when every layer has the same value, else "a,b,c,..." */
static void print_vals(const int64_t *v, int n)
{
    bool same = true;
    for (int i = 1; i < n; i++)
        same = same && v[i] == v[0];
    if (n == 0) {
        printf("?");
        return;
    }
    if (same) {
        printf("%" PRId64, v[0]);
        return;
    }
    for (int i = 0; i < n; i++)
        printf("%s%" PRId64, i ? "," : "", v[i]);
    printf(" (per layer)");
}

/* A dimension, or "?" when the file does not say. */
static const char *dim(int64_t v)
{
    static char buf[4][24];
    static int k;
    k = (k + 1) % 4;
    if (v < 0)
        return "?";
    snprintf(buf[k], sizeof buf[k], "%" PRId64, v);
    return buf[k];
}

static void print_text(const gemma_gguf *g, const opts *o, const summary *s)
{
    printf("file:            %s\n", o->path);
    printf("container:       GGUF v%u, %" PRIu64 " bytes, %zu metadata keys, %zu tensors, alignment %u\n",
           gemma_gguf_version(g), gemma_gguf_file_size(g), gemma_gguf_n_kv(g), gemma_gguf_n_tensors(g),
           gemma_gguf_alignment(g));
    printf("architecture:    %s\n", s->arch[0] ? s->arch : "(none: general.architecture is missing)");
    printf("name:            %s\n", s->name[0] ? s->name : "-");
    printf("size:            %s%s\n", s->size_label, s->size_derived ? " (derived)" : "");
    printf("layers:          %s\n", dim(s->n_layer));
    printf("embedding:       %s\n", dim(s->n_embd));
    printf("heads:           ");
    print_vals(s->head, s->n_head_vals);
    printf(", KV heads ");
    if (s->n_head_kv_vals)
        print_vals(s->head_kv, s->n_head_kv_vals);
    else
        printf("= heads");
    printf("\nhead dim:        %s", dim(s->head_dim));
    if (s->head_dim_swa > 0)
        printf(" (global layers), %" PRId64 " (sliding-window layers)", s->head_dim_swa);
    printf("\nfeed-forward:    ");
    print_vals(s->ff, s->n_ff_vals);
    printf("\ncontext length:  %s\n", dim(s->n_ctx));
    printf("sliding window:  %s\n", s->swa_desc[0] ? s->swa_desc : "-");
    if (s->has_swa_layout && s->n_swa <= 0) {
        printf("global layers:   all\n");
    } else if (s->has_swa_layout) {
        int n_global = 0;
        printf("global layers:   ");
        for (int64_t il = 0; il < s->n_layer; il++)
            if (s->global[il])
                printf("%s%" PRId64, n_global++ ? ", " : "", il);
        printf("%s (%d of %" PRId64 ")\n", n_global ? "" : "none", n_global, s->n_layer);
    }
    printf("vocabulary:      %s tokens, tokenizer model '%s'\n", dim(s->vocab), s->tok_model[0] ? s->tok_model : "?");
    printf("chat template:   %s\n", s->chat_template ? "yes" : "no");
    printf("tensor types:\n");
    for (int i = 0; i < s->n_types; i++)
        printf("  %-8s %6" PRIu64 " tensors %12" PRIu64 " bytes (%.2f MiB)\n", s->types[i].name,
               s->types[i].count, s->types[i].bytes, mib(s->types[i].bytes));
    printf("parameters:      %" PRIu64 " (%.1fM), %" PRIu64 " bytes of tensor data (%.2f MiB, %.2f bits/param)\n",
           s->n_params, (double)s->n_params / 1e6, s->n_bytes, mib(s->n_bytes),
           s->n_params ? 8.0 * (double)s->n_bytes / (double)s->n_params : 0.0);
    if (!s->load_tried)
        printf("model load:      skipped (--no-load)\n");
    else if (s->load_status == GEMMA_OK)
        printf("model load:      OK\n");
    else
        printf("model load:      %s: %s\n",
               s->load_status == GEMMA_E_UNSUPPORTED ? "not supported by this build" : "FAILED", s->load_msg);
}

static void print_kv_text(const gemma_gguf *g)
{
    static char buf[1024];
    printf("metadata:\n");
    for (size_t i = 0; i < gemma_gguf_n_kv(g); i++) {
        gemma_status st = gemma_gguf_kv_to_string(g, i, buf, sizeof buf);
        gemma_gguf_type t = gemma_gguf_kv_type(g, (size_t)i);
        /* Long strings (chat templates) are cut; newlines shown as \n to keep one line each. */
        printf("  %-48s %-7s ", gemma_gguf_kv_key(g, i), gemma_gguf_type_name(t));
        for (const char *p = buf; *p; p++)
            fputs(*p == '\n' ? "\\n" : (char[2]){*p, 0}, stdout);
        printf("%s\n", st == GEMMA_E_BUFFER_TOO_SMALL ? "..." : "");
    }
}

static void print_tensors_text(const gemma_gguf *g)
{
    printf("tensors (offsets relative to the data section at byte %" PRIu64 "):\n", gemma_gguf_data_offset(g));
    for (size_t i = 0; i < gemma_gguf_n_tensors(g); i++) {
        gemma_tensor_info t = {.size = sizeof t};
        if (gemma_gguf_tensor(g, i, &t) != GEMMA_OK)
            continue;
        char shape[96];
        int n = snprintf(shape, sizeof shape, "[");
        for (int d = 0; d < t.n_dims && n < (int)sizeof shape; d++)
            n += snprintf(shape + n, sizeof shape - (size_t)n, "%s%" PRId64, d ? ", " : "", t.ne[d]);
        if (n < (int)sizeof shape)
            snprintf(shape + n, sizeof shape - (size_t)n, "]");
        printf("  %-40s %-7s %-22s offset %12" PRIu64 "  %12" PRIu64 " bytes\n", t.name, t.type_name, shape,
               t.offset, t.nbytes);
    }
}

/* ---- JSON output ---------------------------------------------------------------------- */

/* Length of a valid UTF-8 sequence at p (max n bytes), or 0 when invalid. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    unsigned c = p[0];
    size_t len = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
    if (len == 0 || len > n || (len == 2 && c < 0xc2) || (len == 4 && c > 0xf4))
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    if (len == 3 && ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] >= 0xa0)))
        return 0; /* overlong, or a UTF-16 surrogate */
    if (len == 4 && ((c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] >= 0x90)))
        return 0;
    return len;
}

/* A JSON string; invalid UTF-8 becomes U+FFFD so the output always parses. */
static void json_str(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    putchar('"');
    for (size_t i = 0; i < n;) {
        unsigned char c = p[i];
        size_t l = utf8_len(p + i, n - i);
        if (l == 0) {
            fputs("\\ufffd", stdout);
            i++;
        } else if (c == '"' || c == '\\') {
            printf("\\%c", c);
            i++;
        } else if (c == '\n') {
            fputs("\\n", stdout);
            i++;
        } else if (c < 0x20 || c == 0x7f) {
            printf("\\u%04x", c);
            i++;
        } else {
            fwrite(p + i, 1, l, stdout);
            i += l;
        }
    }
    putchar('"');
}

static void json_cstr(const char *s) { json_str(s, strlen(s)); }

static void json_int(const char *key, int64_t v)
{
    if (v < 0)
        printf(",\"%s\":null", key);
    else
        printf(",\"%s\":%" PRId64, key, v);
}

static void json_vals(const char *key, const int64_t *v, int n)
{
    printf(",\"%s\":", key);
    if (n == 0) {
        printf("null");
        return;
    }
    bool same = true;
    for (int i = 1; i < n; i++)
        same = same && v[i] == v[0];
    if (same) {
        printf("%" PRId64, v[0]);
        return;
    }
    putchar('[');
    for (int i = 0; i < n; i++)
        printf("%s%" PRId64, i ? "," : "", v[i]);
    putchar(']');
}

/* Metadata value as text: strings in full (templates can be long), arrays summarised. */
static void json_kv_value(const gemma_gguf *g, size_t i)
{
    size_t cap = 4096;
    char *buf = malloc(cap);
    while (buf && gemma_gguf_kv_to_string(g, i, buf, cap) == GEMMA_E_BUFFER_TOO_SMALL && cap < ((size_t)256 << 20)) {
        char *nb = realloc(buf, cap * 2);
        if (!nb)
            break;
        buf = nb;
        cap *= 2;
    }
    if (buf)
        json_cstr(buf);
    else
        printf("null");
    free(buf);
}

static void print_json(const gemma_gguf *g, const opts *o, const summary *s)
{
    printf("{\"file\":");
    json_cstr(o->path);
    printf(",\"valid\":true,\"gguf_version\":%u,\"file_size\":%" PRIu64 ",\"alignment\":%u,\"data_offset\":%" PRIu64,
           gemma_gguf_version(g), gemma_gguf_file_size(g), gemma_gguf_alignment(g), gemma_gguf_data_offset(g));
    printf(",\"n_kv\":%zu,\"n_tensors\":%zu,\"architecture\":", gemma_gguf_n_kv(g), gemma_gguf_n_tensors(g));
    json_cstr(s->arch);
    printf(",\"name\":");
    json_cstr(s->name);
    printf(",\"size_label\":");
    json_cstr(s->size_label);
    printf(",\"size_label_derived\":%s", s->size_derived ? "true" : "false");
    json_int("n_layer", s->n_layer);
    json_int("n_embd", s->n_embd);
    json_vals("n_head", s->head, s->n_head_vals);
    json_vals("n_head_kv", s->head_kv, s->n_head_kv_vals);
    json_int("head_dim", s->head_dim);
    json_int("head_dim_swa", s->head_dim_swa);
    json_vals("n_ff", s->ff, s->n_ff_vals);
    json_int("context_length", s->n_ctx);
    json_int("sliding_window", s->n_swa < 0 ? 0 : s->n_swa);
    printf(",\"sliding_window_desc\":");
    json_cstr(s->swa_desc);
    printf(",\"global_layers\":");
    if (s->has_swa_layout) {
        putchar('[');
        for (int64_t il = 0, k = 0; il < s->n_layer; il++)
            if (s->global[il])
                printf("%s%" PRId64, k++ ? "," : "", il);
        putchar(']');
    } else {
        printf("null");
    }
    json_int("vocab_size", s->vocab);
    printf(",\"tokenizer_model\":");
    json_cstr(s->tok_model);
    printf(",\"has_chat_template\":%s,\"tensor_types\":[", s->chat_template ? "true" : "false");
    for (int i = 0; i < s->n_types; i++)
        printf("%s{\"type\":\"%s\",\"count\":%" PRIu64 ",\"bytes\":%" PRIu64 "}", i ? "," : "", s->types[i].name,
               s->types[i].count, s->types[i].bytes);
    printf("],\"n_params\":%" PRIu64 ",\"tensor_bytes\":%" PRIu64, s->n_params, s->n_bytes);
    printf(",\"model_load\":");
    if (!s->load_tried) {
        printf("null");
    } else {
        printf("{\"ok\":%s,\"status\":\"%s\",\"message\":", s->load_status == GEMMA_OK ? "true" : "false",
               gemma_status_name(s->load_status));
        json_cstr(s->load_status == GEMMA_OK ? "" : s->load_msg);
        putchar('}');
    }
    printf(",\"metadata\":[");
    for (size_t i = 0; i < gemma_gguf_n_kv(g); i++) {
        printf("%s{\"key\":", i ? "," : "");
        json_cstr(gemma_gguf_kv_key(g, i));
        gemma_gguf_type t = gemma_gguf_kv_type(g, i);
        printf(",\"type\":\"%s\"", gemma_gguf_type_name(t));
        if (t == GEMMA_GGUF_ARRAY)
            printf(",\"elem_type\":\"%s\",\"count\":%" PRIu64, gemma_gguf_type_name(gemma_gguf_kv_elem_type(g, i)),
                   gemma_gguf_kv_count(g, i));
        printf(",\"value\":");
        json_kv_value(g, i);
        putchar('}');
    }
    putchar(']');
    if (o->tensors) {
        printf(",\"tensors\":[");
        for (size_t i = 0; i < gemma_gguf_n_tensors(g); i++) {
            gemma_tensor_info t = {.size = sizeof t};
            if (gemma_gguf_tensor(g, i, &t) != GEMMA_OK)
                continue;
            printf("%s{\"name\":", i ? "," : "");
            json_cstr(t.name);
            printf(",\"type\":\"%s\",\"shape\":[", t.type_name);
            for (int d = 0; d < t.n_dims; d++)
                printf("%s%" PRId64, d ? "," : "", t.ne[d]);
            printf("],\"offset\":%" PRIu64 ",\"bytes\":%" PRIu64 "}", t.offset, t.nbytes);
        }
        putchar(']');
    }
    printf("}\n");
}

static void print_error_json(const char *path, gemma_status st, const char *msg)
{
    printf("{\"file\":");
    json_cstr(path);
    printf(",\"valid\":false,\"status\":\"%s\",\"error\":", gemma_status_name(st));
    json_cstr(msg);
    printf("}\n");
}

/* ---- the command ---------------------------------------------------------------------- */

static int parse_opts(int argc, char **argv, opts *o)
{
    args a;
    args_init(&a, "inspect", argc, argv);
    *o = (opts){.load = true};
    const char *model = NULL;
    for (const char *arg; (arg = args_next(&a));) {
        if (args_is(&a, "-h", "--help")) {
            fputs(help, stdout);
            return 0;
        } else if (args_is(&a, "--json", NULL)) {
            o->json = true;
        } else if (args_is(&a, "--tensors", NULL)) {
            o->tensors = true;
        } else if (args_is(&a, "--kv", NULL)) {
            o->kv = true;
        } else if (args_is(&a, "--no-load", NULL)) {
            o->load = false;
        } else if (args_common_option(&a, &o->load_opts, ARGS_OPT_LOAD) > 0) {
            continue;
        } else if (args_is(&a, "-m", "--model")) {
            if (!(model = args_value(&a)))
                return ARGS_USAGE;
        } else if (arg[0] == '-' && arg[1] != '\0') {
            return args_unknown(&a);
        } else if (model) {
            return args_error("inspect", "only one model file at a time (got '%s' and '%s')", model, arg);
        } else {
            model = arg;
        }
    }
    o->path = args_model_path("inspect", model);
    return o->path ? -1 : ARGS_USAGE;
}

int cmd_inspect(int argc, char **argv)
{
    opts o;
    int rc = parse_opts(argc, argv, &o);
    if (rc >= 0)
        return rc;
    gemma_gguf *g = NULL;
    gemma_error err = {0};
    gemma_status st = gemma_gguf_open(o.path, &g, &err);
    if (st != GEMMA_OK) {
        const char *msg = err.message[0] ? err.message : gemma_strerror(st);
        if (o.json)
            print_error_json(o.path, st, msg);
        fprintf(stderr, "gemma inspect: invalid model file: %s\n", msg);
        return 1;
    }
    summary *s = malloc(sizeof *s);
    if (!s) {
        gemma_gguf_close(g);
        fprintf(stderr, "gemma inspect: out of memory\n");
        return 1;
    }
    summarise(g, s);
    if (o.load)
        try_load(&o, s);
    if (o.json) {
        print_json(g, &o, s);
    } else {
        print_text(g, &o, s);
        if (o.kv)
            print_kv_text(g);
        if (o.tensors)
            print_tensors_text(g);
    }
    bool bad_model = s->load_tried && s->load_status != GEMMA_OK && s->load_status != GEMMA_E_UNSUPPORTED;
    if (bad_model)
        fprintf(stderr, "gemma inspect: %s: the container is valid but the model does not load: %s\n", o.path,
                s->load_msg);
    free(s);
    gemma_gguf_close(g);
    return bad_model ? 1 : 0;
}
