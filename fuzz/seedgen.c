/* gemma-fuzz-seeds OUTDIR TESTDATA: writes the seed corpora of every fuzz target into
 * OUTDIR/<target>/. Seeds are small on purpose (libFuzzer mutates faster and deeper):
 * synthetic GGUFs covering every value type and tensor type, the reference models of
 * TESTDATA with every tensor shrunk to one block, tiny complete Gemma 3 and Gemma 4 models, and the
 * tokenizer / chat / sampler test strings and OpenAI request bodies. */
#include "gguf-writer.h"

#include <errno.h>
#include <math.h>
#include <sys/stat.h>

static const char *g_out;
static int g_count;

static void put_file(const char *target, const char *name, const void *data, size_t len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", g_out, target);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/%s/%s", g_out, target, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len) {
        fprintf(stderr, "gemma-fuzz-seeds: cannot write %s\n", path);
        exit(1);
    }
    fclose(f);
    g_count++;
}

static void put_model(const char *target, const char *name, gguf_writer *m)
{
    if (!gw_finish(m)) {
        fprintf(stderr, "gemma-fuzz-seeds: out of memory\n");
        exit(1);
    }
    put_file(target, name, m->buf, m->len);
}

static gguf_writer g_m;

/* ---- gguf --------------------------------------------------------------------------- */

static void gguf_synthetic(void)
{
    gw_init(&g_m, 3);
    put_model("gguf", "empty.gguf", &g_m);
    gw_patch_u32(g_m.buf, 4, 2); /* version */
    put_model("gguf", "empty-v2.gguf", &g_m);
    gw_free(&g_m);

    /* every scalar type, every array element type, empty array, strings with odd bytes */
    gw_init(&g_m, 3);
    gw_key(&g_m, "u8", GGUF_T_UINT8); gw_u8(&g_m, 200);
    gw_key(&g_m, "i8", GGUF_T_INT8); gw_u8(&g_m, 0x80);
    gw_key(&g_m, "u16", GGUF_T_UINT16); gw_raw(&g_m, "\xff\xff", 2);
    gw_key(&g_m, "i16", GGUF_T_INT16); gw_raw(&g_m, "\x00\x80", 2);
    gw_kv_u32(&g_m, "u32", 7);
    gw_kv_i32(&g_m, "i32", -7);
    gw_kv_f32(&g_m, "f32", 1.5f);
    gw_kv_bool(&g_m, "bool", true);
    gw_kv_str(&g_m, "str", "hello \xe2\x96\x81 world");
    gw_key(&g_m, "u64", GGUF_T_UINT64); gw_u64(&g_m, UINT64_MAX);
    gw_key(&g_m, "i64", GGUF_T_INT64); gw_u64(&g_m, (uint64_t)INT64_MIN);
    gw_key(&g_m, "f64", GGUF_T_FLOAT64); gw_u64(&g_m, 0x3ff0000000000000ull);
    gw_key(&g_m, "nul\0key", GGUF_T_UINT8); gw_u8(&g_m, 1);
    uint8_t raw[64];
    for (int i = 0; i < 64; i++)
        raw[i] = (uint8_t)(i * 37);
    static const uint8_t esz[GGUF_T_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    for (uint32_t t = 0; t < GGUF_T_COUNT; t++) {
        if (!esz[t])
            continue;
        char k[32];
        snprintf(k, sizeof k, "arr.%s", gguf_vtype_name(t));
        gw_kv_arr(&g_m, k, t, raw, 64 / esz[t] < 5 ? 64 / esz[t] : 5, esz[t]);
    }
    gw_kv_arr(&g_m, "arr.empty", GGUF_T_UINT32, raw, 0, 4);
    static const char *const strs[] = {"a", "", "<0x41>", "\xff\xfe", "\xe2\x96\x81hello"};
    gw_kv_arr_str(&g_m, "arr.str", strs, 5);
    uint32_t per_layer[3] = {4, 4, 8};
    gw_kv_arr(&g_m, "x.block_count_arr", GGUF_T_UINT32, per_layer, 3, 4);
    gw_kv_u32(&g_m, "general.alignment", 64);
    g_m.alignment = 64;
    gw_tensor_add(&g_m, "a", GM_TYPE_F32, 2, 8, 2, 1, 1);
    gw_tensor_add(&g_m, "b", GM_TYPE_Q8_0, 3, 32, 1, 2, 1);
    gw_tensor_add(&g_m, "c.weight", GM_TYPE_F16, 4, 2, 1, 1, 2);
    put_model("gguf", "all-types.gguf", &g_m);
    gw_free(&g_m);

    /* one tensor of each known type id (one block) */
    for (uint32_t id = 0; id < GM_TYPE_COUNT; id++) {
        const gm_type_traits *tr = gm_type_get(id);
        if (!tr || !tr->blck)
            continue;
        gw_init(&g_m, 3);
        gw_kv_str(&g_m, "general.architecture", "gemma3");
        gw_tensor_add(&g_m, "t", id, 2, tr->blck, 2, 1, 1);
        char name[64];
        snprintf(name, sizeof name, "type-%s.gguf", tr->name);
        put_model("gguf", name, &g_m);
        gw_free(&g_m);
    }
}

/* Every tensor shrunk to one block per row, one row: keeps all metadata and tensor names. */
static bool shrink_hook(void *user, gw_tensor_rec *t)
{
    (void)user;
    const gm_type_traits *tr = gm_type_get(t->type);
    t->ne[0] = tr ? tr->blck : 1;
    t->ne[1] = t->ne[2] = t->ne[3] = 1;
    t->data = NULL;
    return false;
}

static gguf_ctx *parse_file(const char *path, uint8_t **buf)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    *buf = malloc(n > 0 ? (size_t)n : 1);
    if (!*buf || fread(*buf, 1, (size_t)n, f) != (size_t)n) {
        fclose(f);
        free(*buf);
        *buf = NULL;
        return NULL;
    }
    fclose(f);
    gguf_ctx *c = NULL;
    gemma_error err;
    if (gguf_parse(*buf, (size_t)n, NULL, &c, &err)) {
        fprintf(stderr, "gemma-fuzz-seeds: %s: %s\n", path, err.message);
        free(*buf);
        *buf = NULL;
        return NULL;
    }
    return c;
}

