/* The GGUF parser on hostile input: truncations at every byte of the header, metadata and
 * tensor table, and one targeted mutation per check, each of which must be rejected with
 * GEMMA_E_FORMAT and its own message. Run under ASan+UBSan to catch any stray read. */
#include "gguf/gguf.h"
#include "gguf-writer.h"
#include "test.h"
#include "util/util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

/* Parses an exact-size heap copy, so ASan sees any read past the end. */
static gemma_status parse_copy(const uint8_t *buf, size_t len, gemma_error *err)
{
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy)
        return GEMMA_E_NOMEM;
    if (len)
        memcpy(copy, buf, len);
    gguf_ctx *ctx = NULL;
    gemma_status st = gguf_parse(copy, len, NULL, &ctx, err);
    if (st == GEMMA_OK && !ctx)
        st = GEMMA_E_INTERNAL;
    if (st != GEMMA_OK && ctx)
        st = GEMMA_E_INTERNAL; /* *out must be NULL on failure */
    gguf_free(ctx);
    free(copy);
    return st;
}

static int expect_reject(const uint8_t *buf, size_t len, const char *what, const char *substr)
{
    gemma_error err = {0};
    gemma_status st = parse_copy(buf, len, &err);
    CHECKF(st == GEMMA_E_FORMAT, "%s: status %s (%s)", what, gemma_status_name(st), err.message);
    CHECKF(strstr(err.message, substr) != NULL, "%s: message \"%s\" lacks \"%s\"", what, err.message, substr);
    if (getenv("GEMMA_TEST_VERBOSE"))
        fprintf(stderr, "  %-36s -> %s\n", what, err.message);
    return st == GEMMA_E_FORMAT;
}

/* A mutated copy of a file: patch, check, restore. */
typedef struct mut {
    uint8_t *buf;
    size_t len;
} mut;

static void reject_u32(mut *m, size_t pos, uint32_t v, const char *what, const char *substr)
{
    uint8_t save[4];
    memcpy(save, m->buf + pos, 4);
    gw_patch_u32(m->buf, pos, v);
    expect_reject(m->buf, m->len, what, substr);
    memcpy(m->buf + pos, save, 4);
}

static void reject_u64(mut *m, size_t pos, uint64_t v, const char *what, const char *substr)
{
    uint8_t save[8];
    memcpy(save, m->buf + pos, 8);
    gw_patch_u64(m->buf, pos, v);
    expect_reject(m->buf, m->len, what, substr);
    memcpy(m->buf + pos, save, 8);
}

/* Every prefix of the metadata region, and a stride of prefixes through the data. */
static void truncations(const uint8_t *buf, size_t len, size_t data_offset)
{
    /* Cuts inside trailing padding after the last tensor's data leave a valid file. */
    gguf_ctx *full = NULL;
    REQUIRE(gguf_parse(buf, len, NULL, &full, NULL) == GEMMA_OK);
    size_t data_end = data_offset;
    for (uint64_t i = 0; i < full->n_tensors; i++)
        data_end = GM_MAX(data_end, (size_t)(data_offset + full->tensors[i].offset + full->tensors[i].nbytes));
    gguf_free(full);
    int bad = 0;
    for (size_t cut = 0; cut < data_end; cut += cut < data_offset + 64 ? 1 : GM_MAX((len - data_offset) / 97, 1)) {
        gemma_error err = {0};
        gemma_status st = parse_copy(buf, cut, &err);
        if (st != GEMMA_E_FORMAT && bad++ < 5)
            CHECKF(st == GEMMA_E_FORMAT, "truncated at %zu of %zu: %s (%s)", cut, len, gemma_status_name(st), err.message);
        if (st == GEMMA_E_FORMAT && !err.message[0] && bad++ < 5)
            CHECKF(err.message[0], "truncated at %zu: empty message", cut);
    }
    CHECK(bad == 0);
    gemma_error err = {0};
    CHECKF(parse_copy(buf, len, &err) == GEMMA_OK, "%s", err.message);
}

