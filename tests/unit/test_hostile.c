/* Hostile input, round two (docs/robustness.md, "Environment" and "Misuse"): a FIFO as the
 * model, NaN/Inf in any tensor (1-D included) found by validate_data, non-finite logits as
 * an error, the sampler's -1, the model file truncated under a model read with
 * use_mmap = false, missing special-token ids, and a session entered twice (from its own
 * on_token callback or from a second thread) or freed inside its callback.
 * The CLI side (SIGBUS exit, /dev/full, Ctrl-C, chat) is tests/cli/hostile.sh. */
#include "model-edit.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <time.h>

static uint8_t *g_base; /* a valid tiny Gemma 3 model (F32 weights: NaN reaches the logits) */
static size_t g_base_len;
static gguf_ctx *g_base_ctx;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void test_fifo(void)
{
    char path[] = "/tmp/gemma-test-fifo-XXXXXX";
    REQUIRE(mkdtemp(path) != NULL);
    char fifo[64];
    snprintf(fifo, sizeof fifo, "%s/m.gguf", path);
    REQUIRE(mkfifo(fifo, 0600) == 0);
    const double t0 = now_s();
    gemma_model *m = NULL;
    gemma_error err;
    gemma_status st = gemma_model_load(fifo, NULL, &m, &err);
    CHECKF(st == GEMMA_E_IO && msg_has(&err, "not a regular file"), "%s", err.message);
    gemma_gguf *g = NULL;
    st = gemma_gguf_open(fifo, &g, &err);
    CHECKF(st == GEMMA_E_IO && msg_has(&err, "not a regular file") && !g, "%s", err.message);
    CHECKF(now_s() - t0 < 1.0, "FIFO took %.2f s", now_s() - t0);
    unlink(fifo);
    rmdir(path);
}

/* The base model with value v written into element k of tensor name's data. */
static uint8_t *with_value(const char *name, size_t k, float v)
{
    uint8_t *buf = malloc(g_base_len);
    if (!buf)
        return NULL;
    memcpy(buf, g_base, g_base_len);
    const gguf_tensor *t = gguf_find_tensor(g_base_ctx, name);
    if (!t || t->type != GM_TYPE_F32) {
        free(buf);
        return NULL;
    }
    memcpy(buf + ((const uint8_t *)t->data - g_base) + k * sizeof v, &v, sizeof v);
    return buf;
}

static void expect_scan(const char *name, size_t k, float v, const char *what)
{
    uint8_t *buf = with_value(name, k, v);
    REQUIRE(buf);
    char path[64];
    int fd = fz_memfd(buf, g_base_len, path);
    REQUIRE(fd >= 0);
    gemma_model_params p;
    gemma_model_params_init(&p, sizeof p);
    gemma_model *m = NULL;
    gemma_error err;
    CHECKF(gemma_model_load(path, &p, &m, &err) == GEMMA_OK, "%s: without validate_data: %s", name, err.message);
    gemma_model_free(m);
    m = NULL;
    p.validate_data = true;
    gemma_status st = gemma_model_load(path, &p, &m, &err);
    CHECKF(st == GEMMA_E_MODEL && msg_has(&err, name) && msg_has(&err, what) && !m, "%s: %s", name, err.message);
    close(fd);
    free(buf);
}

static void test_validate_data(void)
{
    expect_scan("output_norm.weight", 3, NAN, "NaN");         /* 1-D, copied at bind time */
    expect_scan("blk.1.attn_q_norm.weight", 0, INFINITY, "Inf");
    expect_scan("blk.0.ffn_down.weight", 77, -INFINITY, "Inf"); /* 2-D */
    expect_scan("token_embd.weight", 5, NAN, "element 5");
}

static int count_tokens(void *user, const char *text, size_t len, gemma_token token)
{
    (void)text, (void)len, (void)token;
    ++*(int *)user;
    return 0;
}

static gemma_session *new_session(gemma_model *m)
{
    gemma_session_params sp;
    gemma_session_params_init(&sp, sizeof sp);
    sp.n_ctx = 32;
    sp.n_threads = 2;
    gemma_session *s = NULL;
    gemma_error err;
    gemma_status st = gemma_session_create(m, &sp, &s, &err);
    CHECKF(st == GEMMA_OK, "session: %s", err.message);
    return s;
}

