/* GGUF parser on valid files: the reference models, the default model, writer-built files;
 * typed getters and the public inspection API. */
#include "gguf/gguf.h"
#include "gguf-writer.h"
#include "tensor/types.h"
#include "util/util.h"
#include "test.h"

#include <dirent.h>
#include <unistd.h>

static gguf_ctx *parse_ok(const uint8_t *buf, size_t len)
{
    gguf_ctx *ctx = NULL;
    gemma_error err = {0};
    gemma_status st = gguf_parse(buf, len, NULL, &ctx, &err);
    CHECKF(st == GEMMA_OK, "%s", err.message);
    return ctx;
}

static bool kv_str_is(const gguf_ctx *ctx, const char *key, const char *want)
{
    gguf_str s;
    if (gguf_get_str(ctx, key, &s, NULL))
        return false;
    return s.len == strlen(want) && memcmp(s.ptr, want, s.len) == 0;
}

/* Checks that hold for every valid file: every tensor's data inside the file, aligned,
 * findable by name, and no overlaps (the parser checks; this re-checks its output). */
static void check_invariants(const gguf_ctx *ctx)
{
    CHECK(ctx->data_offset % ctx->alignment == 0);
    for (uint64_t i = 0; i < ctx->n_tensors; i++) {
        const gguf_tensor *t = &ctx->tensors[i];
        CHECK((const uint8_t *)t->data >= ctx->base + ctx->data_offset);
        CHECK((const uint8_t *)t->data + t->nbytes <= ctx->base + ctx->size);
        CHECK(t->offset % ctx->alignment == 0);
        char name[80];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.ptr);
        CHECK(gguf_find_tensor(ctx, name) == t);
        const gm_type_traits *tt = gm_type_get(t->type);
        REQUIRE(tt);
        CHECK(t->nbytes == gm_row_size(tt, t->ne[0]) * (uint64_t)(t->ne[1] * t->ne[2] * t->ne[3]));
    }
    for (uint64_t i = 0; i < ctx->n_kv; i++) {
        char key[256];
        snprintf(key, sizeof key, "%.*s", (int)ctx->kv[i].key.len, ctx->kv[i].key.ptr);
        CHECK(gguf_find(ctx, key) == &ctx->kv[i]);
    }
}

static void test_testdata(void)
{
    const char *dir = gm_test_testdata();
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "  (no testdata at %s)\n", dir);
        return;
    }
    int n_files = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n < 5 || strcmp(e->d_name + n - 5, ".gguf"))
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        for (int mm = 0; mm < 2; mm++) {
            gguf_file *f = NULL;
            gemma_error err = {0};
            gemma_status st = gguf_file_open(path, mm == 1, &f, &err);
            CHECKF(st == GEMMA_OK, "%s: %s", path, err.message);
            if (st)
                continue;
            CHECK(f->mapped == (mm == 1));
            const gguf_ctx *ctx = f->ctx;
            bool g4 = !strncmp(e->d_name, "g4", 2);
            CHECK(ctx->version == 3);
            CHECK(kv_str_is(ctx, "general.architecture", g4 ? "gemma4" : "gemma3"));
            uint32_t nl = 0;
            CHECK(gguf_get_u32(ctx, g4 ? "gemma4.block_count" : "gemma3.block_count", &nl, NULL) == GEMMA_OK);
            uint32_t want_nl = !strcmp(e->d_name, "g3-f32.gguf") ? 7 : !strcmp(e->d_name, "g4-keqv-f16.gguf") ? 6 : g4 ? 8 : 6;
            CHECKF(nl == want_nl, "%s: block_count %u", e->d_name, nl);
            uint64_t want_nt = !strcmp(e->d_name, "g3-f32.gguf") ? 93 : !strcmp(e->d_name, "g4-keqv-f16.gguf") ? 82 : g4 ? 131 : 80;
            CHECKF(ctx->n_tensors == want_nt, "%s: %llu tensors", e->d_name, (unsigned long long)ctx->n_tensors);
            CHECK(gguf_find_tensor(ctx, "token_embd.weight") != NULL);
            CHECK(gguf_find_tensor(ctx, "token_embd.weigh") == NULL);
            uint64_t n_tok = 0;
            const gguf_str *toks = NULL;
            CHECK(gguf_get_str_arr(ctx, "tokenizer.ggml.tokens", &n_tok, &toks, NULL) == GEMMA_OK);
            CHECK(n_tok == 512 && toks && toks[2].len == 5 && !memcmp(toks[2].ptr, "<bos>", 5));
            check_invariants(ctx);
            if (g4 && nl == 8) {
                uint32_t ff[8];
                gemma_error e2 = {0};
                CHECKF(gguf_get_u32_per_layer(ctx, "gemma4.feed_forward_length", 8, ff, &e2) == GEMMA_OK, "%s", e2.message);
                CHECK(ff[0] == 256 && ff[7] == 512);
                uint64_t np = 0;
                const void *pat = NULL;
                CHECK(gguf_get_arr(ctx, "gemma4.attention.sliding_window_pattern", GGUF_T_BOOL, &np, &pat, NULL) == GEMMA_OK);
                CHECK(np == 8 && ((const uint8_t *)pat)[0] == 1 && ((const uint8_t *)pat)[2] == 0);
            }
            gguf_file_close(f);
        }
        n_files++;
    }
    closedir(d);
    /* The full set (../shared/testdata) has 17 models; the repository's subset two. */
    char full[1024];
    snprintf(full, sizeof full, "%s/g3-f32.gguf", gm_test_testdata());
    CHECK(n_files >= (access(full, R_OK) == 0 ? 17 : 2));
}

