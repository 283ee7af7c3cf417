/* The sampler through the public API: greedy, seeding, distribution, truncation,
 * penalties and parameter validation. */
#include "gemma.h"
#include "test.h"

#include <float.h>
#include <stdint.h>
#include <time.h>

static gemma_sampler_params plain(void)
{
    gemma_sampler_params p;
    gemma_sampler_params_init(&p, sizeof p, NULL);
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.temperature = 1.0f;
    p.seed = 1234;
    return p;
}

static gemma_sampler *make(const gemma_sampler_params *p, int32_t n)
{
    gemma_sampler *s = NULL;
    gemma_error err = {0};
    if (gemma_sampler_create(p, n, &s, &err) != GEMMA_OK)
        fprintf(stderr, "create failed: %s\n", err.message);
    return s;
}

/* Draws n tokens into hist[0..vocab). */
static void histogram(gemma_sampler *s, const float *l, int32_t vocab, int draws, int *hist)
{
    memset(hist, 0, (size_t)vocab * sizeof *hist);
    for (int i = 0; i < draws; i++) {
        gemma_token t = gemma_sampler_sample(s, l);
        if (t >= 0 && t < vocab)
            hist[t]++;
    }
}

static double chi_square(const int *hist, const double *prob, int k, int draws)
{
    double chi = 0;
    for (int i = 0; i < k; i++) {
        double e = prob[i] * draws;
        chi += (hist[i] - e) * (hist[i] - e) / e;
    }
    return chi;
}

static void test_defaults(void)
{
    gemma_sampler_params p;
    gemma_sampler_params_init(&p, sizeof p, NULL);
    CHECK(p.temperature == 1.0f);
    CHECK(p.top_k == 64);
    CHECK(fabsf(p.top_p - 0.95f) < 1e-7f);
    CHECK(p.min_p == 0.0f);
    CHECK(p.repeat_penalty == 1.0f);
    CHECK(p.presence_penalty == 0.0f && p.frequency_penalty == 0.0f);
    gemma_sampler *s = make(&p, 100);
    CHECK(s != NULL);
    gemma_sampler_free(s);
    gemma_sampler_free(NULL);
}

static void test_greedy(void)
{
    gemma_sampler_params p;
    gemma_sampler_params_init(&p, sizeof p, NULL);
    p.temperature = 0.0f;
    float l[6] = {0.5f, 3.0f, -1.0f, 3.0f, NAN, 2.9f};
    gemma_sampler *s = make(&p, 6);
    REQUIRE(s);
    for (int i = 0; i < 10; i++)
        CHECK(gemma_sampler_sample(s, l) == 1); /* tie between 1 and 3: the lowest id */
    gemma_sampler_free(s);
    float nan_first[3] = {NAN, -5.0f, -4.0f};
    s = make(&p, 3);
    REQUIRE(s);
    CHECK(gemma_sampler_sample(s, nan_first) == 2);
    gemma_sampler_free(s);

    /* against the plain loop, with ties, NaN and -inf, on sizes around the lanes and blocks */
    static const int32_t sizes[] = {1, 15, 16, 17, 1023, 1024, 1025, 5000};
    static float big[5000];
    rnd_seed(11);
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        int32_t n = sizes[k];
        s = make(&p, n);
        REQUIRE(s);
        for (int it = 0; it < 50; it++) {
            for (int32_t i = 0; i < n; i++) {
                uint32_t r = rnd_u32() % 40;
                big[i] = r == 0 ? NAN : r == 1 || it == 0 ? -INFINITY : (float)(rnd_u32() % 8);
            }
            int32_t want = 0;
            float bv = -INFINITY;
            for (int32_t i = 0; i < n; i++)
                if (big[i] > bv)
                    bv = big[i], want = i;
            if (bv == -INFINITY)
                want = -1; /* nothing to draw: never a valid token */
            CHECKF(gemma_sampler_sample(s, big) == want, "greedy n=%d it=%d", n, it);
        }
        gemma_sampler_free(s);
    }
}

static void test_determinism(void)
{
    enum { V = 1000, N = 200 };
    static float l[V];
    uint32_t x = 7;
    for (int i = 0; i < V; i++) {
        x = x * 1664525u + 1013904223u;
        l[i] = (float)(x >> 8) / (float)(1 << 24) * 6.0f;
    }
    gemma_sampler_params p;
    gemma_sampler_params_init(&p, sizeof p, NULL);
    p.seed = 42;
    gemma_sampler *a = make(&p, V), *b = make(&p, V);
    p.seed = 43;
    gemma_sampler *c = make(&p, V);
    REQUIRE(a && b && c);
    gemma_token ta[N];
    int same = 1, differ = 0;
    for (int i = 0; i < N; i++) {
        ta[i] = gemma_sampler_sample(a, l);
        same &= ta[i] == gemma_sampler_sample(b, l);
        differ += ta[i] != gemma_sampler_sample(c, l);
    }
    CHECK(same);
    CHECK(differ > N / 2);
    gemma_sampler_reset(a); /* reset = as freshly created */
    same = 1;
    for (int i = 0; i < N; i++)
        same &= ta[i] == gemma_sampler_sample(a, l);
    CHECK(same);
    gemma_sampler_free(a);
    gemma_sampler_free(b);
    gemma_sampler_free(c);
}

