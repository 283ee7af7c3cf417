/* Forward-pass ops: every ISA's op kernels (RMS norm parts, GEGLU through the F16 table,
 * F16 rows) against the scalar code of ops.c, and the batched attention against a naive
 * one-query-at-a-time reference with the same roundings (F16 Q, F16 probabilities). */
#include "model/ops.h"
#include "test.h"
#include "util/util.h"

#include <stdint.h>


static bool same_float(float a, float b) { return (a != a && b != b) || memcmp(&a, &b, 4) == 0; }

/* Lengths around every vector width and tail. */
static const int64_t lens[] = { 0, 1, 7, 8, 15, 16, 17, 31, 33, 64, 100, 256, 640, 2049 };
#define NLEN (sizeof lens / sizeof lens[0])

static void fill(float *x, int64_t n, float scale)
{
    for (int64_t i = 0; i < n; i++) x[i] = rnd_f() * scale;
}

static void check_isa(const gm_kernels *k, const uint16_t *tab)
{
    enum { MAXN = 2049 };
    static float x[MAXN], w[MAXN], y0[MAXN], y1[MAXN], up[MAXN];
    const char *isa = gm_isa_name(k->isa);
    for (size_t li = 0; li < NLEN; li++) {
        const int64_t n = lens[li];
        fill(x, n, 30.0f);
        fill(w, n, 2.0f);
        fill(up, n, 3.0f);
        /* edge values: the GELU closed forms' boundaries, NaN, infinities, F16 overflow */
        static const float edge[] = { -10.0f, 10.0f, -9.999f, 9.999f, NAN, INFINITY, -INFINITY, 70000.0f,
                                      -0.0f, 1e-8f };
        for (size_t e = 0; e < sizeof edge / sizeof edge[0] && (int64_t)(3 * e) < n; e++) x[3 * e] = edge[e];
        /* GEGLU: bit-identical (NaN payloads aside) */
        gm_geglu(y0, x, up, n, tab);
        gm_geglu_k(k, y1, x, up, n, tab);
        for (int64_t i = 0; i < n; i++)
            CHECKF(same_float(y0[i], y1[i]), "%s geglu n=%lld i=%lld x=%g: %g vs %g", isa, (long long)n,
                   (long long)i, (double)x[i], (double)y0[i], (double)y1[i]);
        /* F16 rounding: bit-identical */
        if (k->op.round_f16) {
            memcpy(y1, x, (size_t)n * 4);
            k->op.round_f16(y1, n);
            for (int64_t i = 0; i < n; i++)
                CHECKF(same_float(y1[i], gm_f16_to_f32(gm_f32_to_f16(x[i]))), "%s round_f16 n=%lld i=%lld", isa,
                       (long long)n, (long long)i);
        }
        /* F16 x F32 tiles against double sums (a: F16-exact values), every shape to 9 x 13 */
        if (k->op.gemm_f16_f32) {
            static uint16_t wt[9 * MAXN];
            static float at[13 * MAXN], yt[13 * 12];
            for (int64_t i = 0; i < 9 * n; i++) wt[i] = gm_f32_to_f16(rnd_f());
            for (int64_t i = 0; i < 13 * n; i++) at[i] = gm_f16_to_f32(gm_f32_to_f16(rnd_f()));
            for (int nr = 1; nr <= 9; nr += 2)
                for (int nc = 1; nc <= 13; nc += 3) {
                    k->op.gemm_f16_f32(n, wt, (size_t)n, at, (size_t)n, yt, 12, nr, nc);
                    for (int c = 0; c < nc; c++)
                        for (int r = 0; r < nr; r++) {
                            double ref = 0, mag = 0;
                            for (int64_t i = 0; i < n; i++) {
                                const double p = (double)gm_f16_to_f32(wt[(size_t)r * (size_t)n + (size_t)i]) *
                                                 (double)at[(size_t)c * (size_t)n + (size_t)i];
                                ref += p;
                                mag += fabs(p);
                            }
                            CHECKF(fabs(yt[c * 12 + r] - ref) <= 1e-5 * mag + 1e-30, "%s gemm_f16_f32 n=%lld %dx%d",
                                   isa, (long long)n, nr, nc);
                        }
                }
        }
        if (n == 0) continue;
        fill(x, n, 30.0f);
        /* RMS norm: the double sum of squares may round differently in its last bits only */
        for (int wi = 0; wi < 2; wi++) {
            gm_rmsnorm(y0, x, wi ? w : NULL, n, 1e-6f);
            gm_rmsnorm_k(k, y1, x, wi ? w : NULL, n, 1e-6f);
            for (int64_t i = 0; i < n; i++)
                CHECKF(fabsf(y0[i] - y1[i]) <= 1e-6f * fabsf(y0[i]), "%s rmsnorm n=%lld w=%d i=%lld: %g vs %g",
                       isa, (long long)n, wi, (long long)i, (double)y0[i], (double)y1[i]);
            memcpy(y1, x, (size_t)n * 4); /* in place */
            gm_rmsnorm_k(k, y1, y1, wi ? w : NULL, n, 1e-6f);
            for (int64_t i = 0; i < n; i++)
                CHECK(fabsf(y0[i] - y1[i]) <= 1e-6f * fabsf(y0[i]));
        }
        if (k->op.sum_sq) {
            double ref = 0;
            for (int64_t i = 0; i < n; i++) ref += (double)(x[i] * x[i]);
            CHECK(fabs(k->op.sum_sq(x, n) - ref) <= 1e-12 * ref);
        }
    }
}

