/* Forward pass against llama.cpp's reference logits (shared/testdata/g3-*.ref and g4-*.ref),
 * through the public API only, plus model-validation failures on patched copies of a tiny
 * model. */
#include "gemma.h"
#include "test.h"

#include <dirent.h>
#include <stdint.h>
#include <unistd.h>

typedef struct gref {
    int32_t n_prompt, n_vocab, n_gen;
    int32_t *prompt, *gen;
    float *logits;
} gref;

static void gref_free(gref *r)
{
    free(r->prompt);
    free(r->gen);
    free(r->logits);
}

static int rd(FILE *f, void *p, size_t size, size_t n) { return fread(p, size, n, f) == n ? 0 : -1; }

static int gref_load(const char *path, gref *r)
{
    memset(r, 0, sizeof *r);
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    char magic[4];
    int32_t version;
    int bad = rd(f, magic, 1, 4) || memcmp(magic, "GREF", 4) || rd(f, &version, 4, 1) || version != 1 ||
              rd(f, &r->n_prompt, 4, 1) || r->n_prompt <= 0 || r->n_prompt > 65536;
    if (!bad) {
        r->prompt = malloc(4 * (size_t)r->n_prompt);
        bad = !r->prompt || rd(f, r->prompt, 4, (size_t)r->n_prompt) || rd(f, &r->n_vocab, 4, 1) ||
              r->n_vocab <= 0 || r->n_vocab > (1 << 20);
    }
    if (!bad) {
        r->logits = malloc(4 * (size_t)r->n_prompt * (size_t)r->n_vocab);
        bad = !r->logits || rd(f, r->logits, 4, (size_t)r->n_prompt * (size_t)r->n_vocab) ||
              rd(f, &r->n_gen, 4, 1) || r->n_gen < 0 || r->n_gen > 65536;
    }
    if (!bad) {
        r->gen = malloc(4 * (size_t)r->n_gen + 4);
        bad = !r->gen || rd(f, r->gen, 4, (size_t)r->n_gen);
    }
    fclose(f);
    if (bad)
        gref_free(r);
    return bad ? -1 : 0;
}

