/* Mat-mul throughput (skipped unless GEMMA_BENCH=1): decode-shaped matvecs over the tied
 * output matrix and prompt-shaped batches over layer matrices, per ISA and thread count.
 * GEMMA_BENCH_ISA=name restricts it to one kernel set. */
#include "tensor/compute.h"
#include "tensor/quants.h"
#include "test.h"
#include "util/util.h"

#include <stdint.h>
#include <time.h>


/* Process CPU time: on a shared machine, cpu/wall below the thread count means we were
 * not running all the time and the figures understate the kernels. */
static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Byte offsets of a block's F16 scale fields (-1: none), so random blocks get finite,
 * normal scales. */
static void scale_offsets(gm_type t, int off[2])
{
    off[1] = -1;
    switch (t) {
    case GM_TYPE_Q4_1: case GM_TYPE_Q5_1: case GM_TYPE_Q4_K: case GM_TYPE_Q5_K: off[0] = 0; off[1] = 2; break;
    case GM_TYPE_Q2_K: off[0] = 80; off[1] = 82; break;
    case GM_TYPE_Q3_K: off[0] = 108; break;
    case GM_TYPE_Q6_K: off[0] = 208; break;
    default: off[0] = 0; break;
    }
}

static void *make_weights(gm_type t, int64_t K, int64_t N, size_t *rb)
{
    const gm_type_traits *tt = gm_type_get((uint32_t)t);
    *rb = gm_row_size(tt, K);
    size_t bytes = *rb * (size_t)N;
    uint8_t *w = gm_aligned_alloc(bytes);
    if (!w) return NULL;
    for (size_t i = 0; i < bytes; i++) w[i] = (uint8_t)rnd_u32();
    /* small finite F16 scales where each format keeps them */
    int off[2];
    scale_offsets(t, off);
    uint16_t h = gm_f32_to_f16(0.01f);
    for (size_t b = 0; b < bytes / tt->type_size; b++)
        for (int f = 0; f < 2; f++)
            if (off[f] >= 0) memcpy(w + b * tt->type_size + (size_t)off[f], &h, 2);
    return w;
}

static void bench(gm_isa isa, int nt, gm_type t, int64_t K, int64_t N, int n_tok, int reps)
{
    size_t rb;
    void *wd = make_weights(t, K, N, &rb);
    float *x = malloc(sizeof(float) * (size_t)(K * n_tok)), *y = malloc(sizeof(float) * (size_t)(N * n_tok));
    if (!wd || !x || !y) { fprintf(stderr, "alloc failed\n"); exit(1); }
    for (int64_t i = 0; i < K * n_tok; i++) x[i] = (float)(rnd_u32() % 2001) / 1000.f - 1.f;
    gm_tensor W = { "w", t, { K, N, 1, 1 }, rb, wd };
    gm_compute *c = NULL;
    gemma_error err;
    if (gm_compute_create(nt, isa, &c, &err) != GEMMA_OK) { fprintf(stderr, "%s\n", err.message); exit(1); }
    gm_matmul(c, &W, x, n_tok, y); /* warm-up */
    double best = 1e30, cpu = 0, wall = 0;
    for (int r = 0; r < reps; r++) {
        double t0 = gm_now(), c0 = cpu_now();
        gm_matmul(c, &W, x, n_tok, y);
        double dt = gm_now() - t0;
        cpu += cpu_now() - c0;
        wall += dt;
        if (dt < best) best = dt;
    }
    double bytes = (double)rb * (double)N, flops = 2.0 * (double)K * (double)N * n_tok;
    printf("%-12s %d thr  %-5s K=%-6lld N=%-7lld n_tok=%-4d  %8.3f ms  %7.2f GB/s  %8.1f GFLOP/s  (cpu/wall %.2f)\n",
           gm_isa_name(isa), nt, gm_type_get((uint32_t)t)->name, (long long)K, (long long)N, n_tok,
           best * 1e3, bytes / best / 1e9, flops / best / 1e9, cpu / wall);
    fflush(stdout);
    gm_compute_free(c);
    gm_aligned_free(wd);
    free(x);
    free(y);
}

int main(void)
{
    rnd_seed(88172645463325252ull);
    const char *b = getenv("GEMMA_BENCH");
    if (!b || strcmp(b, "1") != 0) TEST_SKIP("set GEMMA_BENCH=1 to run");
    const char *only = getenv("GEMMA_BENCH_ISA");
    for (int i = GM_ISA_COUNT - 1; i >= 0; i--) {
        gm_isa isa = (gm_isa)i;
        if (!gm_isa_supported(isa) || (only && gm_isa_from_name(only) != isa)) continue;
        for (int nt = 1; nt <= 2; nt++) {
            bench(isa, nt, GM_TYPE_Q8_0, 640, 262144, 1, 10);
            bench(isa, nt, GM_TYPE_Q5_0, 640, 2048, 1, 200);
            bench(isa, nt, GM_TYPE_Q4_K, 2048, 640, 1, 200);
            bench(isa, nt, GM_TYPE_Q4_1, 640, 2048, 1, 200);
            bench(isa, nt, GM_TYPE_Q5_1, 640, 2048, 1, 200);
            bench(isa, nt, GM_TYPE_Q2_K, 2048, 640, 1, 200);
            bench(isa, nt, GM_TYPE_Q3_K, 2048, 640, 1, 200);
            bench(isa, nt, GM_TYPE_Q5_K, 2048, 640, 1, 200);
            bench(isa, nt, GM_TYPE_Q5_0, 640, 2048, 512, 5);
            bench(isa, nt, GM_TYPE_Q8_0, 640, 2048, 512, 5);
            bench(isa, nt, GM_TYPE_Q4_0, 640, 2048, 512, 5);
            bench(isa, nt, GM_TYPE_Q4_K, 2048, 640, 512, 5);
            bench(isa, nt, GM_TYPE_Q6_K, 2048, 640, 512, 5);
            bench(isa, nt, GM_TYPE_Q4_1, 640, 2048, 512, 5);
            bench(isa, nt, GM_TYPE_Q5_1, 640, 2048, 512, 5);
            bench(isa, nt, GM_TYPE_Q2_K, 2048, 640, 512, 5);
            bench(isa, nt, GM_TYPE_Q3_K, 2048, 640, 512, 5);
            bench(isa, nt, GM_TYPE_Q5_K, 2048, 640, 512, 5);
        }
    }
    TEST_MAIN_END();
}