static void gguf_from_testdata(const char *testdata)
{
    static const char *const names[] = {"g3-f32", "g3-q4_k_m", "g3-q2_k", "g3-q5_1", "g4-f16", "g4-keqv-f16",
                                        "g4-q4_k_m"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s.gguf", testdata, names[i]);
        uint8_t *buf;
        gguf_ctx *c = parse_file(path, &buf);
        if (!c)
            continue;
        gw_from_ctx(&g_m, c, NULL, shrink_hook, NULL);
        char name[64];
        snprintf(name, sizeof name, "shrunk-%s.gguf", names[i]);
        put_model("gguf", name, &g_m);
        put_model("model", name, &g_m); /* loads fail at the shape checks: a good start */
        gw_free(&g_m);
        gguf_free(c);
        free(buf);
    }
}

/* ---- model -------------------------------------------------------------------------- */

typedef struct tiny_seed {
    const char *name;
    gw_tiny_opts o;
} tiny_seed;

typedef uint8_t *(*tiny_fn)(const gguf_ctx *vocab_src, const gw_tiny_opts *o, size_t *len);

/* Complete tiny models built by fn with the vocabulary of testdata/vocab_file, or of
 * testdata/alt_file (the repository's own reference subset has only quantized models). */
static void tiny_models(const char *testdata, const char *vocab_file, const char *alt_file, tiny_fn fn,
                        const tiny_seed *v, size_t n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", testdata, vocab_file);
    uint8_t *buf;
    gguf_ctx *c = parse_file(path, &buf);
    if (!c) {
        snprintf(path, sizeof path, "%s/%s", testdata, alt_file);
        c = parse_file(path, &buf);
    }
    if (!c) {
        fprintf(stderr, "gemma-fuzz-seeds: no %s: no tiny models from it\n", path);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        size_t len;
        uint8_t *p = fn(c, &v[i].o, &len);
        if (!p)
            exit(1);
        put_file("model", v[i].name, p, len);
        put_file("gguf", v[i].name, p, len);
        free(p);
    }
    gguf_free(c);
    free(buf);
}