/* Naive attention of one query head: the pre-batching algorithm, in order. */
static void attn_naive(const gm_attn *a, int32_t t, int32_t h, float *o)
{
    const int32_t hd = a->head_dim, p = a->pos0 + t;
    const int32_t k0 = (a->n_swa > 0 && p - a->n_swa + 1 > 0) ? p - a->n_swa + 1 : 0, nk = p - k0 + 1;
    const int32_t g = h / (a->n_head / a->n_head_kv);
    const size_t kv_dim = (size_t)a->n_head_kv * (size_t)hd;
    float *s = malloc(sizeof(float) * (size_t)nk), q[512];
    for (int32_t d = 0; d < hd; d++)
        q[d] = gm_f16_to_f32(gm_f32_to_f16(a->q[(size_t)t * a->q_stride + (size_t)h * (size_t)hd + (size_t)d]));
    for (int32_t i = 0; i < nk; i++) {
        const uint16_t *kr = a->k + (size_t)((k0 + i) % a->cells) * kv_dim + (size_t)g * (size_t)hd;
        double acc = 0;
        for (int32_t d = 0; d < hd; d++) acc += (double)gm_f16_to_f32(kr[d]) * (double)q[d];
        s[i] = (float)acc;
    }
    gm_softmax(s, nk);
    for (int32_t d = 0; d < hd; d++) {
        const uint16_t *vr = a->vt + ((size_t)g * (size_t)hd + (size_t)d) * (size_t)a->cells;
        double acc = 0;
        for (int32_t i = 0; i < nk; i++)
            acc += (double)gm_f16_to_f32(vr[(k0 + i) % a->cells]) * (double)gm_f16_to_f32(gm_f32_to_f16(s[i]));
        o[d] = (float)acc;
    }
    free(s);
}

/* One configuration: n_tok queries from pos0 over a cache of `cells` cells (a ring when
 * cells < pos0 + n_tok), at 1 and 2 "threads" (the task called per thread in turn). */
