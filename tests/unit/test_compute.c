/* Thread pool and mat-mul drivers: gm_parallel under stress, gm_matmul / gm_matmul_rows at
 * 1, 2 and 3 threads on every ISA against a double-precision reference. */
#include "tensor/compute.h"
#include "tensor/quants.h"
#include "test.h"
#include "util/util.h"

#include <stdatomic.h>
#include <stdint.h>


typedef struct count_arg {
    _Atomic int64_t sum;
    _Atomic int calls[8];
} count_arg;

static void count_fn(void *p, int ith, int nth)
{
    count_arg *a = p;
    atomic_fetch_add(&a->sum, ith + 1);
    atomic_fetch_add(&a->calls[ith], 1);
    (void)nth;
}

static void test_pool(void)
{
    for (int nt = 1; nt <= 4; nt++) {
        gm_compute *c = NULL;
        gemma_error err;
        REQUIRE(gm_compute_create(nt, GM_ISA_SCALAR, &c, &err) == GEMMA_OK);
        CHECK(gm_compute_threads(c) == nt);
        count_arg a;
        memset(&a, 0, sizeof a);
        const int iters = 5000;
        for (int i = 0; i < iters; i++) gm_parallel(c, count_fn, &a);
        CHECK(atomic_load(&a.sum) == (int64_t)iters * nt * (nt + 1) / 2);
        for (int i = 0; i < nt; i++) CHECK(atomic_load(&a.calls[i]) == iters);
        gm_compute_free(c);
    }
    gm_compute_free(NULL);
    gm_compute *c = NULL;
    gemma_error err;
    CHECK(gm_compute_create(0, GM_ISA_SCALAR, &c, &err) == GEMMA_E_INVALID_ARG && c == NULL);
    CHECK(gm_compute_create(1, GM_ISA_COUNT, &c, &err) != GEMMA_OK && c == NULL);
}

/* Random weights of type t with finite scales (the quantized bytes are all valid). */
static void *make_weights(gm_type t, int64_t K, int64_t N, size_t *row_bytes)
{
    const gm_type_traits *tt = gm_type_get((uint32_t)t);
    *row_bytes = gm_row_size(tt, K);
    uint8_t *w = malloc(*row_bytes * (size_t)N);
    if (!w) return NULL;
    if (t == GM_TYPE_F32 || t == GM_TYPE_F16) {
        for (int64_t i = 0; i < K * N; i++) {
            float v = rnd_f();
            if (t == GM_TYPE_F32) memcpy(w + 4 * i, &v, 4);
            else { uint16_t h = gm_f32_to_f16(v); memcpy(w + 2 * i, &h, 2); }
        }
        return w;
    }
    for (size_t i = 0; i < *row_bytes * (size_t)N; i++) w[i] = (uint8_t)rnd_u32();
    size_t off[2];
    const int nf = gm_block_scale_fields(t, off);
    for (size_t b = 0; b < (size_t)(K / tt->blck) * (size_t)N; b++)
        for (int f = 0; f < nf; f++) {
            uint16_t h = gm_f32_to_f16(0.01f + 0.05f * (rnd_f() + 1.f));
            memcpy(w + b * tt->type_size + off[f], &h, 2);
        }
    return w;
}

/* y_ref[t][r] = sum_k W[r][k] * deq(quant(x[t]))[k], in double. */
static void ref_matmul(const gm_tensor *W, int64_t r0, int64_t r1, const float *x, int n_tok,
                       double *y, double *yabs)
{
    const gm_type_traits *tt = gm_type_get((uint32_t)W->type);
    const gm_type_traits *at = gm_type_get((uint32_t)tt->vec_dot_type);
    int64_t K = W->ne[0];
    float *wr = malloc(sizeof(float) * (size_t)K), *xq = malloc(sizeof(float) * (size_t)K);
    uint8_t *q = malloc(gm_row_size(at, K));
    for (int t = 0; t < n_tok; t++) {
        gm_quantize_row_ref(tt->vec_dot_type, x + (size_t)t * (size_t)K, q, K);
        gm_dequant_row_ref(tt->vec_dot_type, q, xq, K);
        for (int64_t r = r0; r < r1; r++) {
            gm_tensor_get_row(W, r, wr);
            double s = 0, sa = 0;
            for (int64_t k = 0; k < K; k++) {
                s += (double)wr[k] * xq[k];
                sa += fabs((double)wr[k] * xq[k]);
            }
            y[(size_t)t * (size_t)(r1 - r0) + (size_t)(r - r0)] = s;
            yabs[(size_t)t * (size_t)(r1 - r0) + (size_t)(r - r0)] = sa;
        }
    }
    free(wr); free(xq); free(q);
}