/* Mutations located from a parsed index, so they work on any valid file. */
static void targeted(const uint8_t *orig, size_t len)
{
    gguf_ctx *ctx = NULL;
    gemma_error err = {0};
    REQUIRE(gguf_parse(orig, len, NULL, &ctx, &err) == GEMMA_OK);
    REQUIRE(ctx->n_kv >= 2 && ctx->n_tensors >= 3);
    mut m = {malloc(len), len};
    REQUIRE(m.buf);
    memcpy(m.buf, orig, len);

    /* Header. */
    m.buf[0] = 'g';
    expect_reject(m.buf, len, "bad magic", "bad magic");
    m.buf[0] = 'G';
    reject_u32(&m, 4, 0, "version 0", "invalid GGUF version 0");
    reject_u32(&m, 4, 1, "version 1", "version 1 is no longer supported");
    reject_u32(&m, 4, 4, "version 4", "unsupported GGUF version 4");
    reject_u32(&m, 4, 0x03000000u, "byte-swapped version", "big-endian");
    reject_u64(&m, 16, (uint64_t)1 << 40, "huge n_kv", "metadata count 1099511627776 exceeds the limit");
    if (len / 14 < 60000) /* a count under the cap that still cannot fit in the file */
        reject_u64(&m, 16, 60000, "n_kv too big for the file", "metadata count 60000 cannot fit");
    reject_u64(&m, 8, UINT64_MAX, "huge n_tensors", "tensor count 18446744073709551615 exceeds the limit");
    if (len / 33 < 65000)
        reject_u64(&m, 8, 65000, "n_tensors too big for the file", "tensor count 65000 cannot fit");

    /* Metadata: the first record's key length and value type. */
    const gguf_kv *kv0 = &ctx->kv[0];
    size_t key_pos = (size_t)kv0->offset;
    size_t type_pos = (size_t)((const uint8_t *)kv0->key.ptr - orig) + (size_t)kv0->key.len;
    reject_u64(&m, key_pos, UINT64_MAX, "huge key length", "string length 18446744073709551615 exceeds the 64 MiB limit");
    reject_u64(&m, key_pos, (uint64_t)len, "key length past EOF", "runs past end of file");
    reject_u64(&m, key_pos, 0, "empty key", "empty key");
    reject_u32(&m, type_pos, 13, "value type 13", "invalid value type id 13");
    reject_u32(&m, type_pos, 255, "value type 255", "invalid value type id 255");
    /* A duplicate key: give key #1 key #0's bytes when they have the same length. */
    for (uint64_t i = 1; i < ctx->n_kv; i++) {
        const gguf_kv *kv = &ctx->kv[i];
        if (kv->key.len != kv0->key.len)
            continue;
        uint8_t *k = m.buf + ((const uint8_t *)kv->key.ptr - orig);
        uint8_t save[256];
        if (kv->key.len > sizeof save)
            break;
        memcpy(save, k, (size_t)kv->key.len);
        memcpy(k, kv0->key.ptr, (size_t)kv0->key.len);
        expect_reject(m.buf, len, "duplicate key", "duplicate key");
        memcpy(k, save, (size_t)kv->key.len);
        break;
    }
    /* The first string array: huge count, count past EOF, nested, bad element type. */
    for (uint64_t i = 0; i < ctx->n_kv; i++) {
        const gguf_kv *kv = &ctx->kv[i];
        if (kv->type != GGUF_T_ARRAY)
            continue;
        size_t at = (size_t)(kv->data - orig); /* elem type at -12, count at -8 */
        reject_u64(&m, at - 8, (uint64_t)1 << 60, "huge array count", "element count 1152921504606846976 exceeds the limit");
        reject_u64(&m, at - 8, 16u << 20, "array count past EOF", kv->arr_type == GGUF_T_STRING ? "strings cannot fit" : "past end of file");
        reject_u32(&m, at - 12, GGUF_T_ARRAY, "nested array", "nested array");
        reject_u32(&m, at - 12, 13, "array element type 13", "invalid element type id 13");
        if (kv->arr_type == GGUF_T_STRING && kv->n > 0)
            reject_u64(&m, at, (uint64_t)1 << 40, "huge string in array", "exceeds the 64 MiB limit");
        break;
    }

    /* Tensor infos: tensor 0's fields, found from its name. */
    const gguf_tensor *t0 = &ctx->tensors[0];
    size_t name_pos = (size_t)((const uint8_t *)t0->name.ptr - orig) - 8;
    size_t nd_pos = name_pos + 8 + (size_t)t0->name.len;
    size_t ne_pos = nd_pos + 4;
    size_t ty_pos = ne_pos + 8 * t0->n_dims;
    size_t off_pos = ty_pos + 4;
    reject_u64(&m, name_pos, 64, "long tensor name", "the limit is 63");
    reject_u64(&m, name_pos, 0, "empty tensor name", "empty tensor name");
    reject_u32(&m, nd_pos, 5, "n_dims 5", "n_dims = 5");
    reject_u32(&m, nd_pos, 0, "n_dims 0", "n_dims = 0");
    reject_u32(&m, nd_pos, UINT32_MAX, "n_dims 2^32-1", "n_dims = 4294967295");
    reject_u64(&m, ne_pos, 0, "zero dim", "ne[0] = 0");
    reject_u64(&m, ne_pos, ((uint64_t)1 << 62) + 1, "dim > 2^62", "out of range [1, 2^62]");
    reject_u64(&m, ne_pos, ((uint64_t)1 << 42) + 1, "ne0 2^42+1", "past end of file");
    reject_u32(&m, ty_pos, 4, "type 4 (removed)", "unknown or removed tensor type id 4");
    reject_u32(&m, ty_pos, 43, "type 43", "unknown or removed tensor type id 43");
    reject_u32(&m, ty_pos, 1000, "type 1000", "unknown or removed tensor type id 1000");
    reject_u32(&m, ty_pos, 12 /* Q4_K */, "ne0 not a multiple of the block", "not a multiple of the Q4_K block size 256");
    reject_u64(&m, off_pos, t0->offset + 1, "misaligned offset", "not a multiple of the alignment");
    reject_u64(&m, off_pos, UINT64_MAX - ctx->alignment + 1, "offset overflow", "overflows");
    reject_u64(&m, off_pos, (uint64_t)len / ctx->alignment * ctx->alignment, "data past EOF", "past end of file (");
    /* Overlap: point tensor 0 at tensor 1's data (or the reverse when 0 is larger). */
    const gguf_tensor *t1 = &ctx->tensors[1];
    reject_u64(&m, off_pos, t1->offset, "overlapping tensors", "overlaps tensor");
    /* A tensor with 2+ dims: product overflow of ne[1] * ne[2] (or ne[0] * ne[1]). */
    for (uint64_t i = 0; i < ctx->n_tensors; i++) {
        const gguf_tensor *t = &ctx->tensors[i];
        if (t->n_dims < 2)
            continue;
        size_t p = (size_t)((const uint8_t *)t->name.ptr - orig) + (size_t)t->name.len + 4;
        uint8_t save[16];
        memcpy(save, m.buf + p, 16);
        gw_patch_u64(m.buf, p, (uint64_t)1 << 30);
        gw_patch_u64(m.buf, p + 8, ((uint64_t)1 << 42) + 1);
        expect_reject(m.buf, len, "dimension product overflow", "overflows: element count or byte size");
        memcpy(m.buf + p, save, 16);
        break;
    }
    /* Duplicate tensor name: copy tensor 0's name over a later one of the same length. */
    for (uint64_t i = 1; i < ctx->n_tensors; i++) {
        const gguf_tensor *t = &ctx->tensors[i];
        if (t->name.len != t0->name.len)
            continue;
        uint8_t *p = m.buf + ((const uint8_t *)t->name.ptr - orig), save[64];
        memcpy(save, p, (size_t)t->name.len);
        memcpy(p, t0->name.ptr, (size_t)t->name.len);
        expect_reject(m.buf, len, "duplicate tensor name", "duplicate tensor name");
        memcpy(p, save, (size_t)t->name.len);
        break;
    }
    CHECK(memcmp(m.buf, orig, len) == 0);
    free(m.buf);
    gguf_free(ctx);
}