static void test_default_model(void)
{
    const char *path = gm_test_model();
    if (!path || access(path, R_OK) != 0) {
        fprintf(stderr, "  (default model absent: skipped)\n");
        return;
    }
    gguf_file *f = NULL;
    gemma_error err = {0};
    REQUIRE(gguf_file_open(path, true, &f, &err) == GEMMA_OK);
    const gguf_ctx *ctx = f->ctx;
    uint32_t v = 0;
    CHECK(gguf_get_u32(ctx, "gemma3.block_count", &v, NULL) == GEMMA_OK && v == 18);
    CHECK(gguf_get_u32(ctx, "gemma3.embedding_length", &v, NULL) == GEMMA_OK && v == 640);
    CHECK(gguf_get_u32(ctx, "gemma3.attention.key_length", &v, NULL) == GEMMA_OK && v == 256);
    CHECK(kv_str_is(ctx, "general.architecture", "gemma3"));
    CHECK(kv_str_is(ctx, "general.size_label", "270M"));
    CHECK(ctx->n_tensors == 236 && ctx->n_kv == 33);
    CHECK(ctx->data_offset == 6525120);
    uint64_t n_tok = 0, params = 0, bytes = 0;
    const gguf_str *toks;
    CHECK(gguf_get_str_arr(ctx, "tokenizer.ggml.tokens", &n_tok, &toks, NULL) == GEMMA_OK && n_tok == 262144);
    for (uint64_t i = 0; i < ctx->n_tensors; i++) {
        const gguf_tensor *t = &ctx->tensors[i];
        params += (uint64_t)(t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3]);
        bytes += t->nbytes;
    }
    CHECK(params == 268098176ull && bytes == 246587904ull);
    check_invariants(ctx);
    gguf_file_close(f);
}