static void check_attn(const gm_kernels *k, int32_t n_tok, int32_t pos0, int32_t n_swa, int32_t cells, int32_t q_block,
                       int32_t n_head, int32_t n_head_kv, int32_t hd)
{
    const int32_t max_keys = pos0 + n_tok, nth = 2;
    const size_t qd = (size_t)n_head * (size_t)hd, kvd = (size_t)n_head_kv * (size_t)hd;
    float *q = malloc(sizeof(float) * (size_t)n_tok * qd), *out = malloc(sizeof(float) * (size_t)n_tok * qd);
    float *ref = malloc(sizeof(float) * qd);
    uint16_t *kc = malloc(2 * (size_t)cells * kvd), *vt = malloc(2 * (size_t)cells * kvd);
    float *scores = malloc(sizeof(float) * (size_t)nth * (size_t)q_block * (size_t)max_keys);
    float *qr = malloc(sizeof(float) * (size_t)nth * (size_t)q_block * (size_t)hd);
    float *tmp = malloc(sizeof(float) * (size_t)nth * (size_t)q_block * (size_t)hd);
    REQUIRE(q && out && ref && kc && vt && scores && qr && tmp);
    for (size_t i = 0; i < (size_t)n_tok * qd; i++) q[i] = rnd_f() * 0.3f;
    for (size_t i = 0; i < (size_t)cells * kvd; i++) {
        kc[i] = gm_f32_to_f16(rnd_f() * 2.0f);
        vt[i] = gm_f32_to_f16(rnd_f());
    }
    gm_attn a = { .q = q, .q_stride = qd, .out = out, .out_stride = qd, .n_tok = n_tok, .pos0 = pos0,
                  .n_head = n_head, .n_head_kv = n_head_kv, .head_dim = hd, .n_swa = n_swa, .k = kc, .vt = vt,
                  .cells = cells, .q_block = q_block, .scores = scores, .qr = qr, .tmp = tmp,
                  .max_keys = max_keys, .kern = k };
    for (int nt = 1; nt <= nth; nt++) {
        for (size_t i = 0; i < (size_t)n_tok * qd; i++) out[i] = NAN;
        for (int ith = 0; ith < nt; ith++) gm_attn_task(&a, ith, nt);
        for (int32_t t = 0; t < n_tok; t++)
            for (int32_t h = 0; h < n_head; h++) {
                attn_naive(&a, t, h, ref);
                const float *o = out + (size_t)t * qd + (size_t)h * (size_t)hd;
                for (int32_t d = 0; d < hd; d++)
                    CHECKF(fabsf(o[d] - ref[d]) <= 2e-3f, "%s attn tok=%d pos0=%d swa=%d cells=%d qb=%d h=%d d=%d: %g vs %g",
                           gm_isa_name(k->isa), t, pos0, n_swa, cells, q_block, h, d, (double)o[d], (double)ref[d]);
            }
    }
    free(q); free(out); free(ref); free(kc); free(vt); free(scores); free(qr); free(tmp);
}

static void test_ops_all_isas(void)
{
    uint16_t *tab = malloc(65536 * 2);
    REQUIRE(tab);
    gm_gelu_table_init(tab);
    for (int i = 0; i < GM_ISA_COUNT; i++) {
        if (!gm_isa_supported((gm_isa)i)) continue;
        gm_kernels k;
        gm_kernels_init(&k, (gm_isa)i);
        check_isa(&k, tab);
        fprintf(stderr, "checked ops on %s\n", gm_isa_name(k.isa));
    }
    free(tab);
}

static void test_attn_all_isas(void)
{
    for (int i = 0; i < GM_ISA_COUNT; i++) {
        if (!gm_isa_supported((gm_isa)i)) continue;
        gm_kernels k;
        gm_kernels_init(&k, (gm_isa)i);
        check_attn(&k, 1, 0, 0, 8, 1, 2, 1, 16);        /* first token */
        check_attn(&k, 1, 37, 0, 64, 1, 4, 2, 40);      /* decode step, odd key count */
        check_attn(&k, 40, 0, 0, 40, 16, 4, 1, 64);     /* prompt in blocks with a partial one */
        check_attn(&k, 23, 10, 8, 31, 8, 2, 2, 24);     /* sliding window, ring wraps */
        check_attn(&k, 9, 50, 16, 25, 4, 3, 1, 17);     /* window, wrap, odd head size */
        check_attn(&k, 5, 3, 0, 8, 32, 1, 1, 256);      /* block larger than the batch */
        fprintf(stderr, "checked attention on %s\n", gm_isa_name(k.isa));
    }
}

int main(void)
{
    rnd_seed(0x853c49e6748fea9bull);
    RUN(test_ops_all_isas);
    RUN(test_attn_all_isas);
    TEST_MAIN_END();
}