/* Structural mutations that need the writer (the record layout itself changes). */
static void writer_cases(void)
{
    gguf_writer w;
    /* Duplicate key. */
    gw_init(&w, 3);
    gw_kv_u32(&w, "a.b", 1);
    gw_kv_u32(&w, "a.c", 1);
    gw_kv_str(&w, "a.b", "again");
    REQUIRE(gw_finish(&w));
    expect_reject(w.buf, w.len, "duplicate key (writer)", "metadata key #2 'a.b' at offset");
    expect_reject(w.buf, w.len, "duplicate key (writer)", "duplicate key (first defined at offset 24)");
    gw_free(&w);
    /* Nested array. */
    gw_init(&w, 3);
    gw_key(&w, "nested", 9);
    gw_u32(&w, 9);
    gw_u64(&w, 1);
    gw_u32(&w, 4);
    gw_u64(&w, 1);
    gw_u32(&w, 7);
    REQUIRE(gw_finish(&w));
    expect_reject(w.buf, w.len, "nested array (writer)", "nested array at offset");
    gw_free(&w);
    /* general.alignment: 0, 3, INT32, too large, UINT64. */
    static const struct {
        uint32_t type;
        uint32_t v;
        const char *msg;
    } al[] = {
        {4, 0, "alignment 0 is not a nonzero power of two"},
        {4, 3, "alignment 3 is not a nonzero power of two"},
        {5, 32, "key 'general.alignment' at offset 24: type INT32, expected UINT32"},
        {4, 1u << 21, "alignment 2097152 exceeds the limit of 1048576"},
        {6, 32, "type FLOAT32, expected UINT32"},
    };
    for (size_t i = 0; i < sizeof al / sizeof al[0]; i++) {
        gw_init(&w, 3);
        gw_key(&w, "general.alignment", al[i].type);
        gw_u32(&w, al[i].v);
        int64_t ne[1] = {8};
        gw_tensor(&w, "t", 1, ne, 0, 32, NULL);
        REQUIRE(gw_finish(&w));
        expect_reject(w.buf, w.len, "bad alignment", al[i].msg);
        gw_free(&w);
    }
    /* Alignment 64 honoured: an offset aligned to 32 but not 64 is rejected. */
    gw_init(&w, 3);
    gw_kv_u32(&w, "general.alignment", 64);
    w.alignment = 64;
    int64_t ne[1] = {8};
    gw_tensor(&w, "t", 1, ne, 0, 32, NULL);
    gw_tensor(&w, "u", 1, ne, 0, 32, NULL);
    REQUIRE(gw_finish(&w));
    gemma_error err = {0};
    CHECKF(parse_copy(w.buf, w.len, &err) == GEMMA_OK, "%s", err.message);
    gw_patch_u64(w.buf, w.t[1].pos_offset, 32);
    expect_reject(w.buf, w.len, "offset aligned to 32 with alignment 64", "offset 32 is not a multiple of the alignment 64");
    gw_free(&w);
    /* Duplicate tensor name, and a name of exactly 64 bytes. */
    gw_init(&w, 3);
    gw_tensor(&w, "same", 1, ne, 0, 32, NULL);
    gw_tensor(&w, "same", 1, ne, 0, 32, NULL);
    REQUIRE(gw_finish(&w));
    expect_reject(w.buf, w.len, "duplicate tensor (writer)", "duplicate tensor name (first defined by tensor info #0)");
    gw_free(&w);
    char longname[65];
    memset(longname, 'x', 64);
    longname[64] = '\0';
    gw_init(&w, 3);
    gw_tensor(&w, longname, 1, ne, 0, 32, NULL);
    REQUIRE(gw_finish(&w));
    expect_reject(w.buf, w.len, "64-byte tensor name", "is 64 bytes long; the limit is 63");
    longname[63] = '\0';
    gw_free(&w);
    gw_init(&w, 3);
    gw_tensor(&w, longname, 1, ne, 0, 32, NULL);
    REQUIRE(gw_finish(&w));
    CHECK(parse_copy(w.buf, w.len, &err) == GEMMA_OK);
    gw_free(&w);
    /* Data section start past EOF (tensor table ends right at EOF, padding missing). */
    gw_init(&w, 3);
    gw_kv_u32(&w, "x", 1);
    gw_tensor(&w, "t", 1, ne, 0, 32, NULL);
    REQUIRE(gw_finish(&w));
    expect_reject(w.buf, w.data_offset - 1, "data section past EOF", "tensor data section starts at");
    gw_free(&w);
    /* A 2-D tensor whose ne1 = 2^42+1 (the GHSA-vgg9 pattern): its size needs far more bytes
     * than the file has. */
    gw_init(&w, 3);
    int64_t ne2[2] = {128, 2};
    gw_tensor(&w, "w", 2, ne2, 0, 1024, NULL);
    REQUIRE(gw_finish(&w));
    gw_patch_u64(w.buf, w.t[0].pos_ne + 8, ((uint64_t)1 << 42) + 1);
    expect_reject(w.buf, w.len, "ne1 = 2^42+1", "tensor 'w': data ends at");
    /* and with a 4-byte-per-element product that wraps 64 bits: */
    gw_patch_u64(w.buf, w.t[0].pos_ne, (uint64_t)1 << 62);
    expect_reject(w.buf, w.len, "ne0*ne1 wraps", "overflows");
    gw_free(&w);
}