static void test_getters(void)
{
    gguf_writer w;
    REQUIRE(gw_build_sample(&w));
    gguf_ctx *ctx = parse_ok(w.buf, w.len);
    REQUIRE(ctx);
    gemma_error err = {0};
    uint32_t u = 0;
    float f = 0;
    bool b = false;
    gguf_str s;
    CHECK(gguf_get_u32(ctx, "gemma3.block_count", &u, NULL) == GEMMA_OK && u == 2);
    CHECK(gguf_get_f32(ctx, "gemma3.attention.layer_norm_rms_epsilon", &f, NULL) == GEMMA_OK && f == 1e-6f);
    CHECK(gguf_get_bool(ctx, "tokenizer.ggml.add_bos_token", &b, NULL) == GEMMA_OK && b);
    CHECK(gguf_get_str(ctx, "general.name", &s, NULL) == GEMMA_OK && s.len == 6 && !memcmp(s.ptr, "sample", 6));
    CHECK(ctx->alignment == 32 && ctx->n_kv == 13 && ctx->n_tensors == 3);
    /* Exact type checks, with messages that say both types. */
    CHECK(gguf_get_u32(ctx, "general.name", &u, &err) == GEMMA_E_MODEL);
    CHECKF(strstr(err.message, "type STRING, expected UINT32") && strstr(err.message, "general.name"), "%s", err.message);
    CHECK(gguf_get_str(ctx, "gemma3.block_count", &s, &err) == GEMMA_E_MODEL);
    CHECKF(strstr(err.message, "type UINT32, expected STRING"), "%s", err.message);
    CHECK(gguf_get_f32(ctx, "gemma3.block_count", &f, &err) == GEMMA_E_MODEL);
    CHECK(gguf_get_u32(ctx, "sample.i32", &u, &err) == GEMMA_E_MODEL);
    CHECKF(strstr(err.message, "type INT32, expected UINT32"), "%s", err.message);
    CHECK(gguf_get_u32(ctx, "sample.u64", &u, &err) == GEMMA_E_MODEL);
    CHECK(gguf_get_bool(ctx, "gemma3.block_count", &b, &err) == GEMMA_E_MODEL);
    CHECK(gguf_get_u32(ctx, "no.such.key", &u, &err) == GEMMA_E_NOT_FOUND);
    CHECKF(strstr(err.message, "no.such.key"), "%s", err.message);
    /* Arrays. */
    uint64_t n = 0;
    const void *data = NULL;
    const gguf_str *strs = NULL;
    CHECK(gguf_get_arr(ctx, "tokenizer.ggml.scores", GGUF_T_FLOAT32, &n, &data, NULL) == GEMMA_OK && n == 4);
    CHECK(gm_rd_f32((const uint8_t *)data + 12) == -1.5f);
    CHECK(gguf_get_arr(ctx, "tokenizer.ggml.scores", GGUF_T_INT32, &n, &data, &err) == GEMMA_E_MODEL);
    CHECKF(strstr(err.message, "array of FLOAT32, expected array of INT32"), "%s", err.message);
    CHECK(gguf_get_arr(ctx, "gemma3.block_count", GGUF_T_INT32, &n, &data, &err) == GEMMA_E_MODEL);
    CHECK(gguf_get_str_arr(ctx, "tokenizer.ggml.tokens", &n, &strs, NULL) == GEMMA_OK && n == 4);
    CHECK(strs[3].len == 4 && !memcmp(strs[3].ptr, "a\"b\n", 4));
    CHECK(gguf_get_str_arr(ctx, "tokenizer.ggml.scores", &n, &strs, &err) == GEMMA_E_MODEL);
    /* Per-layer u32: scalar, INT32 array, wrong length, wrong element type. */
    uint32_t pl[2] = {0, 0};
    CHECK(gguf_get_u32_per_layer(ctx, "gemma3.embedding_length", 2, pl, NULL) == GEMMA_OK && pl[0] == 8 && pl[1] == 8);
    CHECK(gguf_get_u32_per_layer(ctx, "gemma3.feed_forward_length", 2, pl, NULL) == GEMMA_OK && pl[0] == 16 && pl[1] == 32);
    CHECK(gguf_get_u32_per_layer(ctx, "gemma3.feed_forward_length", 3, pl, &err) == GEMMA_E_MODEL);
    CHECKF(strstr(err.message, "2 elements, expected one per layer (3)"), "%s", err.message);
    CHECK(gguf_get_u32_per_layer(ctx, "tokenizer.ggml.scores", 4, pl, &err) == GEMMA_E_MODEL);
    CHECK(gguf_get_u32_per_layer(ctx, "sample.i32", 2, pl, &err) == GEMMA_E_MODEL);
    CHECK(gguf_get_u32_per_layer(ctx, "nope", 2, pl, &err) == GEMMA_E_NOT_FOUND);
    /* Tensors. */
    const gguf_tensor *t = gguf_find_tensor(ctx, "sample.t4");
    REQUIRE(t);
    CHECK(t->n_dims == 4 && t->ne[0] == 4 && t->ne[3] == 2 && t->nbytes == 128);
    t = gguf_find_tensor(ctx, "output_norm.weight");
    REQUIRE(t);
    CHECK(t->n_dims == 1 && t->ne[1] == 1 && gm_rd_f32((const uint8_t *)t->data + 28) == 7.0f);
    check_invariants(ctx);
    gguf_free(ctx);
    gw_free(&w);
}

/* A negative element in a per-layer INT32 array is a model error. */
static void test_per_layer_negative(void)
{
    gguf_writer w;
    gw_init(&w, 3);
    const int32_t v[2] = {5, -1};
    gw_kv_arr(&w, "x.head_count", GGUF_T_INT32, v, 2, 4);
    REQUIRE(gw_finish(&w));
    gguf_ctx *ctx = parse_ok(w.buf, w.len);
    REQUIRE(ctx);
    uint32_t out[2];
    gemma_error err = {0};
    CHECK(gguf_get_u32_per_layer(ctx, "x.head_count", 2, out, &err) == GEMMA_E_MODEL);
    CHECKF(strstr(err.message, "negative"), "%s", err.message);
    gguf_free(ctx);
    gw_free(&w);
}

