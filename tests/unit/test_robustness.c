/* Hostile input never crashes: one test per row of docs/robustness.md. Every bad input must
 * give the documented status code and a message naming what is wrong; request-level limits
 * (over-long prompt, full context, invalid UTF-8, bad sampler parameters, bad token ids,
 * cancellation from another thread, out of memory) must leave the objects usable.
 * Models are built in memory (tests/gguf-writer.h) from the tokenizer of
 * ../shared/testdata/g3-f32.gguf and handed to gemma_model_load through a memfd. */
#include "model-edit.h"

#include <malloc.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>

/* The OOM test needs malloc to fail rather than ASan to abort. */
__attribute__((used, visibility("default"))) const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "allocator_may_return_null=1"; }

static uint8_t *g_base;     /* a valid tiny Gemma 3 model (F32) */
static size_t g_base_len;
static gguf_ctx *g_base_ctx; /* its index, for rewriting */

/* ---- helpers -------------------------------------------------------------------------- */

/* Parses buf and expects code with needle in the message. */
static void expect_parse(const char *what, const uint8_t *buf, size_t len, gemma_status code, const char *needle)
{
    gguf_ctx *c = NULL;
    gemma_error err;
    memset(&err, 0, sizeof err);
    gemma_status st = gguf_parse(buf, len, NULL, &c, &err);
    CHECKF(st == code, "%s: got %s (%s), want %s", what, gemma_status_name(st), err.message, gemma_status_name(code));
    if (st != GEMMA_OK) {
        CHECKF(c == NULL, "%s: out set on failure", what);
        CHECKF(err.code == st && err.message[0], "%s: no message", what);
        CHECKF(!needle || msg_has(&err, needle), "%s: message \"%s\" lacks \"%s\"", what, err.message, needle);
    }
    gguf_free(c);
}

static gguf_writer g_m; /* for the tests that build files record by record */

/* Loads the base model with one defect and expects code (with needle in the message). */
static void expect_load(const char *what, edit e, gemma_status code, const char *needle)
{
    edit_expect(g_base_ctx, what, e, code, needle);
}

/* ---- file level ------------------------------------------------------------------------ */

static size_t hdr(uint8_t *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv)
{
    memcpy(b, "GGUF", 4);
    memcpy(b + 4, &version, 4);
    memcpy(b + 8, &n_tensors, 8);
    memcpy(b + 16, &n_kv, 8);
    return 24;
}

static void test_file_header(void)
{
    uint8_t b[256];
    memset(b, 0, sizeof b);
    expect_parse("empty file", b, 0, GEMMA_E_FORMAT, "too small");
    hdr(b, 3, 0, 0);
    memcpy(b, "GGML", 4);
    expect_parse("bad magic", b, 24, GEMMA_E_FORMAT, "bad magic");
    hdr(b, 0, 0, 0);
    expect_parse("version 0", b, 24, GEMMA_E_FORMAT, "version");
    hdr(b, 1, 0, 0);
    expect_parse("version 1", b, 24, GEMMA_E_FORMAT, "version 1");
    hdr(b, 4, 0, 0);
    expect_parse("version 4", b, 24, GEMMA_E_FORMAT, "version");
    hdr(b, 0x03000000u, 0, 0);
    expect_parse("big-endian", b, 24, GEMMA_E_FORMAT, "big-endian");
    hdr(b, 3, 0, UINT64_MAX);
    expect_parse("huge n_kv", b, 24, GEMMA_E_FORMAT, "metadata count");
    hdr(b, 3, (uint64_t)1 << 40, 0);
    expect_parse("huge n_tensors", b, 24, GEMMA_E_FORMAT, "tensor count");
    hdr(b, 3, 0, 0);
    expect_parse("empty but valid", b, 24, GEMMA_OK, NULL);
    hdr(b, 2, 0, 0);
    expect_parse("version 2", b, 24, GEMMA_OK, NULL);
}

/* Every prefix of a valid model is rejected as truncated, never read past. */
static void test_file_truncation(void)
{
    REQUIRE(g_base != NULL);
    size_t data = (size_t)g_base_ctx->data_offset;
    int n = 0;
    for (size_t len = 0; len < g_base_len; len += len < 600 ? 1 : len < data + 64 ? 37 : 4099) {
        /* a fresh allocation of exactly len bytes so ASan/valgrind catch any overread */
        uint8_t *p = malloc(len ? len : 1);
        REQUIRE(p != NULL);
        memcpy(p, g_base, len);
        gguf_ctx *c = NULL;
        gemma_error err;
        gemma_status st = gguf_parse(p, len, NULL, &c, &err);
        CHECKF(st == GEMMA_E_FORMAT, "prefix of %zu bytes: %s", len, gemma_status_name(st));
        gguf_free(c);
        free(p);
        n++;
    }
    /* and through the loader, mapped and read */
    gemma_model *m = NULL;
    gemma_error err;
    CHECK(load_bytes(g_base, g_base_len - 1, true, &m, &err) == GEMMA_E_FORMAT && msg_has(&err, "past end of file"));
    CHECK(load_bytes(g_base, data - 3, false, &m, &err) == GEMMA_E_FORMAT);
    CHECK(m == NULL);
    fprintf(stderr, "  %d truncated prefixes rejected\n", n);
}