static void test_distribution(void)
{
    enum { V = 8, DRAWS = 200000 };
    float l[V] = {0.0f, 1.0f, -1.0f, 2.0f, 0.5f, -0.5f, 1.5f, 0.25f};
    int hist[V];
    double prob[V];
    const float temps[2] = {1.0f, 0.5f};
    for (int t = 0; t < 2; t++) {
        gemma_sampler_params p = plain();
        p.temperature = temps[t];
        p.seed = 99 + (uint64_t)t;
        gemma_sampler *s = make(&p, V);
        REQUIRE(s);
        double sum = 0;
        for (int i = 0; i < V; i++)
            sum += prob[i] = exp(l[i] / temps[t]);
        for (int i = 0; i < V; i++)
            prob[i] /= sum;
        histogram(s, l, V, DRAWS, hist);
        double chi = chi_square(hist, prob, V, DRAWS);
        CHECKF(chi < 24.3, "temperature %g: chi-square %.2f with 7 degrees of freedom",
               (double)temps[t], chi); /* p = 0.001 */
        gemma_sampler_free(s);
    }
}

static void test_top_k(void)
{
    enum { V = 5000, DRAWS = 20000 };
    static float l[V];
    static int hist[V];
    for (int i = 0; i < V; i++)
        l[i] = (float)((i * 7919) % V) / (float)V; /* a permutation of distinct values */
    gemma_sampler_params p = plain();
    p.top_k = 5;
    p.temperature = 0.05f; /* sharp, but the five still differ in probability */
    gemma_sampler *s = make(&p, V);
    REQUIRE(s);
    histogram(s, l, V, DRAWS, hist);
    int outside = 0, kept = 0;
    for (int i = 0; i < V; i++) {
        bool top5 = l[i] >= (float)(V - 5) / (float)V;
        if (!top5)
            outside += hist[i];
        else
            kept += hist[i] > 0;
    }
    CHECK(outside == 0);
    CHECK(kept == 5);
    gemma_sampler_free(s);

    /* Ties at the cut: equal logits keep the lowest ids. */
    float t[6] = {1, 1, 1, 1, 1, 1};
    p.top_k = 3;
    p.temperature = 1.0f;
    s = make(&p, 6);
    REQUIRE(s);
    int h6[6];
    histogram(s, t, 6, 3000, h6);
    CHECK(h6[0] > 800 && h6[1] > 800 && h6[2] > 800);
    CHECK(h6[3] == 0 && h6[4] == 0 && h6[5] == 0);
    gemma_sampler_free(s);
}

static void test_top_p(void)
{
    /* probabilities 0.5, 0.3, 0.15, 0.05: top-p 0.75 keeps the first two (0.5 < 0.75 <= 0.8). */
    float l[4] = {logf(0.5f), logf(0.3f), logf(0.15f), logf(0.05f)};
    int hist[4];
    for (int k = 0; k < 2; k++) { /* with and without top-k in front */
        gemma_sampler_params p = plain();
        p.top_p = 0.75f;
        p.top_k = k ? 3 : 0;
        gemma_sampler *s = make(&p, 4);
        REQUIRE(s);
        histogram(s, l, 4, 40000, hist);
        CHECK(hist[2] == 0 && hist[3] == 0);
        double prob[2] = {0.625, 0.375};
        CHECKF(chi_square(hist, prob, 2, 40000) < 10.8, "top-p renormalisation");
        gemma_sampler_free(s);
    }

    /* A nucleus larger than the first selection round over a big vocabulary: 1000 tokens at
     * logit 5 among 50000 at 0. top-p 0.5 needs the first ceil(0.5*total/e^5) of them. */
    enum { V = 50000 };
    static float big[V];
    static int bh[V];
    for (int i = 0; i < V; i++)
        big[i] = (i % 50 == 3) ? 5.0f : 0.0f;
    double e5 = exp(5.0), total = 1000 * e5 + (V - 1000);
    int need = (int)ceil(0.5 * total / e5);
    gemma_sampler_params p = plain();
    p.top_p = 0.5f;
    gemma_sampler *s = make(&p, V);
    REQUIRE(s);
    histogram(s, big, V, 5000, bh); /* P(rank need-1 never drawn) ~ e^-7.5 */
    int bad = 0, maxrank = -1;
    for (int i = 0; i < V; i++) {
        if (!bh[i])
            continue;
        if (i % 50 != 3)
            bad += bh[i];
        else if (i / 50 > maxrank)
            maxrank = i / 50;
    }
    CHECK(bad == 0);
    CHECKF(maxrank == need - 1, "highest kept rank %d, expected %d", maxrank, need - 1);
    gemma_sampler_free(s);
}