/* Things that are valid: v2, no metadata or tensors, non-dense tensor order, IQ types,
 * a key containing a NUL byte, trailing bytes after the data. */
static void test_valid_variants(void)
{
    gguf_writer w;
    REQUIRE(gw_build_sample(&w));
    gw_patch_u32(w.buf, 4, 2);
    gguf_ctx *ctx = parse_ok(w.buf, w.len);
    CHECK(ctx && ctx->version == 2);
    gguf_free(ctx);
    gw_free(&w);

    gw_init(&w, 3);
    REQUIRE(gw_finish(&w));
    ctx = parse_ok(w.buf, w.len);
    CHECK(ctx && ctx->n_kv == 0 && ctx->n_tensors == 0 && ctx->data_offset <= w.len);
    CHECK(gguf_find(ctx, "x") == NULL && gguf_find_tensor(ctx, "x") == NULL);
    gguf_free(ctx);
    gw_free(&w);

    /* Two same-size tensors with swapped offsets: not llama.cpp's dense order, but valid. */
    gw_init(&w, 3);
    gw_keyn(&w, "a\0b", 3, 4);
    gw_u32(&w, 1);
    int64_t ne[2] = {256, 2};
    gw_tensor(&w, "a", 1, ne, 0, 1024, NULL);
    gw_tensor(&w, "b", 1, ne, 0, 1024, NULL);
    gw_tensor(&w, "iq", 2, ne, 16 /* IQ2_XXS */, 2 * 66, NULL);
    REQUIRE(gw_finish(&w));
    gw_patch_u64(w.buf, w.t[0].pos_offset, w.t[1].offset);
    gw_patch_u64(w.buf, w.t[1].pos_offset, w.t[0].offset);
    gw_raw(&w, "trailing", 8);
    ctx = parse_ok(w.buf, w.len);
    REQUIRE(ctx);
    CHECK(ctx->tensors[0].offset == 1024 && ctx->tensors[1].offset == 0);
    CHECK(ctx->kv[0].key.len == 3);
    CHECK(gguf_find(ctx, "a") == NULL); /* the key is "a\0b": compared by length, not by C string */
    const gguf_tensor *iq = gguf_find_tensor(ctx, "iq");
    CHECK(iq && iq->nbytes == 132 && gm_type_get(16) && !gm_type_get(16)->weight);
    gguf_free(ctx);
    gw_free(&w);
}