static void test_file_metadata(void)
{
    gguf_writer *m = &g_m;
    size_t len;
    uint8_t *p;
#define BUILD_EXPECT(what, code, needle)                                                                     \
    do {                                                                                                     \
        p = gw_take(m, &len);                                                                                \
        REQUIRE(p != NULL);                                                                                  \
        expect_parse(what, p, len, code, needle);                                                            \
        free(p);                                                                                             \
    } while (0)

    gw_init(m, 3);
    gw_key(m, "k", GGUF_T_STRING);
    gw_u64(m, (uint64_t)1 << 62);
    BUILD_EXPECT("huge string length", GEMMA_E_FORMAT, "string length");

    gw_init(m, 3);
    gw_key(m, "k", GGUF_T_STRING);
    gw_u64(m, 100);
    gw_raw(m, "abc", 3);
    BUILD_EXPECT("string past end", GEMMA_E_FORMAT, "past end of file");

    gw_init(m, 3);
    gw_key(m, "k", 13);
    gw_u32(m, 0);
    BUILD_EXPECT("invalid value type", GEMMA_E_FORMAT, "invalid value type");

    gw_init(m, 3);
    gw_key(m, "k", GGUF_T_ARRAY);
    gw_u32(m, GGUF_T_ARRAY);
    gw_u64(m, 1);
    BUILD_EXPECT("nested array", GEMMA_E_FORMAT, "nested array");

    gw_init(m, 3);
    gw_key(m, "k", GGUF_T_ARRAY);
    gw_u32(m, GGUF_T_UINT64);
    gw_u64(m, (uint64_t)1 << 60);
    BUILD_EXPECT("huge array count", GEMMA_E_FORMAT, "array");

    gw_init(m, 3);
    gw_key(m, "k", GGUF_T_ARRAY);
    gw_u32(m, GGUF_T_STRING);
    gw_u64(m, 1000);
    gw_u64(m, 0);
    BUILD_EXPECT("string array past end", GEMMA_E_FORMAT, "strings cannot fit");

    gw_init(m, 3);
    gw_kv_u32(m, "dup", 1);
    gw_kv_u32(m, "dup", 2);
    BUILD_EXPECT("duplicate key", GEMMA_E_FORMAT, "duplicate key");

    gw_init(m, 3);
    gw_kv_u32(m, "", 1);
    BUILD_EXPECT("empty key", GEMMA_E_FORMAT, "empty key");

    gw_init(m, 3);
    gw_kv_str(m, "general.alignment", "32");
    BUILD_EXPECT("alignment of wrong type", GEMMA_E_FORMAT, "expected UINT32");

    gw_init(m, 3);
    gw_kv_u32(m, "general.alignment", 48);
    BUILD_EXPECT("alignment not a power of two", GEMMA_E_FORMAT, "power of two");

    gw_init(m, 3);
    gw_kv_u32(m, "general.alignment", 0);
    BUILD_EXPECT("alignment zero", GEMMA_E_FORMAT, "power of two");

    gw_init(m, 3);
    gw_kv_u32(m, "general.alignment", 1u << 30);
    BUILD_EXPECT("alignment too large", GEMMA_E_FORMAT, "limit");
#undef BUILD_EXPECT
}

static void test_file_tensors(void)
{
    gguf_writer *m = &g_m;
    size_t len;
    uint8_t *p;
#define T_EXPECT(what, code, needle, ...)                                                                    \
    do {                                                                                                     \
        gw_init(m, 3);                                                                                       \
        gw_tensor_add(m, __VA_ARGS__);                                                                       \
        p = gw_take(m, &len);                                                                                \
        REQUIRE(p != NULL);                                                                                  \
        expect_parse(what, p, len, code, needle);                                                            \
        free(p);                                                                                             \
    } while (0)
    T_EXPECT("valid tensor", GEMMA_OK, NULL, "t", GM_TYPE_F32, 2, 4, 4, 1, 1);
    T_EXPECT("n_dims 5", GEMMA_E_FORMAT, "n_dims", "t", GM_TYPE_F32, 5, 4, 4, 1, 1);
    T_EXPECT("n_dims 0", GEMMA_E_FORMAT, "n_dims", "t", GM_TYPE_F32, 0, 4, 4, 1, 1);
    T_EXPECT("zero dimension", GEMMA_E_FORMAT, "out of range", "t", GM_TYPE_F32, 2, 4, 0, 1, 1);
    T_EXPECT("negative dimension", GEMMA_E_FORMAT, "out of range", "t", GM_TYPE_F32, 2, -4, 1, 1, 1);
    T_EXPECT("unknown type id", GEMMA_E_FORMAT, "type id", "t", 99, 1, 32, 1, 1, 1);
    T_EXPECT("removed type id", GEMMA_E_FORMAT, "type id", "t", 4, 1, 32, 1, 1, 1);
    T_EXPECT("row not a multiple of the block", GEMMA_E_FORMAT, "not a multiple", "t", GM_TYPE_Q8_0, 1, 33, 1, 1,
             1);
    T_EXPECT("shape overflow", GEMMA_E_FORMAT, "overflows", "t", GM_TYPE_F32, 4, (int64_t)1 << 40,
             (int64_t)1 << 40, 1, 1);
    T_EXPECT("empty name", GEMMA_E_FORMAT, "empty tensor name", "", GM_TYPE_F32, 1, 4, 1, 1, 1);
    T_EXPECT("name too long", GEMMA_E_FORMAT, "limit", "a_tensor_name_that_is_much_longer_than_the_sixty_three_bytes_ggml_allows",
             GM_TYPE_F32, 1, 4, 1, 1, 1);
#undef T_EXPECT

    /* data past the end of the file: shrink the file under a valid table */
    gw_init(m, 3);
    gw_tensor_add(m, "t", GM_TYPE_F32, 1, 64, 1, 1, 1);
    p = gw_take(m, &len);
    REQUIRE(p != NULL);
    expect_parse("tensor data past end", p, len - 4, GEMMA_E_FORMAT, "past end of file");
    free(p);

    /* duplicate names, misaligned and overlapping offsets: patch the serialized table */
    gw_init(m, 3);
    gw_tensor_add(m, "a", GM_TYPE_F32, 1, 8, 1, 1, 1);
    gw_tensor_add(m, "b", GM_TYPE_F32, 1, 8, 1, 1, 1);
    p = gw_take(m, &len);
    REQUIRE(p != NULL);
    /* records: name(8+1) n_dims(4) ne(8) type(4) offset(8) = 33 bytes each, after the header */
    size_t rec_b = 24 + 33;
    uint64_t off;
    p[rec_b + 8] = 'a';
    expect_parse("duplicate tensor name", p, len, GEMMA_E_FORMAT, "duplicate tensor name");
    p[rec_b + 8] = 'b';
    memcpy(&off, p + rec_b + 25, 8);
    CHECK(off == 32);
    off = 4;
    memcpy(p + rec_b + 25, &off, 8);
    expect_parse("misaligned offset", p, len, GEMMA_E_FORMAT, "not a multiple of the alignment");
    off = 0;
    memcpy(p + rec_b + 25, &off, 8);
    expect_parse("overlapping tensors", p, len, GEMMA_E_FORMAT, "overlaps");
    free(p);
}