static void test_min_p(void)
{
    float l[6] = {-3.0f, 0.0f, -1.0f, -2.0f, -0.9f, -1.6f};
    int hist[6];
    for (int k = 0; k < 2; k++) { /* sorted (after top-k) and unsorted paths */
        gemma_sampler_params p = plain();
        p.min_p = expf(-1.5f); /* keep logits >= max - 1.5 */
        p.top_k = k ? 6 - 1 : 0;
        gemma_sampler *s = make(&p, 6);
        REQUIRE(s);
        histogram(s, l, 6, 30000, hist);
        CHECK(hist[0] == 0 && hist[3] == 0 && hist[5] == 0);
        CHECK(hist[1] > 0 && hist[2] > 0 && hist[4] > 0);
        gemma_sampler_free(s);
    }
}

static void test_penalties(void)
{
    gemma_sampler_params p;
    gemma_sampler_params_init(&p, sizeof p, NULL);
    p.temperature = 0.0f;
    p.repeat_penalty = 1.5f;
    p.penalty_last_n = 2;
    float l[8] = {2.0f, 1.9f, -1.0f, -1.2f, 0, 0, 0, 0};
    float copy[8];
    memcpy(copy, l, sizeof l);
    gemma_sampler *s = make(&p, 8);
    REQUIRE(s);
    CHECK(gemma_sampler_sample(s, l) == 0);
    gemma_sampler_accept(s, 0);
    CHECK(gemma_sampler_sample(s, l) == 1); /* 2.0 / 1.5 < 1.9 */
    CHECK(memcmp(l, copy, sizeof l) == 0);  /* logits are not modified */
    gemma_sampler_accept(s, 5);
    gemma_sampler_accept(s, 6); /* 0 leaves the window of 2 */
    CHECK(gemma_sampler_sample(s, l) == 0);
    gemma_sampler_accept(s, 0);
    gemma_sampler_reset(s);
    CHECK(gemma_sampler_sample(s, l) == 0);
    gemma_sampler_free(s);

    /* Negative logits are multiplied: -1.0 * 1.5 = -1.5 < -1.2. */
    float neg[3] = {-1.0f, -1.2f, -5.0f};
    s = make(&p, 3);
    REQUIRE(s);
    gemma_sampler_accept(s, 0);
    CHECK(gemma_sampler_sample(s, neg) == 1);
    gemma_sampler_free(s);

    /* Frequency counts repeats; presence does not. */
    p.repeat_penalty = 1.0f;
    p.penalty_last_n = 8;
    p.frequency_penalty = 0.3f;
    float f[2] = {1.0f, 0.5f};
    s = make(&p, 2);
    REQUIRE(s);
    gemma_sampler_accept(s, 0);
    CHECK(gemma_sampler_sample(s, f) == 0); /* 0.7 > 0.5 */
    gemma_sampler_accept(s, 0);
    CHECK(gemma_sampler_sample(s, f) == 1); /* 0.4 < 0.5 */
    gemma_sampler_free(s);
    p.frequency_penalty = 0.0f;
    p.presence_penalty = 0.4f;
    s = make(&p, 2);
    REQUIRE(s);
    gemma_sampler_accept(s, 0);
    gemma_sampler_accept(s, 0);
    gemma_sampler_accept(s, 0);
    CHECK(gemma_sampler_sample(s, f) == 0); /* 0.6 > 0.5 whatever the count */
    gemma_sampler_accept(s, -1);             /* out of range: ignored */
    gemma_sampler_accept(s, 2);
    gemma_sampler_free(s);
}

static void expect_invalid(gemma_sampler_params p, int32_t n, const char *name)
{
    gemma_sampler *s = (gemma_sampler *)&p; /* must be reset to NULL */
    gemma_error err = {0};
    gemma_status st = gemma_sampler_create(&p, n, &s, &err);
    CHECKF(st == GEMMA_E_INVALID_ARG, "%s accepted", name);
    CHECK(s == NULL);
    CHECKF(strstr(err.message, name) != NULL, "message '%s' does not name %s", err.message, name);
}