/* Seeded random corruption of the metadata region: whatever the parser says, it must be
 * OK or E_FORMAT, never a crash, and an accepted index must stay inside the buffer. */
static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void random_mutations(const uint8_t *orig, size_t len, size_t region, int iters)
{
    uint8_t *buf = malloc(len);
    REQUIRE(buf);
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    int n_ok = 0, n_bad = 0;
    for (int it = 0; it < iters; it++) {
        memcpy(buf, orig, len);
        int n_mut = 1 + (int)(rng_next(&seed) % 4);
        for (int k = 0; k < n_mut; k++) {
            size_t pos = (size_t)(rng_next(&seed) % region);
            uint64_t r = rng_next(&seed);
            if (r & 1) /* a random byte */
                buf[pos] = (uint8_t)(r >> 8);
            else if (pos + 8 <= len) /* a small or huge integer, as fields are */
                gw_patch_u64(buf, pos, (r >> 2) % 3 == 0 ? (r >> 16) % 300 : r >> ((r >> 8) % 64));
        }
        gguf_ctx *ctx = NULL;
        gemma_error err = {0};
        gemma_status st = gguf_parse(buf, len, NULL, &ctx, &err);
        if (st == GEMMA_OK) {
            n_ok++;
            for (uint64_t i = 0; i < ctx->n_tensors; i++) {
                const gguf_tensor *t = &ctx->tensors[i];
                CHECK((const uint8_t *)t->data >= buf && (const uint8_t *)t->data + t->nbytes <= buf + len);
            }
            for (uint64_t i = 0; i < ctx->n_kv; i++)
                CHECK(ctx->kv[i].data >= buf && ctx->kv[i].data <= buf + len);
        } else if (st != GEMMA_E_FORMAT || !err.message[0]) {
            if (++n_bad <= 3)
                CHECKF(0, "mutation %d: %s (%s)", it, gemma_status_name(st), err.message);
        }
        gguf_free(ctx);
    }
    CHECK(n_bad == 0);
    fprintf(stderr, "  %d random mutations, %d still valid\n", iters, n_ok);
    free(buf);
}