static void test_file_io(void)
{
    gemma_model *m = NULL;
    gemma_error err;
    CHECK(gemma_model_load("/nonexistent/model.gguf", NULL, &m, &err) == GEMMA_E_IO && msg_has(&err, "cannot open"));
    CHECK(gemma_model_load("/tmp", NULL, &m, &err) == GEMMA_E_IO && msg_has(&err, "not a regular file"));
    CHECK(gemma_model_load(NULL, NULL, &m, &err) == GEMMA_E_INVALID_ARG);
    CHECK(m == NULL);
    gemma_gguf *g = NULL;
    CHECK(gemma_gguf_open("/nonexistent/model.gguf", &g, &err) == GEMMA_E_IO && g == NULL);
    gemma_model_free(NULL);
    gemma_gguf_close(NULL);
    gemma_session_free(NULL);
    gemma_sampler_free(NULL);
    gemma_detok_free(NULL);
}

/* ---- model level ---------------------------------------------------------------------- */

static void test_model_valid(void)
{
    edit e = {0};
    expect_load("unmodified tiny model", e, GEMMA_OK, NULL);
}

static void test_model_arch(void)
{
    expect_load("missing architecture", (edit){.drop_key = "general.architecture"}, GEMMA_E_MODEL,
                "general.architecture");
    expect_load("unknown architecture", (edit){.str_key = "general.architecture", .str = "llama"},
                GEMMA_E_UNSUPPORTED, "llama");
}

static void test_model_tensors(void)
{
    expect_load("missing tensor", (edit){.drop_tensor = "blk.1.attn_k.weight"}, GEMMA_E_MODEL, "blk.1.attn_k.weight");
    expect_load("missing token_embd", (edit){.drop_tensor = "token_embd.weight"}, GEMMA_E_MODEL, "token_embd.weight");
    expect_load("wrong shape", (edit){.shape_tensor = "blk.0.ffn_up.weight", .ne0 = 32, .ne1 = 32}, GEMMA_E_MODEL,
                "blk.0.ffn_up.weight");
    expect_load("wrong norm shape", (edit){.shape_tensor = "blk.0.attn_q_norm.weight", .ne0 = 8, .ne1 = 1},
                GEMMA_E_MODEL, "blk.0.attn_q_norm.weight");
    expect_load("norm of wrong type", (edit){.type_tensor = "output_norm.weight", .type = GM_TYPE_F16},
                GEMMA_E_MODEL, "output_norm.weight");
    expect_load("unexpected tensor", (edit){.extra_tensor = true}, GEMMA_E_MODEL, "blk.0.mystery.weight");
    expect_load("vocab rows mismatch", (edit){.shape_tensor = "token_embd.weight", .ne0 = 32, .ne1 = 500},
                GEMMA_E_MODEL, "token_embd.weight");
}

static void test_model_hparams(void)
{
    expect_load("block_count 0", (edit){.u32_key = "gemma3.block_count", .u32 = 0}, GEMMA_E_MODEL, "block_count");
    expect_load("block_count huge", (edit){.u32_key = "gemma3.block_count", .u32 = 100000}, GEMMA_E_MODEL,
                "block_count");
    expect_load("block_count more than tensors", (edit){.u32_key = "gemma3.block_count", .u32 = 3}, GEMMA_E_MODEL,
                "blk.2");
    expect_load("block_count of wrong type", (edit){.str_key = "gemma3.block_count", .str = "2"}, GEMMA_E_MODEL,
                "block_count");
    expect_load("missing embedding_length", (edit){.drop_key = "gemma3.embedding_length"}, GEMMA_E_MODEL,
                "embedding_length");
    expect_load("embedding_length mismatch", (edit){.u32_key = "gemma3.embedding_length", .u32 = 64},
                GEMMA_E_MODEL, NULL);
    expect_load("head_count 0", (edit){.u32_key = "gemma3.attention.head_count", .u32 = 0}, GEMMA_E_MODEL,
                "head_count");
    expect_load("head_count_kv does not divide", (edit){.u32_key = "gemma3.attention.head_count_kv", .u32 = 3},
                GEMMA_E_MODEL, "head_count");
    expect_load("key_length odd", (edit){.u32_key = "gemma3.attention.key_length", .u32 = 15}, GEMMA_E_MODEL,
                "key_length");
    expect_load("context_length 0", (edit){.u32_key = "gemma3.context_length", .u32 = 0}, GEMMA_E_MODEL,
                "context_length");
    expect_load("missing rms epsilon", (edit){.drop_key = "gemma3.attention.layer_norm_rms_epsilon"},
                GEMMA_E_MODEL, "layer_norm_rms_epsilon");
    expect_load("NaN rms epsilon", (edit){.f32_key = "gemma3.attention.layer_norm_rms_epsilon", .f32 = NAN},
                GEMMA_E_MODEL, "layer_norm_rms_epsilon");
    expect_load("feed_forward_length mismatch", (edit){.u32_key = "gemma3.feed_forward_length", .u32 = 128},
                GEMMA_E_MODEL, NULL);
}