static void test_invalid(void)
{
    gemma_sampler_params d, p;
    gemma_sampler_params_init(&d, sizeof d, NULL);
    p = d; p.size = 0; expect_invalid(p, 10, "size");
    p = d; p.size = sizeof p + 8; expect_invalid(p, 10, "size");
    p = d; p.temperature = NAN; expect_invalid(p, 10, "temperature");
    p = d; p.temperature = INFINITY; expect_invalid(p, 10, "temperature");
    p = d; p.temperature = -0.5f; expect_invalid(p, 10, "temperature");
    p = d; p.top_p = NAN; expect_invalid(p, 10, "top_p");
    p = d; p.top_p = -0.1f; expect_invalid(p, 10, "top_p");
    p = d; p.min_p = 1.5f; expect_invalid(p, 10, "min_p");
    p = d; p.min_p = NAN; expect_invalid(p, 10, "min_p");
    p = d; p.repeat_penalty = 0.0f; expect_invalid(p, 10, "repeat_penalty");
    p = d; p.presence_penalty = INFINITY; expect_invalid(p, 10, "presence_penalty");
    p = d; p.frequency_penalty = NAN; expect_invalid(p, 10, "frequency_penalty");
    p = d; p.penalty_last_n = -1; expect_invalid(p, 10, "penalty_last_n");
    p = d; p.penalty_last_n = INT32_MAX; expect_invalid(p, 10, "penalty_last_n");
    expect_invalid(d, 0, "n_vocab");
    gemma_sampler *s = NULL;
    CHECK(gemma_sampler_create(NULL, 10, &s, NULL) == GEMMA_E_INVALID_ARG);
    CHECK(gemma_sampler_create(&d, 10, NULL, NULL) == GEMMA_E_INVALID_ARG);
    /* Edge values that are valid. */
    p = d; p.top_k = -1; p.top_p = 1.0f; p.min_p = 1.0f; p.penalty_last_n = 0;
    CHECK(gemma_sampler_create(&p, 10, &s, NULL) == GEMMA_OK);
    float l[10] = {0, 1, 2, 3, 9, 3, 2, 1, 0, -1};
    CHECK(gemma_sampler_sample(s, l) == 4); /* min-p 1 keeps only the maximum */
    gemma_sampler_accept(s, 3);             /* window of 0: ignored */
    gemma_sampler_free(s);
}

/* Gemma-sized vocabulary: every path must stay far below a forward pass. */
static void test_speed(void)
{
    enum { V = 262144, N = 50 };
    float *l = malloc(V * sizeof *l);
    REQUIRE(l);
    uint32_t x = 1;
    for (int i = 0; i < V; i++) {
        x = x * 1664525u + 1013904223u;
        l[i] = (float)(x >> 8) / (float)(1 << 24) * 20.0f - 10.0f;
    }
    const struct { int k; float p; float minp; float rep; const char *name; } cfg[] = {
        {64, 0.95f, 0.0f, 1.0f, "top-k 64, top-p 0.95"},
        {64, 0.95f, 0.05f, 1.1f, "top-k 64 + penalties + min-p"},
        {0, 0.95f, 0.0f, 1.0f, "top-p 0.95 alone"},
        {0, 1.0f, 0.05f, 1.0f, "min-p 0.05 alone"},
    };
    for (size_t c = 0; c < sizeof cfg / sizeof cfg[0]; c++) {
        gemma_sampler_params p = plain();
        p.top_k = cfg[c].k;
        p.top_p = cfg[c].p;
        p.min_p = cfg[c].minp;
        p.repeat_penalty = cfg[c].rep;
        gemma_sampler *s = make(&p, V);
        REQUIRE(s);
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (int i = 0; i < N; i++) {
            gemma_token t = gemma_sampler_sample(s, l);
            CHECK(t >= 0 && t < V);
            gemma_sampler_accept(s, t);
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double ms = ((double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6) / N;
        fprintf(stderr, "  %-30s %.3f ms/token\n", cfg[c].name, ms);
        gemma_sampler_free(s);
    }
    free(l);
}

static void test_model_defaults(void)
{
    const char *path = gm_test_model();
    gemma_model *m = NULL;
    if (!path || gemma_model_load(path, NULL, &m, NULL) != GEMMA_OK) {
        fprintf(stderr, "  (no model: skipping the general.sampling.* check)\n");
        return;
    }
    gemma_sampler_params p;
    gemma_sampler_params_init(&p, sizeof p, m);
    gemma_sampler *s = NULL;
    gemma_error err = {0};
    CHECKF(gemma_sampler_create(&p, gemma_vocab_size(m), &s, &err) == GEMMA_OK, "%s", err.message);
    gemma_sampler_free(s);
    gemma_model_free(m);
}

int main(void)
{
    RUN(test_defaults);
    RUN(test_greedy);
    RUN(test_determinism);
    RUN(test_distribution);
    RUN(test_top_k);
    RUN(test_top_p);
    RUN(test_min_p);
    RUN(test_penalties);
    RUN(test_invalid);
    RUN(test_speed);
    RUN(test_model_defaults);
    TEST_MAIN_END();
}