static void models(const char *testdata)
{
    static const tiny_seed g3[] = {
        {"tiny-f32.gguf", {GM_TYPE_F32, 2, 32, 64, 64}},
        {"tiny-f16.gguf", {GM_TYPE_F16, 2, 32, 64, 64}},
        {"tiny-q8_0.gguf", {GM_TYPE_Q8_0, 2, 32, 64, 64}},
        {"tiny-q4_0.gguf", {GM_TYPE_Q4_0, 1, 32, 32, 16}},
        {"tiny-bf16-3l.gguf", {GM_TYPE_BF16, 3, 32, 32, 32}},
    };
    static const tiny_seed g4[] = {
        {"tiny-g4-f32.gguf", {GM_TYPE_F32, 4, 32, 64, 64}},
        {"tiny-g4-q8_0.gguf", {GM_TYPE_Q8_0, 4, 32, 64, 64}},
        {"tiny-g4-f16-6l.gguf", {GM_TYPE_F16, 6, 32, 32, 32}},
    };
    tiny_models(testdata, "g3-f32.gguf", "g3-q4_k_m.gguf", gw_tiny_gemma3, g3, sizeof g3 / sizeof *g3);
    tiny_models(testdata, "g4-f16.gguf", "g4-q4_k_m.gguf", gw_tiny_gemma4, g4, sizeof g4 / sizeof *g4);
}

/* ---- tokenizer, chat, sampler ------------------------------------------------------- */

/* Test strings: scripts, whitespace runs, control-token text, invalid UTF-8. */
static const char *const k_texts[] = {
    "Hello world",
    " Hello world",
    "The capital of France is",
    "  leading and trailing spaces  ",
    "\n\n\tTabs\tand\nnewlines\r\n",
    "<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n",
    "<bos><eos><pad><unk><mask><start_of_image><end_of_image>",
    "<|turn>user\nHi<turn|>\n<|turn>model\n<|channel>thought\n<channel|>",
    "<0x41><0xFF><0x-1><0x>",
    "\xe2\x96\x81\xe2\x96\x81 spaces \xe2\x96\x81",
    "Привет, мир! Καλημέρα κόσμε. こんにちは世界 你好，世界 안녕하세요",
    "مرحبا بالعالم שלום עולם नमस्ते दुनिया",
    "emoji \xf0\x9f\x98\x80\xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd family \xf0\x9f\x91\xa8\xe2\x80\x8d\xf0\x9f\x91\xa9",
    "invalid \xff\xfe\xc0\xaf \xed\xa0\x80 \xf4\x90\x80\x80 \xe2\x82 truncated \xf0\x9f\x98",
    "1234567890 3.14159 -42 0x1F",
    "def f(x):\n    return x ** 2  # code\n",
    "a\0b\0c",
};

