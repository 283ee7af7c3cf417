/* A tiny test harness: each test file is one executable; CHECK records a failure and goes
 * on, REQUIRE returns from the test. Exit status 77 means "skipped" (for example when the
 * default model has not been fetched). */
#ifndef GM_TEST_H
#define GM_TEST_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int gm_test_failures;
static int gm_test_checks;

#define CHECK(cond)                                                                    \
    do {                                                                               \
        gm_test_checks++;                                                              \
        if (!(cond)) {                                                                 \
            gm_test_failures++;                                                        \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);   \
        }                                                                              \
    } while (0)

#define CHECKF(cond, ...)                                                              \
    do {                                                                               \
        gm_test_checks++;                                                              \
        if (!(cond)) {                                                                 \
            gm_test_failures++;                                                        \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond);   \
            fprintf(stderr, __VA_ARGS__);                                              \
            fputc('\n', stderr);                                                       \
        }                                                                              \
    } while (0)

#define REQUIRE(cond)                                                                  \
    do {                                                                               \
        gm_test_checks++;                                                              \
        if (!(cond)) {                                                                 \
            gm_test_failures++;                                                        \
            fprintf(stderr, "%s:%d: REQUIRE failed: %s\n", __FILE__, __LINE__, #cond); \
            return;                                                                    \
        }                                                                              \
    } while (0)

#define RUN(fn)                                                                        \
    do {                                                                               \
        int before_ = gm_test_failures;                                                \
        fn();                                                                          \
        fprintf(stderr, "%s %s\n", gm_test_failures == before_ ? "ok  " : "FAIL", #fn); \
    } while (0)

#define TEST_MAIN_END()                                                                \
    do {                                                                               \
        fprintf(stderr, "%d checks, %d failed\n", gm_test_checks, gm_test_failures);   \
        return gm_test_failures ? 1 : 0;                                               \
    } while (0)

#define TEST_SKIP(why)                                                                 \
    do {                                                                               \
        fprintf(stderr, "skipped: %s\n", why);                                         \
        return 77;                                                                     \
    } while (0)

/* Paths from the environment CTest sets (see tests/CMakeLists.txt). */
static inline const char *gm_test_testdata(void)
{
    const char *p = getenv("GEMMA_TESTDATA");
    return p ? p : "../shared/testdata";
}

/* Writes to buf the path of the first of names ("g3-f32", ...) present as NAME.gguf in the
 * reference directory; false when none is. The full set lives in ../shared/testdata; a clone
 * of the repository alone has the subset in tests/data/ref (see tests/CMakeLists.txt). */
static inline bool gm_test_ref_file(char *buf, size_t size, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        snprintf(buf, size, "%s/%s.gguf", gm_test_testdata(), names[i]);
        if (access(buf, R_OK) == 0)
            return true;
    }
    return false;
}

static inline const char *gm_test_model(void)
{
    return getenv("GEMMA_TEST_MODEL");
}

/* Deterministic xorshift64 test data. Each test calls rnd_seed() once at start, so its data
 * does not depend on other tests. */
static uint64_t gm_test_rng = 0x9e3779b97f4a7c15ull;
static inline void rnd_seed(uint64_t seed) { gm_test_rng = seed ? seed : 1; }
static inline uint32_t rnd_u32(void)
{
    gm_test_rng ^= gm_test_rng << 13;
    gm_test_rng ^= gm_test_rng >> 7;
    gm_test_rng ^= gm_test_rng << 17;
    return (uint32_t)(gm_test_rng >> 11);
}
/* Uniform in [-1, 1). */
static inline float rnd_f(void) { return (float)((double)rnd_u32() / 2147483648.0 - 1.0); }

#endif