static void check_matmul(gm_type t, int64_t K, int64_t N)
{
    size_t rb;
    void *wd = make_weights(t, K, N, &rb);
    REQUIRE(wd);
    gm_tensor W = { "w", t, { K, N, 1, 1 }, rb, wd };
    static const int toks[] = { 1, 3, 8, 70 };
    const int maxt = 70;
    float *x = malloc(sizeof(float) * (size_t)(K * maxt));
    float *y = malloc(sizeof(float) * (size_t)(N * maxt));
    double *yr = malloc(sizeof(double) * (size_t)(N * maxt)), *ya = malloc(sizeof(double) * (size_t)(N * maxt));
    REQUIRE(x && y && yr && ya);
    for (int64_t i = 0; i < K * maxt; i++) x[i] = rnd_f();
    for (int isa = 0; isa < GM_ISA_COUNT; isa++) {
        if (!gm_isa_supported((gm_isa)isa)) continue;
        for (int nt = 1; nt <= 3; nt++) {
            gm_compute *c = NULL;
            gemma_error err;
            REQUIRE(gm_compute_create(nt, (gm_isa)isa, &c, &err) == GEMMA_OK);
            for (size_t ti = 0; ti < sizeof toks / sizeof toks[0]; ti++) {
                int n_tok = toks[ti];
                /* whole matrix, then an unaligned row range */
                for (int part = 0; part < 2; part++) {
                    int64_t r0 = part ? 3 : 0, r1 = part ? N - 2 : N;
                    ref_matmul(&W, r0, r1, x, n_tok, yr, ya);
                    gemma_status st = part ? gm_matmul_rows(c, &W, r0, r1, x, n_tok, y)
                                           : gm_matmul(c, &W, x, n_tok, y);
                    CHECK(st == GEMMA_OK);
                    int bad = 0;
                    for (int64_t i = 0; i < (r1 - r0) * n_tok; i++)
                        if (fabs(y[i] - yr[i]) > 2e-5 * ya[i] + 1e-6) {
                            if (bad++ < 3)
                                fprintf(stderr, "%s %s nt=%d n_tok=%d part=%d i=%lld: %.9g vs %.9g\n",
                                        gm_isa_name((gm_isa)isa), gm_type_get((uint32_t)t)->name, nt, n_tok, part,
                                        (long long)i, y[i], yr[i]);
                        }
                    CHECK(bad == 0);
                }
            }
            /* bad arguments are refused, not crashed on */
            CHECK(gm_matmul_rows(c, &W, 5, 5, x, 1, y) != GEMMA_OK);
            CHECK(gm_matmul_rows(c, &W, 0, N + 1, x, 1, y) != GEMMA_OK);
            CHECK(gm_matmul(c, &W, x, 0, y) != GEMMA_OK);
            gm_compute_free(c);
        }
    }
    free(wd); free(x); free(y); free(yr); free(ya);
}

static void test_matmul(void)
{
    check_matmul(GM_TYPE_Q8_0, 320, 37);
    check_matmul(GM_TYPE_Q5_0, 640, 21);
    check_matmul(GM_TYPE_Q4_0, 96, 45);
    check_matmul(GM_TYPE_Q8_0, 4096, 9);  /* 64 block pairs: prompt columns in chunks */
    check_matmul(GM_TYPE_Q5_0, 1120, 13); /* odd block count */
    check_matmul(GM_TYPE_Q4_K, 512, 19);
    check_matmul(GM_TYPE_Q6_K, 256, 23);
    check_matmul(GM_TYPE_F32, 100, 13);
    check_matmul(GM_TYPE_F16, 130, 11);
}