/* The general.sampling.* defaults: a valid value becomes the sampler's default, one the
 * sampler would refuse (or of the wrong type) is ignored and the load still succeeds. */
static void expect_sampling(const char *what, edit e, int32_t top_k, int32_t last_n, float temp)
{
    gemma_model *m = NULL;
    gemma_error err = {0};
    CHECKF(edit_load(g_base_ctx, e, &m, &err) == GEMMA_OK, "%s: %s", what, err.message);
    gemma_sampler_params p;
    CHECK(gemma_sampler_params_init(&p, sizeof p, m) == GEMMA_OK);
    CHECKF(p.top_k == top_k && p.penalty_last_n == last_n && p.temperature == temp, "%s: top_k %d last_n %d temp %g",
           what, (int)p.top_k, (int)p.penalty_last_n, (double)p.temperature);
    gemma_model_free(m);
}

static void test_model_sampling(void)
{
    expect_sampling("top_k 7", (edit){.u32_key = "general.sampling.top_k", .u32 = 7}, 7, 64, 1.0f);
    expect_sampling("penalty_last_n over the limit",
                    (edit){.u32_key = "general.sampling.penalty_last_n", .u32 = (1u << 20) + 1}, 64, 64, 1.0f);
    expect_sampling("penalty_last_n 32", (edit){.u32_key = "general.sampling.penalty_last_n", .u32 = 32}, 64, 32,
                    1.0f);
    expect_sampling("temp as a string", (edit){.str_key = "general.sampling.temp", .str = "hot"}, 64, 64, 1.0f);
}

/* gemma_version agrees with the header's macros; size labels come from the ops table. */
static void test_api_facts(void)
{
    char v[32];
    snprintf(v, sizeof v, "%d.%d.%d", GEMMA_VERSION_MAJOR, GEMMA_VERSION_MINOR, GEMMA_VERSION_PATCH);
    CHECKF(!strcmp(gemma_version(), v), "gemma_version() %s, macros %s", gemma_version(), v);
    const char *l;
    CHECK((l = gemma_arch_size_label("gemma3", 18)) && !strcmp(l, "270M"));
    CHECK((l = gemma_arch_size_label("gemma3", 62)) && !strcmp(l, "27B"));
    CHECK((l = gemma_arch_size_label("gemma4", 35)) && !strcmp(l, "E2B"));
    CHECK(!gemma_arch_size_label("gemma3", 19));
    CHECK(!gemma_arch_size_label("gemma4", 18));
    CHECK(!gemma_arch_size_label("llama", 18));
    CHECK(!gemma_arch_size_label(NULL, 18));
}

static void test_model_vocab(void)
{
    expect_load("special id out of range", (edit){.u32_key = "tokenizer.ggml.bos_token_id", .u32 = 100000},
                GEMMA_E_MODEL, "bos_token_id");
    expect_load("eos id out of range", (edit){.u32_key = "tokenizer.ggml.eos_token_id", .u32 = 512}, GEMMA_E_MODEL,
                "eos_token_id");
    expect_load("missing tokenizer", (edit){.drop_key = "tokenizer.ggml.model"}, GEMMA_E_MODEL, "tokenizer.ggml.model");
    expect_load("unknown tokenizer", (edit){.str_key = "tokenizer.ggml.model", .str = "gpt2"}, GEMMA_E_UNSUPPORTED,
                "gpt2");
    expect_load("missing token list", (edit){.drop_key = "tokenizer.ggml.tokens"}, GEMMA_E_MODEL,
                "tokenizer.ggml.tokens");
    expect_load("scores of wrong type", (edit){.str_key = "tokenizer.ggml.scores", .str = "x"}, GEMMA_E_MODEL,
                "tokenizer.ggml.scores");
    expect_load("token_type of wrong type", (edit){.u32_key = "tokenizer.ggml.token_type", .u32 = 1},
                GEMMA_E_MODEL, "tokenizer.ggml.token_type");
    expect_load("gemma4 tokenizer without merges", (edit){.str_key = "tokenizer.ggml.model", .str = "gemma4"},
                GEMMA_E_MODEL, "merges");
}

/* ---- request level -------------------------------------------------------------------- */

static gemma_model *g_model; /* the base model, loaded once */

static gemma_session *new_session(int32_t n_ctx, gemma_overflow ov)
{
    gemma_session_params p;
    gemma_session_params_init(&p, sizeof p);
    p.n_ctx = n_ctx;
    p.n_threads = 2;
    p.n_batch = 4;
    p.overflow = ov;
    gemma_session *s = NULL;
    gemma_error err;
    gemma_status st = gemma_session_create(g_model, &p, &s, &err);
    CHECKF(st == GEMMA_OK, "session: %s", err.message);
    return s;
}