static int argmax(const float *x, int32_t n)
{
    int best = 0;
    for (int32_t i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    return best;
}

/* rel = RMS(a - b) / RMS(a - mean(a)) of one row (testdata README). */
static double row_rel(const float *a, const float *b, int32_t n)
{
    double mean = 0, d = 0, s = 0;
    for (int32_t i = 0; i < n; i++)
        mean += a[i];
    mean /= n;
    for (int32_t i = 0; i < n; i++) {
        d += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        s += ((double)a[i] - mean) * ((double)a[i] - mean);
    }
    return s > 0 ? sqrt(d / s) : sqrt(d);
}

typedef struct run_result {
    double max_rel;
    double agree;
    int32_t gen[64];
    int32_t n_gen;
} run_result;

/* Evaluates the reference prompt (logits for every row) and its greedy continuation. */
static int run_model(gemma_model *m, const gref *r, int threads, int n_batch, const char *isa,
                     run_result *out)
{
    gemma_session_params sp;
    gemma_session_params_init(&sp, sizeof sp);
    sp.isa = isa;
    sp.n_threads = threads;
    sp.n_batch = n_batch;
    sp.n_ctx = r->n_prompt + r->n_gen + 8;
    gemma_session *s = NULL;
    gemma_error err = {0};
    if (gemma_session_create(m, &sp, &s, &err)) {
        fprintf(stderr, "session: %s\n", err.message);
        return -1;
    }
    const int32_t V = r->n_vocab;
    float *rows = malloc(sizeof(float) * (size_t)r->n_prompt * (size_t)V);
    int rc = -1;
    if (!rows || gemma_vocab_size(m) != V || gemma_session_eval(s, r->prompt, (size_t)r->n_prompt, rows))
        goto done;
    out->max_rel = 0;
    int agree = 0;
    for (int32_t i = 0; i < r->n_prompt; i++) {
        const float *a = r->logits + (size_t)i * (size_t)V, *b = rows + (size_t)i * (size_t)V;
        double rel = row_rel(a, b, V);
        out->max_rel = rel > out->max_rel ? rel : out->max_rel;
        agree += argmax(a, V) == argmax(b, V);
    }
    out->agree = (double)agree / r->n_prompt;
    out->n_gen = r->n_gen < 64 ? r->n_gen : 64;
    for (int32_t g = 0; g < out->n_gen; g++) {
        out->gen[g] = argmax(gemma_session_logits(s), V);
        if (gemma_session_eval(s, &out->gen[g], 1, NULL))
            goto done;
    }
    rc = 0;
done:
    if (rc)
        fprintf(stderr, "eval: %s\n", gemma_session_last_error(s));
    free(rows);
    gemma_session_free(s);
    return rc;
}

static bool is_float_model(const char *name)
{
    return strstr(name, "f32") || strstr(name, "f16") || strstr(name, "bf16");
}

/* GEMMA_SKIP_SLOW (set by `make memcheck`): a few models, two runs each. */
static bool quick(void) { return getenv("GEMMA_SKIP_SLOW") != NULL; }

static void check_model(const char *dir, const char *base)
{
    char gguf[20000], ref[20000];
    snprintf(gguf, sizeof gguf, "%s/%s.gguf", dir, base);
    snprintf(ref, sizeof ref, "%s/%s.ref", dir, base);
    gref r;
    REQUIRE(gref_load(ref, &r) == 0);
    gemma_model *m = NULL;
    gemma_error err = {0};
    gemma_status st = gemma_model_load(gguf, NULL, &m, &err);
    CHECKF(st == GEMMA_OK, "%s: %s", base, err.message);
    if (st) {
        gref_free(&r);
        return;
    }
    const bool fl = is_float_model(base);
    const double max_rel = fl ? 1e-2 : 1e-1, min_agree = fl ? 0.99 : 0.90;
    run_result a, b, c, d;
    int ok = run_model(m, &r, 2, 0, NULL, &a) == 0;
    /* 1 thread, and batches of 5 so that the sliding-window ring buffer wraps mid-prompt. */
    ok = ok && run_model(m, &r, 1, 5, NULL, &b) == 0;
    if (quick()) { /* under valgrind: the other two runs repeat code paths already covered */
        c = a;
        d = b;
    } else {
        ok = ok && run_model(m, &r, 1, 0, NULL, &c) == 0;
        ok = ok && run_model(m, &r, 2, 0, "scalar", &d) == 0; /* the reference kernels */
    }
    CHECKF(ok, "%s: evaluation failed", base);
    if (ok) {
        bool same = a.n_gen == r.n_gen && !memcmp(a.gen, r.gen, 4 * (size_t)a.n_gen);
        fprintf(stderr, "%-12s max_rel %.2e argmax_agree %.3f greedy_same %s | 1 thread: %.2e | batch-5: %.2e | "
                "scalar: %.2e\n", base, a.max_rel, a.agree, same ? "yes" : "no", c.max_rel, b.max_rel, d.max_rel);
        CHECKF(a.max_rel <= max_rel, "%s: max rel %.3e > %.0e", base, a.max_rel, max_rel);
        CHECKF(a.agree >= min_agree, "%s: argmax agreement %.3f < %.2f", base, a.agree, min_agree);
        CHECKF(c.max_rel <= max_rel && c.agree >= min_agree, "%s (1 thread): max rel %.3e, agreement %.3f",
               base, c.max_rel, c.agree);
        CHECKF(b.max_rel <= max_rel && b.agree >= min_agree, "%s (batches of 5): max rel %.3e, agreement %.3f",
               base, b.max_rel, b.agree);
        CHECKF(d.max_rel <= max_rel && d.agree >= min_agree, "%s (scalar kernels): max rel %.3e, agreement %.3f",
               base, d.max_rel, d.agree);
        if (fl)
            CHECKF(same, "%s: greedy continuation differs from the reference", base);
        CHECKF(c.n_gen == a.n_gen && !memcmp(c.gen, a.gen, 4 * (size_t)a.n_gen),
               "%s: greedy continuation differs between 1 and 2 threads", base);
    }
    gemma_model_free(m);
    gref_free(&r);
}

static void test_reference_models(void)
{
    const char *dir = gm_test_testdata();
    DIR *d = opendir(dir);
    REQUIRE(d != NULL);
    char names[64][256];
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) && n < 64;) {
        size_t len = strlen(e->d_name);
        if (len > 7 && len < 200 && (!strncmp(e->d_name, "g3-", 3) || !strncmp(e->d_name, "g4-", 3)) &&
            !strcmp(e->d_name + len - 4, ".ref")) {
            memcpy(names[n], e->d_name, len - 4);
            names[n++][len - 4] = '\0';
        }
    }
    closedir(d);
    /* The full set (../shared/testdata): 13 Gemma 3 and 4 Gemma 4 files; the repository's own
     * subset (tests/data/ref): one of each generation. */
    char full[1024];
    snprintf(full, sizeof full, "%s/g3-f32.ref", dir);
    bool is_full = access(full, R_OK) == 0;
    fprintf(stderr, "reference set: %s (%d files)\n", dir, n);
    CHECK(n >= (is_full ? 17 : 2));
    for (int i = 0; i < n; i++)
        if (!quick() || strstr(names[i], "f32") || strstr(names[i], "q8_0") || strstr(names[i], "q4_k_m") ||
            strstr(names[i], "keqv"))
            check_model(dir, names[i]);
}