static void test_writer_sample(void)
{
    gguf_writer w;
    REQUIRE(gw_build_sample(&w));
    truncations(w.buf, w.len, w.data_offset);
    targeted(w.buf, w.len);
    random_mutations(w.buf, w.len, w.data_offset, 20000);
    gw_free(&w);
}

static void test_g3_f32(void)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/g3-f32.gguf", gm_test_testdata());
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "  (%s absent: skipped)\n", path);
        return;
    }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc((size_t)size);
    REQUIRE(buf);
    CHECK(fread(buf, 1, (size_t)size, f) == (size_t)size);
    fclose(f);
    gguf_ctx *ctx = NULL;
    gemma_error err = {0};
    if (gguf_parse(buf, (size_t)size, NULL, &ctx, &err) != GEMMA_OK) {
        CHECKF(0, "%s", err.message);
        free(buf);
        return;
    }
    size_t data_offset = (size_t)ctx->data_offset;
    gguf_free(ctx);
    truncations(buf, (size_t)size, data_offset);
    targeted(buf, (size_t)size);
    random_mutations(buf, (size_t)size, data_offset, 1500);
    free(buf);
}

static void test_args(void)
{
    gguf_ctx *ctx = (gguf_ctx *)1;
    gemma_error err = {0};
    CHECK(gguf_parse(NULL, 0, NULL, &ctx, &err) == GEMMA_E_FORMAT && ctx == NULL);
    CHECK(gguf_parse(NULL, 5, NULL, &ctx, &err) == GEMMA_E_INVALID_ARG);
    CHECK(gguf_parse("GGUF", 4, NULL, NULL, &err) == GEMMA_E_INVALID_ARG);
    CHECK(gguf_parse("GGUF", 4, NULL, &ctx, NULL) == GEMMA_E_FORMAT); /* err may be NULL */
    /* Tighter caps from the caller are honoured. */
    gguf_writer w;
    REQUIRE(gw_build_sample(&w));
    gguf_limits lim = gguf_default_limits();
    lim.max_string = 5;
    CHECK(gguf_parse(w.buf, w.len, &lim, &ctx, &err) == GEMMA_E_FORMAT);
    CHECKF(strstr(err.message, "metadata key #0 at offset 24: string length 20 exceeds the limit of 5 bytes"), "%s", err.message);
    lim = gguf_default_limits();
    lim.max_array = 3;
    CHECK(gguf_parse(w.buf, w.len, &lim, &ctx, &err) == GEMMA_E_FORMAT);
    CHECKF(strstr(err.message, "'tokenizer.ggml.tokens'") && strstr(err.message, "element count 4 exceeds the limit of 3"), "%s", err.message);
    lim = gguf_default_limits();
    lim.max_tensors = 2;
    CHECK(gguf_parse(w.buf, w.len, &lim, &ctx, &err) == GEMMA_E_FORMAT);
    lim = gguf_default_limits();
    lim.max_kv = 2;
    CHECK(gguf_parse(w.buf, w.len, &lim, &ctx, &err) == GEMMA_E_FORMAT);
    gguf_free(NULL);
    gguf_file_close(NULL);
    gw_free(&w);
}

int main(void)
{
    RUN(test_args);
    RUN(writer_cases);
    RUN(test_writer_sample);
    RUN(test_g3_f32);
    TEST_MAIN_END();
}
