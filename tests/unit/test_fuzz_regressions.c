/* Replays every input in fuzz/regressions/<target>/ through the same entry point the fuzzer
 * uses (the fuzz_*.c files are compiled in here with their entry points renamed), plus a
 * few built-in inputs: empty input, and a tiny complete model through the model target's
 * whole path (load, tokenize, chat, session, forward pass, sample). A regression crashes
 * or trips a sanitizer, which fails this test. Runs under ASan/UBSan and valgrind too. */
#define LLVMFuzzerTestOneInput fz_gguf_one
#include "../../fuzz/fuzz_gguf.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fz_model_one
#include "../../fuzz/fuzz_model.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fz_tokenizer_one
#include "../../fuzz/fuzz_tokenizer.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fz_chat_one
#include "../../fuzz/fuzz_chat.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fz_chat_parse_one
#include "../../fuzz/fuzz_chat_parse.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fz_sampler_one
#include "../../fuzz/fuzz_sampler.c"
#undef LLVMFuzzerTestOneInput

#include "test.h"

#include <dirent.h>
#include <libgen.h>

typedef int (*fz_entry)(const uint8_t *, size_t);

static const struct {
    const char *dir;
    fz_entry fn;
} k_targets[] = {
    {"gguf", fz_gguf_one},         {"model", fz_model_one}, {"tokenizer", fz_tokenizer_one},
    {"chat", fz_chat_one},         {"sampler", fz_sampler_one}, {"chat_parse", fz_chat_parse_one},
};

static char g_regdir[4096];

static void find_regressions_dir(void)
{
    const char *d = getenv("GEMMA_TEST_DATA_DIR"); /* <repo>/tests/data */
    if (d && *d) {
        snprintf(g_regdir, sizeof g_regdir, "%s/../../fuzz/regressions", d);
        return;
    }
    char here[4096];
    snprintf(here, sizeof here, "%s", __FILE__);
    snprintf(g_regdir, sizeof g_regdir, "%s/../../fuzz/regressions", dirname(here));
}

static uint8_t *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    uint8_t *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 4096;
            uint8_t *p = realloc(buf, cap);
            if (!p)
                break;
            buf = p;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0)
            break;
    }
    fclose(f);
    *len = n;
    return buf;
}

static int g_replayed;

static void replay_target(size_t k)
{
    char dir[4600];
    snprintf(dir, sizeof dir, "%s/%s", g_regdir, k_targets[k].dir);
    CHECK(k_targets[k].fn((const uint8_t *)"", 0) == 0);
    DIR *dp = opendir(dir);
    if (!dp)
        return; /* no regressions for this target yet */
    struct dirent *e;
    while ((e = readdir(dp)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[4900];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        size_t len = 0;
        uint8_t *buf = read_all(path, &len);
        CHECKF(buf != NULL, "cannot read %s", path);
        if (!buf)
            continue;
        fprintf(stderr, "replay %s/%s (%zu bytes)\n", k_targets[k].dir, e->d_name, len);
        CHECK(k_targets[k].fn(buf, len) == 0);
        g_replayed++;
        free(buf);
    }
    closedir(dp);
}

static void test_replay_all(void)
{
    for (size_t k = 0; k < sizeof k_targets / sizeof *k_targets; k++)
        replay_target(k);
    fprintf(stderr, "%d regression inputs replayed from %s\n", g_replayed, g_regdir);
}

/* The model target's happy path: a tiny valid model must load and run a forward pass. */
static void test_tiny_model_path(void)
{
    char path[4096];
    static const char *const names[] = {"g3-f32", "g3-q4_k_m"}; /* for the vocabulary */
    gguf_file *f = NULL;
    gemma_error err;
    if (!gm_test_ref_file(path, sizeof path, names, 2) || gguf_file_open(path, true, &f, &err) != GEMMA_OK) {
        fprintf(stderr, "no %s: skipping the tiny-model replay\n", path);
        return;
    }
    static const uint32_t types[] = {GM_TYPE_F32, GM_TYPE_F16, GM_TYPE_Q8_0};
    for (size_t i = 0; i < sizeof types / sizeof *types; i++) {
        gw_tiny_opts o = {types[i], 2, 32, 64, 64};
        size_t len = 0;
        uint8_t *buf = gw_tiny_gemma3(f->ctx, &o, &len);
        REQUIRE(buf != NULL);
        /* the model must actually load: otherwise the fuzz seeds only test error paths */
        char mpath[64];
        int fd = fz_memfd(buf, len, mpath);
        REQUIRE(fd >= 0);
        gemma_model *m = NULL;
        gemma_status st = gemma_model_load(mpath, NULL, &m, &err);
        CHECKF(st == GEMMA_OK, "tiny %s model: %s", gm_type_get(types[i])->name, err.message);
        gemma_model_free(m);
        close(fd);
        CHECK(fz_model_one(buf, len) == 0);
        CHECK(fz_gguf_one(buf, len) == 0);
        free(buf);
    }
    gguf_file_close(f);
}

int main(void)
{
    find_regressions_dir();
    RUN(test_replay_all);
    RUN(test_tiny_model_path);
    tk_cleanup();
    ch_cleanup();
    TEST_MAIN_END();
}