/* ---- validation: patched copies of a Gemma 3 reference model ---- */

/* g3-f32 from the full reference set, or the subset's quantized file; with the facts the
 * loader must report for each. */
typedef struct g3_facts {
    int32_t n_layer, n_embd, head_dim, n_swa_layers;
    uint64_t min_weight_bits_per_param;
} g3_facts;

static bool g3_model(char *buf, size_t size, g3_facts *facts)
{
    static const char *const names[] = {"g3-f32", "g3-q4_k_m"};
    static const g3_facts known[] = {{7, 128, 32, 6, 32}, {6, 256, 64, 5, 4}};
    for (size_t i = 0; i < 2; i++)
        if (gm_test_ref_file(buf, size, &names[i], 1)) {
            if (facts)
                *facts = known[i];
            return true;
        }
    return false;
}

static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = n > 0 ? malloc((size_t)n) : NULL;
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static uint8_t *find_bytes(uint8_t *hay, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++)
        if (!memcmp(hay + i, needle, k))
            return hay + i;
    return NULL;
}

/* Copies a Gemma 3 reference model, applies patch, loads it and returns the status (message in err). */
typedef void (*patch_fn)(uint8_t *buf, size_t len);

static gemma_status load_patched(patch_fn patch, gemma_error *err)
{
    char src[1024], dst[256];
    if (!g3_model(src, sizeof src, NULL))
        return GEMMA_E_IO;
    snprintf(dst, sizeof dst, "/tmp/gemma-test-ref-%d.gguf", (int)getpid());
    size_t len;
    uint8_t *buf = read_file(src, &len);
    if (!buf)
        return GEMMA_E_IO;
    patch(buf, len);
    FILE *f = fopen(dst, "wb");
    size_t wr = f ? fwrite(buf, 1, len, f) : 0;
    if (f)
        fclose(f);
    free(buf);
    if (wr != len)
        return GEMMA_E_IO;
    gemma_model *m = NULL;
    gemma_status st = gemma_model_load(dst, NULL, &m, err);
    gemma_model_free(m);
    remove(dst);
    return st;
}

/* Sets the u32 value of key (stored as: key bytes, type u32, value). */
static void set_u32(uint8_t *buf, size_t len, const char *key, uint32_t v)
{
    uint8_t *p = find_bytes(buf, len, key);
    if (p)
        memcpy(p + strlen(key) + 4, &v, 4);
}

static void p_layers0(uint8_t *b, size_t n) { set_u32(b, n, "gemma3.block_count", 0); }
static void p_layers_big(uint8_t *b, size_t n) { set_u32(b, n, "gemma3.block_count", 100000); }
static void p_kv_heads(uint8_t *b, size_t n) { set_u32(b, n, "gemma3.attention.head_count_kv", 3); }
static void p_head_dim(uint8_t *b, size_t n) { set_u32(b, n, "gemma3.attention.key_length", 33); }
static void p_embd(uint8_t *b, size_t n) { set_u32(b, n, "gemma3.embedding_length", 64); }
static void p_tensor_name(uint8_t *b, size_t n)
{
    uint8_t *p = find_bytes(b, n, "blk.3.ffn_up.weight");
    if (p)
        p[6] = 'x'; /* "blk.3.fxn_up.weight": missing ffn_up and an unknown tensor */
}
static void p_eps_type(uint8_t *b, size_t n)
{
    const char *key = "gemma3.attention.layer_norm_rms_epsilon";
    uint8_t *p = find_bytes(b, n, key);
    if (p) {
        uint32_t t = 4; /* UINT32 instead of FLOAT32 */
        memcpy(p + strlen(key), &t, 4);
    }
}
static void p_arch(uint8_t *b, size_t n)
{
    uint8_t *a = find_bytes(b, n, "general.architecture");
    if (a)
        memcpy(a + strlen("general.architecture") + 4 + 8, "llama9", 6);
}