static void test_get_row(void)
{
    size_t rb;
    void *wd = make_weights(GM_TYPE_Q8_0, 64, 3, &rb);
    REQUIRE(wd);
    gm_tensor W = { "w", GM_TYPE_Q8_0, { 64, 3, 1, 1 }, rb, wd };
    float a[64], b[64];
    gm_tensor_get_row(&W, 2, a);
    gm_dequant_row_ref(GM_TYPE_Q8_0, (uint8_t *)wd + 2 * rb, b, 64);
    CHECK(memcmp(a, b, sizeof a) == 0);
    free(wd);
}

/* gm_matmul_multi gives exactly gm_matmul's results, fused (same type and K, few tokens)
 * or not (mixed types, prompt batches). */
static void test_matmul_multi(void)
{
    static const gm_type types[3][3] = { { GM_TYPE_Q5_0, GM_TYPE_Q5_0, GM_TYPE_Q5_0 },
                                         { GM_TYPE_Q8_0, GM_TYPE_Q4_K, GM_TYPE_Q8_0 },
                                         { GM_TYPE_Q4_K, GM_TYPE_Q4_K, GM_TYPE_F16 } };
    static const int64_t rows[3] = { 100, 36, 260 };
    const int64_t K = 512;
    for (int isa = 0; isa < GM_ISA_COUNT; isa++) {
        if (!gm_isa_supported((gm_isa)isa)) continue;
        for (int nt = 1; nt <= 3; nt++) {
            gm_compute *c = NULL;
            gemma_error err;
            REQUIRE(gm_compute_create(nt, (gm_isa)isa, &c, &err) == GEMMA_OK);
            for (int set = 0; set < 3; set++) {
                gm_tensor W[3];
                const gm_tensor *Wp[3];
                void *wd[3];
                for (int i = 0; i < 3; i++) {
                    size_t rb;
                    wd[i] = make_weights(types[set][i], K, rows[i], &rb);
                    REQUIRE(wd[i]);
                    W[i] = (gm_tensor){ "w", types[set][i], { K, rows[i], 1, 1 }, rb, wd[i] };
                    Wp[i] = &W[i];
                }
                static const int toks[] = { 1, 2, 9 };
                for (size_t ti = 0; ti < sizeof toks / sizeof toks[0]; ti++) {
                    const int n = toks[ti];
                    float *x = malloc(sizeof(float) * (size_t)(K * n));
                    float *y[3], *r[3];
                    REQUIRE(x);
                    for (int64_t i = 0; i < K * n; i++) x[i] = rnd_f();
                    for (int i = 0; i < 3; i++) {
                        y[i] = malloc(sizeof(float) * (size_t)(rows[i] * n));
                        r[i] = malloc(sizeof(float) * (size_t)(rows[i] * n));
                        REQUIRE(y[i] && r[i]);
                        CHECK(gm_matmul(c, &W[i], x, n, r[i]) == GEMMA_OK);
                    }
                    CHECK(gm_matmul_multi(c, Wp, 3, x, n, y) == GEMMA_OK);
                    for (int i = 0; i < 3; i++) {
                        CHECKF(memcmp(y[i], r[i], sizeof(float) * (size_t)(rows[i] * n)) == 0,
                               "multi isa=%d nt=%d set=%d n=%d matrix %d", isa, nt, set, n, i);
                        free(y[i]);
                        free(r[i]);
                    }
                    free(x);
                }
                for (int i = 0; i < 3; i++) free(wd[i]);
            }
            gm_compute_free(c);
        }
    }
}

int main(void)
{
    rnd_seed(0x2545F4914F6CDD1Dull);
    RUN(test_pool);
    RUN(test_matmul);
    RUN(test_matmul_multi);
    RUN(test_get_row);
    TEST_MAIN_END();
}