static void test_nonfinite_logits(void)
{
    uint8_t *buf = with_value("output_norm.weight", 0, NAN);
    REQUIRE(buf);
    gemma_model *m = NULL;
    gemma_error err;
    gemma_status st = load_bytes(buf, g_base_len, true, &m, &err);
    free(buf);
    REQUIRE(st == GEMMA_OK);
    gemma_session *s = new_session(m);
    REQUIRE(s);
    const gemma_token toks[] = {2, 10, 11};
    CHECK(gemma_session_eval(s, toks, 3, NULL) == GEMMA_OK);
    const float *logits = gemma_session_logits(s);
    REQUIRE(logits && isnan(logits[0]));
    gemma_sampler_params sp;
    gemma_sampler_params_init(&sp, sizeof sp, m);
    gemma_sampler *smp = NULL;
    REQUIRE(gemma_sampler_create(&sp, gemma_vocab_size(m), &smp, &err) == GEMMA_OK);
    CHECK(gemma_sampler_sample(smp, logits) == -1);
    sp.temperature = 0;
    gemma_sampler_free(smp);
    REQUIRE(gemma_sampler_create(&sp, gemma_vocab_size(m), &smp, &err) == GEMMA_OK);
    CHECK(gemma_sampler_sample(smp, logits) == -1);
    CHECK(gemma_sampler_sample(NULL, logits) == -1);
    CHECK(gemma_sampler_sample(smp, NULL) == -1);
    gemma_sampler_free(smp);

    int n = 0;
    gemma_generate_params gp;
    gemma_generate_params_init(&gp, sizeof gp);
    gp.on_token = count_tokens;
    gp.user = &n;
    gemma_generate_result res = {.size = sizeof res};
    st = gemma_session_generate(s, &gp, &res);
    CHECKF(st == GEMMA_E_MODEL && strstr(gemma_session_last_error(s), "non-finite logit") && n == 0 &&
               res.n_tokens == 0,
           "generate: %s: %s, %d tokens", gemma_status_name(st), gemma_session_last_error(s), n);
    gemma_session_free(s);
    gemma_model_free(m);
}

/* A model read into memory does not care what happens to its file afterwards. */
static void test_no_mmap_truncation(void)
{
    char path[] = "/tmp/gemma-test-model-XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    REQUIRE(write(fd, g_base, g_base_len) == (ssize_t)g_base_len);
    close(fd);
    gemma_model_params p;
    gemma_model_params_init(&p, sizeof p);
    p.use_mmap = false;
    gemma_model *m = NULL;
    gemma_error err;
    gemma_status st = gemma_model_load(path, &p, &m, &err);
    CHECK(truncate(path, 100) == 0);
    unlink(path);
    REQUIRE(st == GEMMA_OK);
    gemma_session *s = new_session(m);
    const gemma_token toks[] = {2, 10, 11};
    CHECK(s && gemma_session_eval(s, toks, 3, NULL) == GEMMA_OK && isfinite(gemma_session_logits(s)[0]));
    gemma_session_free(s);
    gemma_model_free(m);
}

/* Without bos/eos/unk ids the vocabulary's own <bos>/<eos>/<unk> are used, never
 * llama.cpp's SPM defaults 1/2/0 (in Gemma's vocabulary 1 is <eos>). */
static void test_missing_special_ids(void)
{
    edit e = {.drop_key = "tokenizer.ggml.bos_token_id"};
    gemma_model *m = NULL, *ref = NULL;
    gemma_error err;
    REQUIRE(load_bytes(g_base, g_base_len, true, &ref, &err) == GEMMA_OK);
    REQUIRE(edit_load(g_base_ctx, e, &m, &err) == GEMMA_OK);
    CHECKF(gemma_token_bos(m) == gemma_token_bos(ref) && gemma_token_bos(m) != 1, "bos %d, want %d",
           gemma_token_bos(m), gemma_token_bos(ref));
    gemma_model_free(m);
    e = (edit){.drop_key = "tokenizer.ggml.eos_token_id"};
    REQUIRE(edit_load(g_base_ctx, e, &m, &err) == GEMMA_OK);
    CHECKF(gemma_token_eos(m) == gemma_token_eos(ref), "eos %d, want %d", gemma_token_eos(m), gemma_token_eos(ref));
    gemma_model_free(m);
    gemma_model_free(ref);
}

/* ---- session misuse -------------------------------------------------------------------- */

typedef struct reenter {
    gemma_session *s;
    gemma_status got[7];
    bool free_it;
    int calls;
} reenter;

static int reenter_on_token(void *user, const char *text, size_t len, gemma_token token)
{
    (void)text, (void)len;
    reenter *r = user;
    if (r->calls++)
        return 0;
    gemma_generate_params gp;
    gemma_generate_params_init(&gp, sizeof gp);
    gemma_chat_message msg = {.role = "user", .content = "hi"};
    r->got[0] = gemma_session_eval(r->s, &token, 1, NULL);
    r->got[1] = gemma_session_rewind(r->s, 0);
    r->got[2] = gemma_session_reset(r->s);
    r->got[3] = gemma_session_generate(r->s, &gp, NULL);
    r->got[4] = gemma_session_feed_text(r->s, "x", 1);
    r->got[5] = gemma_session_feed_chat(r->s, &msg, 1);
    r->got[6] = gemma_session_set_chat_params(r->s, NULL);
    if (r->free_it)
        gemma_session_free(r->s); /* deferred: generate frees it on its way out */
    return 0;
}