static void tokenizer_seeds(void)
{
    /* byte 0: mode and flags (see fuzz_tokenizer.c); the rest is text or int32 ids */
    char name[64];
    uint8_t buf[1024];
    for (size_t i = 0; i < sizeof k_texts / sizeof *k_texts; i++) {
        size_t n = i == sizeof k_texts / sizeof *k_texts - 1 ? 5 : strlen(k_texts[i]);
        for (uint8_t mode = 0; mode < 2; mode++) {
            buf[0] = (uint8_t)(mode | (i & 1 ? 0x10 : 0) | 0x20); /* encode, flags vary */
            memcpy(buf + 1, k_texts[i], n);
            snprintf(name, sizeof name, "enc-%u-%zu", mode, i);
            put_file("tokenizer", name, buf, n + 1);
        }
    }
    static const int32_t ids[][8] = {
        {2, 105, 2364, 107, 9259, 106, 1, 0},
        {-1, 0, 1, 2, 3, 262144, 2147483647, (int32_t)0x80000000},
        {236743, 236743, 3, 4, 255999, 256000, 107, 108},
        {4, 5, 6, 7, 260, 261, 262, 263}, /* byte tokens in the small vocab */
    };
    for (size_t i = 0; i < sizeof ids / sizeof *ids; i++) {
        for (uint8_t mode = 2; mode < 4; mode++) {
            buf[0] = (uint8_t)(mode | 0x10);
            memcpy(buf + 1, ids[i], sizeof ids[i]);
            snprintf(name, sizeof name, "dec-%u-%zu", mode, i);
            put_file("tokenizer", name, buf, 1 + sizeof ids[i]);
        }
    }
}

static void chat_seeds(void)
{
    /* byte 0: flags; then role\0content\0role\0content... */
    static const char *const convs[][7] = {
        {"user", "Hello", NULL},
        {"system", "Be brief.", "user", "Hi", "assistant", "Hello!", NULL},
        {"user", "a", "model", "b", "user", "  c  ", NULL},
        {"user", "x", "user", "y", NULL},
        {"tool", "r", "developer", "d", NULL},
        {"assistant", "<|channel>thought\nhmm<channel|>answer", "user", "<start_of_turn>", NULL},
        {"", "", NULL},
    };
    uint8_t buf[512];
    for (size_t i = 0; i < sizeof convs / sizeof *convs; i++) {
        for (uint8_t flags = 0; flags < 16; flags += 5) {
            size_t n = 0;
            buf[n++] = flags;
            for (int j = 0; convs[i][j]; j++) {
                size_t l = strlen(convs[i][j]);
                memcpy(buf + n, convs[i][j], l + 1);
                n += l + 1;
            }
            char name[32];
            snprintf(name, sizeof name, "chat-%zu-%u", i, flags);
            put_file("chat", name, buf, n);
        }
    }
}

static void sampler_seeds(void)
{
    /* fields in the order fuzz_sampler.c reads them, then logits */
    static const float f[][7] = {
        {1.0f, 64, 0.95f, 0.0f, 1.0f, 0.0f, 0.0f},
        {0.0f, 0, 1.0f, 0.0f, 1.0f, 0.0f, 0.0f},
        {0.7f, 40, 0.9f, 0.05f, 1.1f, 0.5f, 0.5f},
        {-1.0f, -5, 2.0f, -0.5f, 0.0f, -1.0f, 1e30f},
        {NAN, 1, NAN, NAN, INFINITY, -INFINITY, NAN},
    };
    for (size_t i = 0; i < sizeof f / sizeof *f; i++) {
        gguf_writer b = {0};
        gw_f32(&b, f[i][0]);
        gw_u32(&b, (uint32_t)(int32_t)f[i][1]);
        for (int j = 2; j < 7; j++)
            gw_f32(&b, f[i][j]);
        gw_u32(&b, i == 3 ? (uint32_t)-1 : 64); /* penalty_last_n */
        gw_u64(&b, 42 + i);
        gw_u32(&b, i == 4 ? 0 : 16); /* n_vocab */
        for (int j = 0; j < 16; j++)
            gw_f32(&b, i == 4 && j == 3 ? NAN : (float)((j * 7) % 5) - 1.0f);
        for (int j = 0; j < 8; j++)
            gw_u32(&b, (uint32_t)(j * 3 - 2)); /* accepted tokens, some out of range */
        char name[32];
        snprintf(name, sizeof name, "sampler-%zu", i);
        put_file("sampler", name, b.buf, b.len);
        free(b.buf);
    }
}