static void test_public_api(void)
{
    gguf_writer w;
    REQUIRE(gw_build_sample(&w));
    char dir[] = "/tmp/gm-gguf-XXXXXX", path[64];
    REQUIRE(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/s.gguf", dir);
    REQUIRE(gw_write_file(&w, path));
    gemma_gguf *g = NULL;
    gemma_error err = {0};
    CHECKF(gemma_gguf_open(path, &g, &err) == GEMMA_OK, "%s", err.message);
    REQUIRE(g);
    CHECK(gemma_gguf_version(g) == 3 && gemma_gguf_n_kv(g) == 13 && gemma_gguf_n_tensors(g) == 3);
    CHECK(gemma_gguf_alignment(g) == 32 && gemma_gguf_file_size(g) == w.len);
    CHECK(gemma_gguf_data_offset(g) == w.data_offset);
    CHECK(!strcmp(gemma_gguf_kv_key(g, 0), "general.architecture"));
    CHECK(gemma_gguf_kv_key(g, 13) == NULL);
    int64_t i = gemma_gguf_find_key(g, "tokenizer.ggml.tokens");
    REQUIRE(i >= 0);
    CHECK(gemma_gguf_kv_type(g, (size_t)i) == GEMMA_GGUF_ARRAY && gemma_gguf_kv_elem_type(g, (size_t)i) == GEMMA_GGUF_STRING);
    CHECK(gemma_gguf_kv_count(g, (size_t)i) == 4);
    char buf[256];
    CHECK(gemma_gguf_kv_to_string(g, (size_t)i, buf, sizeof buf) == GEMMA_OK);
    CHECKF(!strcmp(buf, "[4 x STRING] \"<pad>\", \"<eos>\", \"<bos>\", \"a\\\"b\\n\""), "%s", buf);
    CHECK(gemma_gguf_kv_to_string(g, (size_t)i, buf, 8) == GEMMA_E_BUFFER_TOO_SMALL && strlen(buf) == 7);
    CHECK(gemma_gguf_kv_to_string(g, 0, buf, sizeof buf) == GEMMA_OK && !strcmp(buf, "gemma3"));
    CHECK(gemma_gguf_kv_to_string(g, (size_t)gemma_gguf_find_key(g, "sample.i32"), buf, sizeof buf) == GEMMA_OK && !strcmp(buf, "-7"));
    CHECK(gemma_gguf_kv_to_string(g, (size_t)gemma_gguf_find_key(g, "sample.u64"), buf, sizeof buf) == GEMMA_OK && !strcmp(buf, "12345678901234"));
    CHECK(gemma_gguf_kv_to_string(g, (size_t)gemma_gguf_find_key(g, "gemma3.attention.sliding_window_pattern"), buf, sizeof buf) == GEMMA_OK);
    CHECKF(!strcmp(buf, "[2 x BOOL] true, false"), "%s", buf);
    CHECK(gemma_gguf_kv_to_string(g, 99, buf, sizeof buf) == GEMMA_E_INVALID_ARG);
    int64_t v = 0;
    int64_t ff = gemma_gguf_find_key(g, "gemma3.feed_forward_length");
    CHECK(gemma_gguf_kv_get_int(g, (size_t)ff, 1, &v) == GEMMA_OK && v == 32);
    CHECK(gemma_gguf_kv_get_int(g, (size_t)ff, 2, &v) == GEMMA_E_INVALID_ARG);
    CHECK(gemma_gguf_kv_get_int(g, 0, 0, &v) == GEMMA_E_INVALID_ARG);
    uint32_t u = 0;
    float f = 0;
    const char *s = NULL;
    size_t len = 0;
    CHECK(gemma_gguf_get_u32(g, "gemma3.block_count", &u) == GEMMA_OK && u == 2);
    CHECK(gemma_gguf_get_u32(g, "general.name", &u) == GEMMA_E_MODEL);
    CHECK(gemma_gguf_get_u32(g, "nope", &u) == GEMMA_E_NOT_FOUND);
    CHECK(gemma_gguf_get_f32(g, "gemma3.attention.layer_norm_rms_epsilon", &f) == GEMMA_OK && f == 1e-6f);
    CHECK(gemma_gguf_get_str(g, "general.name", &s, &len) == GEMMA_OK && len == 6 && !memcmp(s, "sample", 6));
    gemma_tensor_info ti = {.size = sizeof ti};
    CHECK(gemma_gguf_tensor(g, 2, &ti) == GEMMA_OK);
    CHECK(!strcmp(ti.name, "sample.t4") && !strcmp(ti.type_name, "F32") && ti.n_dims == 4);
    CHECK(ti.ne[1] == 2 && ti.n_elements == 32 && ti.nbytes == 128 && ti.offset == w.t[2].offset);
    CHECK(gemma_gguf_tensor(g, 3, &ti) == GEMMA_E_INVALID_ARG);
    gemma_gguf_close(g);
    gemma_gguf_close(NULL);

    /* Errors from the file layer name the path. */
    g = (gemma_gguf *)1;
    CHECK(gemma_gguf_open("/nonexistent/x.gguf", &g, &err) == GEMMA_E_IO && g == NULL);
    CHECKF(strstr(err.message, "/nonexistent/x.gguf"), "%s", err.message);
    w.buf[0] = 'X';
    REQUIRE(gw_write_file(&w, path));
    CHECK(gemma_gguf_open(path, &g, &err) == GEMMA_E_FORMAT && g == NULL);
    CHECKF(strstr(err.message, path) && strstr(err.message, "bad magic"), "%s", err.message);
    CHECK(gemma_gguf_open(dir, &g, &err) == GEMMA_E_IO);
    FILE *e = fopen(path, "wb");
    REQUIRE(e);
    fclose(e);
    CHECK(gemma_gguf_open(path, &g, &err) == GEMMA_E_FORMAT);
    CHECKF(strstr(err.message, "too small"), "%s", err.message);
    unlink(path);
    rmdir(dir);
    gw_free(&w);
}

int main(void)
{
    RUN(test_testdata);
    RUN(test_default_model);
    RUN(test_getters);
    RUN(test_per_layer_negative);
    RUN(test_valid_variants);
    RUN(test_public_api);
    TEST_MAIN_END();
}