static void test_session_reentry(gemma_model *m)
{
    reenter r = {.s = new_session(m)};
    REQUIRE(r.s);
    const gemma_token toks[] = {2, 10, 11};
    REQUIRE(gemma_session_eval(r.s, toks, 3, NULL) == GEMMA_OK);
    gemma_sampler_params greedy;
    gemma_sampler_params_init(&greedy, sizeof greedy, m);
    greedy.temperature = 0;
    gemma_generate_params gp;
    gemma_generate_params_init(&gp, sizeof gp);
    gp.max_tokens = 4;
    gp.sampling = &greedy;
    gp.on_token = reenter_on_token;
    gp.user = &r;
    gemma_generate_result res = {.size = sizeof res};
    CHECK(gemma_session_generate(r.s, &gp, &res) == GEMMA_OK);
    for (int i = 0; i < 7; i++)
        CHECKF(r.got[i] == GEMMA_E_BUSY, "call %d from on_token: %s", i, gemma_status_name(r.got[i]));
    CHECKF(res.n_tokens == 4 && gemma_session_n_past(r.s) == 3 + 4, "%d tokens, n_past %d", res.n_tokens,
           gemma_session_n_past(r.s));
    CHECK(gemma_session_eval(r.s, toks, 1, NULL) == GEMMA_OK); /* usable afterwards */
    gemma_session_free(r.s);

    /* Freed inside its callback: generation stops, the session is freed when it returns
     * (ASan would report a use after free or a leak). */
    r = (reenter){.s = new_session(m), .free_it = true};
    REQUIRE(r.s);
    REQUIRE(gemma_session_eval(r.s, toks, 3, NULL) == GEMMA_OK);
    gp.max_tokens = 100;
    gemma_status st = gemma_session_generate(r.s, &gp, &res);
    CHECKF(st == GEMMA_OK && res.stop_reason == GEMMA_STOP_CANCELLED && res.n_tokens <= 2, "%s, stop %d, %d tokens",
           gemma_status_name(st), (int)res.stop_reason, res.n_tokens);
}

typedef struct racer {
    gemma_session *s;
    int ok, busy, other;
} racer;

static void *race(void *arg)
{
    racer *r = arg;
    for (int i = 0; i < 1000; i++) {
        gemma_status st = (i & 1) ? gemma_session_reset(r->s) : gemma_session_feed_text(r->s, "a b", 3);
        if (st == GEMMA_OK || st == GEMMA_E_CONTEXT_FULL)
            r->ok++;
        else if (st == GEMMA_E_BUSY)
            r->busy++;
        else
            r->other++;
    }
    return NULL;
}

/* Two threads on one session: every call either runs alone or is refused with E_BUSY. */
static void test_session_two_threads(gemma_model *m)
{
    gemma_session *s = new_session(m);
    REQUIRE(s);
    racer r[2] = {{.s = s}, {.s = s}};
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, race, &r[1]) == 0);
    race(&r[0]);
    pthread_join(t, NULL);
    CHECKF(r[0].other + r[1].other == 0 && r[0].ok + r[1].ok > 0, "ok %d/%d busy %d/%d other %d/%d", r[0].ok,
           r[1].ok, r[0].busy, r[1].busy, r[0].other, r[1].other);
    fprintf(stderr, "  two threads: %d calls ran, %d refused with E_BUSY\n", r[0].ok + r[1].ok,
            r[0].busy + r[1].busy);
    CHECK(gemma_session_reset(s) == GEMMA_OK);
    gemma_session_free(s);
}

static void test_session_misuse(void)
{
    gemma_model *m = NULL;
    gemma_error err;
    REQUIRE(load_bytes(g_base, g_base_len, true, &m, &err) == GEMMA_OK);
    test_session_reentry(m);
    test_session_two_threads(m);
    CHECK(!strcmp(gemma_status_name(GEMMA_E_BUSY), "E_BUSY") && strstr(gemma_strerror(GEMMA_E_BUSY), "busy"));
    gemma_model_free(m);
}

static bool build_base(void)
{
    char path[4096];
    static const char *const names[] = {"g3-f32", "g3-q4_k_m"}; /* only the vocabulary is taken */
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

int main(void)
{
    RUN(test_fifo);
    if (!build_base())
        TEST_SKIP("reference vectors not found (GEMMA_TESTDATA): no models to test with");
    RUN(test_validate_data);
    RUN(test_nonfinite_logits);
    RUN(test_no_mmap_truncation);
    RUN(test_missing_special_ids);
    RUN(test_session_misuse);
    gguf_free(g_base_ctx);
    free(g_base);
    TEST_MAIN_END();
}