static void expect_model_error(patch_fn fn, gemma_status want, const char *needle)
{
    gemma_error err = {0};
    gemma_status st = load_patched(fn, &err);
    CHECKF(st == want && strstr(err.message, needle), "got %s '%s', wanted %s mentioning '%s'",
           gemma_status_name(st), err.message, gemma_status_name(want), needle);
}

static void test_validation(void)
{
    expect_model_error(p_layers0, GEMMA_E_MODEL, "block_count");
    expect_model_error(p_layers_big, GEMMA_E_MODEL, "block_count");
    expect_model_error(p_kv_heads, GEMMA_E_MODEL, "head_count_kv");
    expect_model_error(p_head_dim, GEMMA_E_MODEL, "key_length");
    expect_model_error(p_embd, GEMMA_E_MODEL, "shape");
    expect_model_error(p_tensor_name, GEMMA_E_MODEL, "ffn_up");
    expect_model_error(p_eps_type, GEMMA_E_MODEL, "layer_norm_rms_epsilon");
    expect_model_error(p_arch, GEMMA_E_UNSUPPORTED, "llama9");
}

static int abort_progress(float p, void *user)
{
    (*(int *)user)++;
    return p > 0.2f;
}

static void test_load_errors(void)
{
    gemma_error err = {0};
    gemma_model *m = (gemma_model *)1;
    CHECK(gemma_model_load("/nonexistent/model.gguf", NULL, &m, &err) != GEMMA_OK && m == NULL);
    CHECK(err.message[0] != '\0');
    char path[1024];
    g3_facts want;
    REQUIRE(g3_model(path, sizeof path, &want));
    int calls = 0;
    gemma_model_params p;
    gemma_model_params_init(&p, sizeof p);
    p.progress = abort_progress;
    p.progress_user = &calls;
    CHECK(gemma_model_load(path, &p, &m, &err) == GEMMA_E_ABORTED && m == NULL);
    CHECK(calls >= 2);
    p.progress = NULL;
    p.use_mmap = false;
    p.validate_data = true;
    REQUIRE(gemma_model_load(path, &p, &m, &err) == GEMMA_OK);
    gemma_model_info info = {.size = sizeof info};
    REQUIRE(gemma_model_get_info(m, &info) == GEMMA_OK);
    CHECK(!strcmp(info.architecture, "gemma3"));
    CHECK(info.n_layer == want.n_layer && info.n_embd == want.n_embd && info.n_head == 4 && info.n_head_kv == 2);
    CHECK(info.head_dim == want.head_dim && info.n_ff == 256 && info.sliding_window == 8);
    CHECK(info.n_swa_layers == want.n_swa_layers && info.n_vocab == 512 && info.n_ctx_train == 512);
    CHECK(info.n_params > 0 && info.weight_bytes * 8 >= info.n_params * want.min_weight_bits_per_param);
    gemma_session_params sp;
    gemma_session_params_init(&sp, sizeof sp);
    sp.n_ctx = 1024; /* more than the trained 512 */
    gemma_session *s = NULL;
    CHECK(gemma_session_create(m, &sp, &s, &err) == GEMMA_E_INVALID_ARG && s == NULL);
    gemma_session_params_init(&sp, sizeof sp);
    sp.isa = "no-such-isa";
    CHECK(gemma_session_create(m, &sp, &s, &err) == GEMMA_E_INVALID_ARG && s == NULL);
    sp.isa = NULL;
    sp.n_threads = -1;
    CHECK(gemma_session_create(m, &sp, &s, &err) == GEMMA_E_INVALID_ARG && s == NULL);
    sp.n_threads = 1;
    sp.n_batch = 64; /* local layers then keep 8 + 64 positions instead of 512 */
    REQUIRE(gemma_session_create(m, &sp, &s, &err) == GEMMA_OK);
    CHECK(gemma_session_generate(s, NULL, NULL) == GEMMA_E_INVALID_ARG); /* nothing evaluated */
    gemma_session_stats st = {.size = sizeof st};
    CHECK(gemma_session_get_stats(s, &st) == GEMMA_OK && st.n_ctx == 512 && st.n_past == 0);
    CHECK(st.kv_bytes < st.kv_bytes_full); /* 6 of 7 layers keep only the window */
    gemma_session_free(s);
    gemma_session_free(NULL);
    gemma_model_free(m);
    gemma_model_free(NULL);
}

int main(void)
{
    RUN(test_load_errors);
    RUN(test_validation);
    RUN(test_reference_models);
    TEST_MAIN_END();
}