static void test_req_session_params(void)
{
    REQUIRE(g_model != NULL);
    static const struct {
        int32_t n_ctx, n_threads, n_batch, overflow;
        const char *isa;
        gemma_status want;
        const char *needle;
    } cases[] = {
        {-1, 1, 0, 0, NULL, GEMMA_E_INVALID_ARG, "n_ctx"},
        {100000, 1, 0, 0, NULL, GEMMA_E_INVALID_ARG, "n_ctx"},
        {16, -2, 0, 0, NULL, GEMMA_E_INVALID_ARG, "n_threads"},
        {16, 1, -1, 0, NULL, GEMMA_E_INVALID_ARG, "n_batch"},
        {16, 1, 0, 7, NULL, GEMMA_E_INVALID_ARG, "overflow"},
        {16, 1, 0, 0, "bogus", GEMMA_E_INVALID_ARG, "bogus"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        gemma_session_params p;
        gemma_session_params_init(&p, sizeof p);
        p.n_ctx = cases[i].n_ctx;
        p.n_threads = cases[i].n_threads;
        p.n_batch = cases[i].n_batch;
        p.overflow = (gemma_overflow)cases[i].overflow;
        p.isa = cases[i].isa;
        gemma_session *s = NULL;
        gemma_error err;
        gemma_status st = gemma_session_create(g_model, &p, &s, &err);
        CHECKF(st == cases[i].want && s == NULL && msg_has(&err, cases[i].needle), "case %zu: %s (%s)", i,
               gemma_status_name(st), err.message);
        gemma_session_free(s);
    }
}

static void test_req_long_prompt(void)
{
    REQUIRE(g_model != NULL);
    gemma_token toks[40];
    for (int i = 0; i < 40; i++)
        toks[i] = 10 + i;
    toks[0] = gemma_token_bos(g_model);
    gemma_session *s = new_session(16, GEMMA_OVERFLOW_ERROR);
    REQUIRE(s != NULL);
    CHECK(gemma_session_eval(s, toks, 40, NULL) == GEMMA_E_CONTEXT_FULL);
    CHECK(strstr(gemma_session_last_error(s), "do not fit") != NULL);
    CHECK(gemma_session_n_past(s) == 0);
    /* the session is still usable */
    CHECK(gemma_session_eval(s, toks, 10, NULL) == GEMMA_OK && gemma_session_n_past(s) == 10);
    CHECK(gemma_session_eval(s, toks, 7, NULL) == GEMMA_E_CONTEXT_FULL && gemma_session_n_past(s) == 10);
    CHECK(gemma_session_eval(s, toks, 6, NULL) == GEMMA_OK && gemma_session_n_past(s) == 16);
    gemma_session_free(s);

    s = new_session(16, GEMMA_OVERFLOW_KEEP_RECENT);
    REQUIRE(s != NULL);
    CHECK(gemma_session_eval(s, toks, 40, NULL) == GEMMA_OK);
    CHECK(gemma_session_n_past(s) == 16);
    CHECK(gemma_session_logits(s) != NULL);
    CHECK(gemma_session_eval(s, toks + 1, 5, NULL) == GEMMA_OK && gemma_session_n_past(s) == 16);
    gemma_session_free(s);
}

static void test_req_context_full(void)
{
    REQUIRE(g_model != NULL);
    gemma_session *s = new_session(12, GEMMA_OVERFLOW_ERROR);
    REQUIRE(s != NULL);
    gemma_token toks[4] = {gemma_token_bos(g_model), 300, 301, 302};
    REQUIRE(gemma_session_eval(s, toks, 4, NULL) == GEMMA_OK);
    gemma_sampler_params sp;
    gemma_sampler_params_init(&sp, sizeof sp, g_model);
    sp.temperature = 0.0f;
    gemma_generate_params gp;
    gemma_generate_params_init(&gp, sizeof gp);
    gp.max_tokens = 0; /* until EOG or the context is full */
    gp.sampling = &sp;
    gemma_generate_result r = {.size = sizeof r};
    gemma_status st = gemma_session_generate(s, &gp, &r);
    CHECKF(st == GEMMA_OK, "%s", gemma_session_last_error(s));
    CHECKF(r.stop_reason == GEMMA_STOP_CONTEXT_FULL || r.stop_reason == GEMMA_STOP_EOG, "reason %d",
           (int)r.stop_reason);
    if (r.stop_reason == GEMMA_STOP_CONTEXT_FULL)
        CHECK(gemma_session_n_past(s) <= 12 && r.n_tokens >= 1);
    /* generating again on a full context stops at once with the same readable reason */
    if (r.stop_reason == GEMMA_STOP_CONTEXT_FULL) {
        st = gemma_session_generate(s, &gp, &r);
        CHECK(st == GEMMA_OK && r.stop_reason == GEMMA_STOP_CONTEXT_FULL);
    }
    gemma_session_free(s);
}

static void test_req_invalid_utf8(void)
{
    REQUIRE(g_model != NULL);
    static const char bad[] = "ok \xff\xfe \xc0\xaf \xed\xa0\x80 \xf4\x90\x80\x80 \xe2\x82 end \xf0\x9f";
    gemma_token toks[128];
    size_t n = 0;
    CHECK(gemma_tokenize(g_model, bad, sizeof bad - 1, true, false, toks, 128, &n) == GEMMA_OK);
    CHECK(n > 0);
    for (size_t i = 0; i < n; i++)
        CHECK(toks[i] >= 0 && toks[i] < gemma_vocab_size(g_model));
    /* the bytes come back: byte tokens carry them */
    gemma_detok *d = NULL;
    REQUIRE(gemma_detok_create(g_model, false, &d) == GEMMA_OK);
    const char *text;
    size_t len;
    for (size_t i = 0; i < n; i++)
        CHECK(gemma_detok_push(d, toks[i], &text, &len) == GEMMA_OK);
    CHECK(gemma_detok_flush(d, &text, &len) == GEMMA_OK);
    gemma_detok_free(d);
    size_t need = 0;
    CHECK(gemma_tokenize(g_model, bad, sizeof bad - 1, true, false, toks, 2, &need) == GEMMA_E_BUFFER_TOO_SMALL);
    CHECK(need == n);
    gemma_session *s = new_session(64, GEMMA_OVERFLOW_ERROR);
    REQUIRE(s != NULL);
    CHECKF(gemma_session_feed_text(s, bad, sizeof bad - 1) == GEMMA_OK, "%s", gemma_session_last_error(s));
    gemma_session_free(s);
}

static void test_req_sampler_params(void)
{
    static const struct {
        int field;
        float v;
        const char *needle;
    } cases[] = {
        {0, NAN, "temperature"},    {0, -1.0f, "temperature"},  {0, INFINITY, "temperature"},
        {1, NAN, "top_p"},          {1, -0.1f, "top_p"},        {2, NAN, "min_p"},
        {2, 1.5f, "min_p"},         {3, 0.0f, "repeat_penalty"}, {3, NAN, "repeat_penalty"},
        {4, NAN, "presence_penalty"}, {5, INFINITY, "frequency_penalty"}, {6, -1, "penalty_last_n"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        gemma_sampler_params p;
        gemma_sampler_params_init(&p, sizeof p, NULL);
        switch (cases[i].field) {
        case 0: p.temperature = cases[i].v; break;
        case 1: p.top_p = cases[i].v; break;
        case 2: p.min_p = cases[i].v; break;
        case 3: p.repeat_penalty = cases[i].v; break;
        case 4: p.presence_penalty = cases[i].v; break;
        case 5: p.frequency_penalty = cases[i].v; break;
        default: p.penalty_last_n = (int32_t)cases[i].v; break;
        }
        gemma_sampler *s = NULL;
        gemma_error err;
        gemma_status st = gemma_sampler_create(&p, 100, &s, &err);
        CHECKF(st == GEMMA_E_INVALID_ARG && s == NULL && msg_has(&err, cases[i].needle), "case %zu: %s (%s)", i,
               gemma_status_name(st), err.message);
    }
    gemma_sampler_params p;
    gemma_sampler_params_init(&p, sizeof p, NULL);
    gemma_sampler *s = NULL;
    gemma_error err;
    CHECK(gemma_sampler_create(&p, 0, &s, &err) == GEMMA_E_INVALID_ARG && msg_has(&err, "n_vocab"));
    CHECK(gemma_sampler_create(NULL, 10, &s, &err) == GEMMA_E_INVALID_ARG);
    /* through generate: the session reports it */
    if (g_model) {
        gemma_session *ss = new_session(16, GEMMA_OVERFLOW_ERROR);
        REQUIRE(ss != NULL);
        gemma_token bos = gemma_token_bos(g_model);
        REQUIRE(gemma_session_eval(ss, &bos, 1, NULL) == GEMMA_OK);
        gemma_sampler_params sp;
        gemma_sampler_params_init(&sp, sizeof sp, g_model);
        sp.top_p = NAN;
        gemma_generate_params gp;
        gemma_generate_params_init(&gp, sizeof gp);
        gp.sampling = &sp;
        gemma_generate_result r = {.size = sizeof r};
        CHECK(gemma_session_generate(ss, &gp, &r) == GEMMA_E_INVALID_ARG);
        CHECK(strstr(gemma_session_last_error(ss), "top_p") != NULL);
        gemma_session_free(ss);
    }
}

static void test_req_token_ids(void)
{
    REQUIRE(g_model != NULL);
    const int32_t nv = gemma_vocab_size(g_model);
    static const gemma_token bad_ids[] = {-1, INT32_MIN, INT32_MAX};
    gemma_session *s = new_session(16, GEMMA_OVERFLOW_ERROR);
    REQUIRE(s != NULL);
    char buf[16];
    size_t len;
    for (size_t i = 0; i < 4; i++) {
        gemma_token t = i < 3 ? bad_ids[i] : nv;
        gemma_token seq[3] = {gemma_token_bos(g_model), t, 5};
        CHECK(gemma_session_eval(s, seq, 3, NULL) == GEMMA_E_INVALID_ARG);
        CHECK(strstr(gemma_session_last_error(s), "outside the vocabulary") != NULL);
        CHECK(gemma_session_n_past(s) == 0);
        CHECK(gemma_token_to_piece(g_model, t, true, buf, sizeof buf, &len) == GEMMA_E_INVALID_ARG);
        CHECK(!gemma_token_is_eog(g_model, t));
        gemma_detok *d = NULL;
        REQUIRE(gemma_detok_create(g_model, true, &d) == GEMMA_OK);
        const char *text;
        CHECK(gemma_detok_push(d, t, &text, &len) == GEMMA_E_INVALID_ARG);
        CHECK(gemma_detok_flush(d, &text, &len) == GEMMA_OK && len == 0);
        gemma_detok_free(d);
    }
    gemma_session_free(s);
    /* the sampler ignores out-of-range accepted tokens */
    gemma_sampler_params p;
    gemma_sampler_params_init(&p, sizeof p, NULL);
    p.repeat_penalty = 1.3f;
    p.penalty_last_n = 4;
    gemma_sampler *smp = NULL;
    gemma_error err;
    REQUIRE(gemma_sampler_create(&p, 8, &smp, &err) == GEMMA_OK);
    gemma_sampler_accept(smp, -5);
    gemma_sampler_accept(smp, 8);
    gemma_sampler_accept(smp, INT32_MAX);
    float logits[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    gemma_token t = gemma_sampler_sample(smp, logits);
    CHECK(t >= 0 && t < 8);
    gemma_sampler_free(smp);
}

static void test_req_chat(void)
{
    REQUIRE(g_model != NULL);
    char buf[256];
    size_t len;
    gemma_error err;
    gemma_chat_message bad_role[1] = {{.role = "wizard", .content = "hi"}};
    CHECK(gemma_chat_render(g_model, bad_role, 1, true, true, buf, sizeof buf, &len, &err) == GEMMA_E_CHAT &&
          msg_has(&err, "wizard"));
    gemma_chat_message twice[2] = {{.role = "user", .content = "a"}, {.role = "user", .content = "b"}};
    CHECK(gemma_chat_render(g_model, twice, 2, true, true, buf, sizeof buf, &len, &err) == GEMMA_E_CHAT);
    gemma_chat_message null_content[1] = {{.role = "user", .content = NULL}};
    CHECK(gemma_chat_render(g_model, null_content, 1, true, true, buf, sizeof buf, &len, &err) == GEMMA_E_CHAT);
    gemma_chat_message ok[1] = {{.role = "user", .content = "Hello there"}};
    CHECK(gemma_chat_render(g_model, ok, 1, true, true, buf, 8, &len, &err) == GEMMA_E_BUFFER_TOO_SMALL && len > 8);
    CHECK(gemma_chat_render(g_model, ok, 1, true, true, buf, sizeof buf, &len, &err) == GEMMA_OK &&
          strlen(buf) == len);
}

/* ---- cancellation --------------------------------------------------------------------- */

typedef struct canceller {
    gemma_session *s;
    long delay_ns;
} canceller;

static void *cancel_thread(void *arg)
{
    canceller *c = arg;
    struct timespec ts = {0, c->delay_ns};
    nanosleep(&ts, NULL);
    gemma_session_cancel(c->s);
    return NULL;
}

static int cancel_on_token(void *user, const char *text, size_t len, gemma_token token)
{
    (void)text, (void)len, (void)token;
    int *count = user;
    return ++*count >= 1000; /* never stops by itself */
}

static void test_req_cancel(void)
{
    REQUIRE(g_model != NULL);
    gemma_session *s = new_session(64, GEMMA_OVERFLOW_ERROR);
    REQUIRE(s != NULL);
    gemma_token prompt[48];
    for (int i = 0; i < 48; i++)
        prompt[i] = 20 + i;
    prompt[0] = gemma_token_bos(g_model);
    int n_cancelled = 0, n_done = 0;
    for (int round = 0; round < 24; round++) {
        gemma_session_reset(s);
        canceller c = {s, (long)(round % 8) * (round % 8) * 300000L};
        pthread_t th;
        REQUIRE(pthread_create(&th, NULL, cancel_thread, &c) == 0);
        gemma_status st = gemma_session_eval(s, prompt, 48, NULL);
        if (st == GEMMA_OK) {
            int count = 0;
            gemma_generate_params gp;
            gemma_generate_params_init(&gp, sizeof gp);
            gp.max_tokens = 0;
            gp.on_token = cancel_on_token;
            gp.user = &count;
            gemma_generate_result r = {.size = sizeof r};
            st = gemma_session_generate(s, &gp, &r);
            CHECKF(st == GEMMA_OK, "generate: %s", gemma_session_last_error(s));
            CHECK(r.stop_reason == GEMMA_STOP_CANCELLED || r.stop_reason == GEMMA_STOP_CONTEXT_FULL ||
                  r.stop_reason == GEMMA_STOP_EOG);
            n_cancelled += r.stop_reason == GEMMA_STOP_CANCELLED;
            n_done += r.stop_reason != GEMMA_STOP_CANCELLED;
        } else {
            CHECKF(st == GEMMA_E_CANCELLED, "eval: %s", gemma_status_name(st));
            CHECK(strstr(gemma_session_last_error(s), "cancel") != NULL);
            n_cancelled++;
        }
        pthread_join(th, NULL);
        CHECK(gemma_session_n_past(s) >= 0 && gemma_session_n_past(s) <= 64);
        /* whatever happened, the session works afterwards */
        gemma_session_reset(s);
        CHECK(gemma_session_eval(s, prompt, 4, NULL) == GEMMA_OK && gemma_session_n_past(s) == 4);
    }
    fprintf(stderr, "  cancel rounds: %d cancelled, %d finished first\n", n_cancelled, n_done);
    /* cancel before any work: the flag is cleared when the next call starts */
    gemma_session_cancel(s);
    gemma_session_reset(s);
    CHECK(gemma_session_eval(s, prompt, 4, NULL) == GEMMA_OK);
    gemma_session_cancel(NULL);
    gemma_session_free(s);
}

/* ---- out of memory -------------------------------------------------------------------- */

static long vm_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0;
    if (f) {
        if (fscanf(f, "%ld", &pages) != 1)
            pages = 0;
        fclose(f);
    }
    return pages * sysconf(_SC_PAGESIZE);
}

/* In a child process: address-space limits from tight to loose, so allocations fail at
 * every stage of load and session creation. Each attempt must succeed or fail cleanly. */
static int oom_child(void)
{
    struct rlimit old;
    if (getrlimit(RLIMIT_AS, &old) != 0)
        return 3;
    /* Every allocation from fresh pages (glibc; ignored under ASan), so memory freed by the
     * earlier tests cannot hide a failure. */
    mallopt(M_MMAP_THRESHOLD, 0);
    int ok = 0, nomem = 0;
    for (long budget = 16 << 10; budget < (1L << 31); budget += budget / 3) {
        for (int mode = 0; mode < 2; mode++) {
            struct rlimit lim = old;
            lim.rlim_cur = (rlim_t)(vm_bytes() + budget);
            if (setrlimit(RLIMIT_AS, &lim) != 0)
                return 3;
            gemma_model *m = NULL;
            gemma_session *s = NULL;
            gemma_error err;
            memset(&err, 0, sizeof err);
            gemma_status st = load_bytes(g_base, g_base_len, mode == 0, &m, &err);
            if (!st) {
                gemma_session_params p;
                gemma_session_params_init(&p, sizeof p);
                p.n_ctx = 32;
                p.n_threads = 2;
                st = gemma_session_create(m, &p, &s, &err);
            }
            if (!st) {
                gemma_token t[2] = {gemma_token_bos(m), 7};
                st = gemma_session_eval(s, t, 2, NULL);
                if (st)
                    snprintf(err.message, sizeof err.message, "%s", gemma_session_last_error(s));
            }
            gemma_session_free(s);
            gemma_model_free(m);
            setrlimit(RLIMIT_AS, &old);
            if (st == GEMMA_OK) {
                ok++;
            } else {
                if (!err.message[0])
                    return 4; /* every failure says why */
                if (st == GEMMA_E_NOMEM)
                    nomem++;
                else if (st != GEMMA_E_IO && st != GEMMA_E_INTERNAL)
                    return 5;
            }
        }
    }
    fprintf(stderr, "  oom sweep: %d attempts succeeded, %d failed with E_NOMEM\n", ok, nomem);
    return ok > 0 && nomem > 0 ? 0 : 6;
}

/* The sweep runs in a fresh process (this executable again, with --oom-child): a process
 * that has already run tests keeps freed heap and cached thread stacks, which would let
 * allocations succeed under any limit. */
static void test_req_oom(void)
{
    REQUIRE(g_base != NULL);
    const char *pre = getenv("LD_PRELOAD");
    if (pre && strstr(pre, "vgpreload")) {
        fprintf(stderr, "  skipped under valgrind (address-space limits break it)\n");
        return;
    }
    fflush(stderr);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        execl("/proc/self/exe", "test_robustness", "--oom-child", (char *)NULL);
        _exit(7);
    }
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 0, "oom child: %s %d", WIFEXITED(status) ? "exit" : "signal",
           WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
}

/* ---- main ----------------------------------------------------------------------------- */

static bool build_base(void)
{
    char path[4096];
    /* Only the vocabulary is taken, which every Gemma 3 reference model shares. */
    static const char *const names[] = {"g3-f32", "g3-q4_k_m"};
    if (!gm_test_ref_file(path, sizeof path, names, 2))
        return false;
    gguf_file *f = NULL;
    gemma_error err;
    if (gguf_file_open(path, true, &f, &err) != GEMMA_OK) {
        fprintf(stderr, "%s: %s\n", path, err.message);
        return false;
    }
    gw_tiny_opts o = {GM_TYPE_F32, 2, 32, 64, 64};
    g_base = gw_tiny_gemma3(f->ctx, &o, &g_base_len);
    gguf_file_close(f);
    return g_base && gguf_parse(g_base, g_base_len, NULL, &g_base_ctx, &err) == GEMMA_OK;
}

int main(int argc, char **argv)
{
    if (argc == 2 && !strcmp(argv[1], "--oom-child")) {
        if (!build_base())
            return 8;
        gguf_free(g_base_ctx);
        int rc = oom_child();
        free(g_base);
        return rc;
    }
    gemma_error err;
    RUN(test_file_header);
    RUN(test_file_metadata);
    RUN(test_file_tensors);
    RUN(test_file_io);
    RUN(test_req_sampler_params);
    RUN(test_api_facts);
    if (!build_base())
        TEST_SKIP("reference vectors not found (GEMMA_TESTDATA): no models to test with");
    if (load_bytes(g_base, g_base_len, true, &g_model, &err) != GEMMA_OK)
        fprintf(stderr, "tiny model does not load: %s\n", err.message);
    RUN(test_file_truncation);
    RUN(test_model_valid);
    RUN(test_model_arch);
    RUN(test_model_tensors);
    RUN(test_model_hparams);
    RUN(test_model_vocab);
    RUN(test_model_sampling);
    RUN(test_req_session_params);
    RUN(test_req_long_prompt);
    RUN(test_req_context_full);
    RUN(test_req_invalid_utf8);
    RUN(test_req_token_ids);
    RUN(test_req_chat);
    RUN(test_req_cancel);
    RUN(test_req_oom);
    gemma_model_free(g_model);
    gguf_free(g_base_ctx);
    free(g_base);
    TEST_MAIN_END();
}