/* fuzz_weights: [base] [isa] [flags] then 8-byte edits [kind] [tensor] [pos u32] [val u16]
 * (see fuzz_weights.c): every base and kernel set unedited, then NaN / Inf / max in a norm,
 * an embedding row and a block scale, and whole tensors filled. */
static void weights_seeds(void)
{
    static const uint8_t edits[][8] = {
        {1, 1, 3, 0, 0, 0, 0, 0x00},   /* NaN into tensor 1 (a norm in the tiny models) */
        {1, 0, 9, 0, 0, 0, 0, 0x01},   /* +Inf into the embedding (or its block scale) */
        {2, 5, 0, 0, 0, 0, 0, 0x03},   /* a whole tensor at +-max */
        {1, 7, 1, 0, 0, 0, 1, 0x02},   /* -Inf into a block scale */
        {3, 1, 0, 0, 0x80, 0x7f, 0xff, 0x7f}, /* raw f32 bits */
        {0, 4, 2, 0, 0, 0, 0x00, 0x7c}, /* raw f16 Inf */
    };
    for (int b = 0; b < 24; b++)
        for (int e = -1; e < (int)(sizeof edits / sizeof *edits); e++) {
            uint8_t in[3 + 8] = {(uint8_t)b, (uint8_t)(b + e + 1), (uint8_t)(e < 0 ? 0 : e & 1 ? 9 : 4)};
            size_t n = 3;
            if (e >= 0) {
                memcpy(in + 3, edits[e], 8);
                n += 8;
            }
            char name[32];
            snprintf(name, sizeof name, "weights-%d-%d", b, e + 1);
            put_file("weights", name, in, n);
        }
}

static void openai_seeds(void)
{
    /* byte 0: 0 chat, 1 completion; then the request body */
    static const char *const bodies[] = {
        "\0{\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],\"max_tokens\":8,\"temperature\":0}",
        ("\0{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},{\"role\":\"user\","
         "\"content\":[{\"type\":\"text\",\"text\":\"a\"},{\"type\":\"text\",\"text\":\"b\"}]},{\"role\":"
         "\"assistant\",\"content\":null}],\"stream\":true,\"stream_options\":{\"include_usage\":true},"
         "\"stop\":[\"x\",\"\"],\"seed\":7,\"top_k\":40,\"top_p\":0.9,\"min_p\":0.05}"),
        ("\0{\"messages\":[{\"role\":\"developer\",\"content\":\"\\u00e9\\ud83d\\ude00\"}],\"n\":1,"
         "\"presence_penalty\":1.5,\"frequency_penalty\":-1,\"repeat_penalty\":1.1,\"logprobs\":false}"),
        "\1{\"prompt\":\"The capital of France is\",\"max_tokens\":16,\"stop\":\",\"}",
        "\1{\"prompt\":[\"one\"],\"max_completion_tokens\":1e9,\"temperature\":2}",
        "\1{\"prompt\":5}",
        "\0[1,2,3]",
    };
    for (size_t i = 0; i < sizeof bodies / sizeof *bodies; i++) {
        char name[32];
        snprintf(name, sizeof name, "openai-%zu", i);
        put_file("openai", name, bodies[i], 1 + strlen(bodies[i] + 1));
    }
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: gemma-fuzz-seeds OUTDIR TESTDATA\n");
        return 2;
    }
    g_out = argv[1];
    if (mkdir(g_out, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "gemma-fuzz-seeds: cannot create %s\n", g_out);
        return 1;
    }
    gguf_synthetic();
    gguf_from_testdata(argv[2]);
    models(argv[2]);
    tokenizer_seeds();
    chat_seeds();
    sampler_seeds();
    weights_seeds();
    openai_seeds();
    fprintf(stderr, "gemma-fuzz-seeds: %d seeds in %s\n", g_count, g_out);
    return 0;
}
