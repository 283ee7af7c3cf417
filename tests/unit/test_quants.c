/* Type table, half-float conversions, activation quantizers, scalar dequantizers and scalar
 * dot products (src/tensor/types.c, quants-ref.c). The scalar kernels are the oracle for
 * every SIMD kernel, so here they are checked against first principles: exhaustive F16
 * tie cases, double-precision dot products, and the testdata models quantized from g3-f16. */
#include "test.h"

#include "gguf/gguf.h"
#include "tensor/quants.h"
#include "tensor/types.h"
#include "util/util.h"

#include <stdint.h>

/* ------------------------------------------------------------------------------------- */
/* Helpers                                                                                 */
/* ------------------------------------------------------------------------------------- */

typedef struct rng { uint64_t s; } rng;

static uint64_t rng_u64(rng *r)
{
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in [-1, 1). */
static float rng_f(rng *r) { return (float)((double)(rng_u64(r) >> 11) * 0x1.0p-53 * 2.0 - 1.0); }

static float bits_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static uint32_t f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

static const gm_type weight_types[] = {
    GM_TYPE_F32, GM_TYPE_F16, GM_TYPE_BF16, GM_TYPE_Q4_0, GM_TYPE_Q4_1, GM_TYPE_Q5_0,
    GM_TYPE_Q5_1, GM_TYPE_Q8_0, GM_TYPE_Q2_K, GM_TYPE_Q3_K, GM_TYPE_Q4_K, GM_TYPE_Q5_K, GM_TYPE_Q6_K,
};
#define N_WEIGHT_TYPES (sizeof weight_types / sizeof weight_types[0])

/* A random weight row of type t: random quant bits, sane random F16 scales. */
static void *random_weight_row(gm_type t, int64_t n, rng *r)
{
    const gm_type_traits *tt = gm_type_get(t);
    const size_t bytes = gm_row_size(tt, n);
    uint8_t *p = malloc(bytes);
    if (!p) return NULL;
    if (tt->blck == 1) { /* float types: values, then convert */
        float *x = malloc((size_t)n * sizeof *x);
        if (!x) { free(p); return NULL; }
        for (int64_t i = 0; i < n; i++) x[i] = rng_f(r) * 2.0f;
        gm_quantize_row_ref(t, x, p, n); /* F32 copy, F16/BF16 rounding */
        free(x);
        return p;
    }
    for (size_t i = 0; i < bytes; i++) p[i] = (uint8_t)rng_u64(r);
    for (size_t b = 0; b < bytes / tt->type_size; b++) {
        size_t off[2];
        for (int f = 0, nf = gm_block_scale_fields(t, off); f < nf; f++) {
            const uint16_t h = gm_f32_to_f16((rng_f(r) + 1.5f) * 0.01f);
            memcpy(p + b * tt->type_size + off[f], &h, 2);
        }
    }
    return p;
}

/* dot(dequant(w), dequant(a)) in double, as the weight type's kernel defines it. For Q8_1
 * activations the kernels use the stored F16 sum s = F16(d * sum q) for the min term, not
 * the sum of the dequantized values, so the reference does the same. */
static double ref_dot(gm_type wt, int64_t n, const void *w, const void *a)
{
    const gm_type vt = gm_type_get(wt)->vec_dot_type;
    float *dw = malloc((size_t)n * sizeof *dw), *da = malloc((size_t)n * sizeof *da);
    if (!dw || !da) { free(dw); free(da); return NAN; }
    gm_dequant_row_ref(wt, w, dw, n);
    gm_dequant_row_ref(vt, a, da, n);
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)dw[i] * da[i];
    if (vt == GM_TYPE_Q8_1) {
        const size_t wsz = gm_type_get(wt)->type_size;
        for (int64_t b = 0; b < n / QK; b++) {
            block_q8_1 ba;
            memcpy(&ba, (const uint8_t *)a + (size_t)b * sizeof ba, sizeof ba);
            const double m = gm_f16_to_f32(gm_rd_u16((const uint8_t *)w + (size_t)b * wsz + 2));
            double sa = 0;
            for (int j = 0; j < QK; j++) sa += da[b * QK + j];
            s += m * ((double)gm_f16_to_f32(ba.s) - sa);
        }
    }
    free(dw);
    free(da);
    return s;
}

/* Checks gm_vec_dot_ref for weight row w against x; returns |err| / max(|ref|, scale),
 * where scale = sum|w_i a_i| / sqrt(n) keeps a near-zero dot (cancellation) from
 * turning float rounding into a huge "relative" error. */
static double check_dot(gm_type wt, int64_t n, const void *w, const float *x)
{
    const gm_type_traits *vt = gm_type_get(gm_type_get(wt)->vec_dot_type);
    void *a = malloc(gm_row_size(vt, n));
    float *dw = malloc((size_t)n * sizeof *dw), *da = malloc((size_t)n * sizeof *da);
    double rel = INFINITY;
    if (a && dw && da) {
        gm_quantize_row_ref(gm_type_get(wt)->vec_dot_type, x, a, n);
        const double ref = ref_dot(wt, n, w, a);
        const double got = gm_vec_dot_ref(wt, n, w, a);
        gm_dequant_row_ref(wt, w, dw, n);
        gm_dequant_row_ref(gm_type_get(wt)->vec_dot_type, a, da, n);
        double abs_sum = 0;
        for (int64_t i = 0; i < n; i++) abs_sum += fabs((double)dw[i] * da[i]);
        const double denom = fmax(fabs(ref), abs_sum / sqrt((double)n));
        rel = denom > 0 ? fabs(got - ref) / denom : fabs(got - ref);
    }
    free(a);
    free(dw);
    free(da);
    return rel;
}

/* ------------------------------------------------------------------------------------- */
/* Type table                                                                              */
/* ------------------------------------------------------------------------------------- */

static void test_type_table(void)
{
    static const struct { gm_type t; uint32_t blck; size_t size; gm_type vd; } w[] = {
        {GM_TYPE_F32, 1, 4, GM_TYPE_F32}, {GM_TYPE_F16, 1, 2, GM_TYPE_F16},
        {GM_TYPE_BF16, 1, 2, GM_TYPE_BF16},
        {GM_TYPE_Q4_0, 32, sizeof(block_q4_0), GM_TYPE_Q8_0}, {GM_TYPE_Q4_1, 32, sizeof(block_q4_1), GM_TYPE_Q8_1},
        {GM_TYPE_Q5_0, 32, sizeof(block_q5_0), GM_TYPE_Q8_0}, {GM_TYPE_Q5_1, 32, sizeof(block_q5_1), GM_TYPE_Q8_1},
        {GM_TYPE_Q8_0, 32, sizeof(block_q8_0), GM_TYPE_Q8_0},
        {GM_TYPE_Q2_K, 256, sizeof(block_q2_K), GM_TYPE_Q8_K}, {GM_TYPE_Q3_K, 256, sizeof(block_q3_K), GM_TYPE_Q8_K},
        {GM_TYPE_Q4_K, 256, sizeof(block_q4_K), GM_TYPE_Q8_K}, {GM_TYPE_Q5_K, 256, sizeof(block_q5_K), GM_TYPE_Q8_K},
        {GM_TYPE_Q6_K, 256, sizeof(block_q6_K), GM_TYPE_Q8_K},
    };
    int n_weight = 0;
    for (size_t i = 0; i < sizeof w / sizeof w[0]; i++) {
        const gm_type_traits *t = gm_type_get(w[i].t);
        REQUIRE(t != NULL);
        CHECKF(t->blck == w[i].blck && t->type_size == w[i].size && t->weight && t->vec_dot_type == w[i].vd,
               "type %d (%s)", (int)w[i].t, t->name);
    }
    CHECK(gm_type_get(GM_TYPE_Q8_1)->type_size == sizeof(block_q8_1) && !gm_type_get(GM_TYPE_Q8_1)->weight);
    CHECK(gm_type_get(GM_TYPE_Q8_K)->type_size == sizeof(block_q8_K) && !gm_type_get(GM_TYPE_Q8_K)->weight);
    /* A few non-computable ones, from ggml-common.h. */
    CHECK(gm_type_get(16)->type_size == 66 && gm_type_get(23)->type_size == 136 && gm_type_get(20)->blck == 32);
    CHECK(gm_type_get(28)->type_size == 8 && gm_type_get(29)->type_size == 56);
    CHECK(gm_type_get(34)->type_size == 54 && gm_type_get(35)->type_size == 66);
    CHECK(gm_type_get(39)->blck == 32 && gm_type_get(39)->type_size == 17);
    CHECK(gm_type_get(40)->blck == 64 && gm_type_get(40)->type_size == 36);
    CHECK(gm_type_get(41)->blck == 128 && gm_type_get(42)->blck == 64 && gm_type_get(42)->type_size == 18);
    for (uint32_t id = 0; id < 64; id++) {
        const bool removed = id == 4 || id == 5 || (id >= 31 && id <= 33) || (id >= 36 && id <= 38) || id >= 43;
        const gm_type_traits *t = gm_type_get(id);
        CHECKF(removed ? t == NULL : (t && t->name && t->blck > 0 && t->type_size > 0), "id %u", id);
        if (t && t->weight) n_weight++;
    }
    CHECK(gm_type_get(UINT32_MAX) == NULL);
    CHECK(n_weight == 13);
    CHECK(strcmp(gm_type_get(GM_TYPE_Q4_K)->name, "Q4_K") == 0);
    CHECK(gm_row_size(gm_type_get(GM_TYPE_Q4_K), 512) == 288);
}

/* ------------------------------------------------------------------------------------- */
/* Half floats                                                                             */
/* ------------------------------------------------------------------------------------- */

static void test_f16_exhaustive(void)
{
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        const float f = gm_f16_to_f32((uint16_t)h);
        const uint32_t e = (h >> 10) & 0x1f, m = h & 0x3ff;
        if (e == 0x1f && m) { /* NaN stays NaN */
            const uint16_t back = gm_f32_to_f16(f);
            bad += !(isnan(f) && ((back >> 10) & 0x1f) == 0x1f && (back & 0x3ff) && (back & 0x8000) == (h & 0x8000));
            continue;
        }
        /* The value from first principles. */
        double v = e == 0x1f ? INFINITY : e == 0 ? ldexp((double)m, -24) : ldexp(1.0 + m / 1024.0, (int)e - 15);
        if (h & 0x8000) v = -v;
        bad += (double)f != v || !signbit(f) != !signbit(v);
        bad += gm_f32_to_f16(f) != h;
    }
    CHECKF(bad == 0, "%d mismatches", bad);
}

/* Every tie between two adjacent finite halves rounds to the even one, and one float ulp
 * either side of the tie rounds to the nearer one. */
static void test_f16_rounding(void)
{
    int bad = 0;
    for (uint32_t h = 0; h < 0x7c00; h++) {
        const double lo = gm_f16_to_f32((uint16_t)h);
        const double hi = h == 0x7bff ? 65536.0 : gm_f16_to_f32((uint16_t)(h + 1)); /* 0x7c00 = inf */
        const float mid = (float)((lo + hi) / 2); /* exact: 12 significant bits */
        const uint16_t even = (h & 1) ? (uint16_t)(h + 1) : (uint16_t)h;
        for (int s = 0; s < 2; s++) {
            const uint16_t sg = s ? 0x8000 : 0;
            const float m = s ? -mid : mid;
            bad += gm_f32_to_f16(m) != (even | sg);
            bad += gm_f32_to_f16(nextafterf(m, 0.0f)) != (h | sg);
            bad += gm_f32_to_f16(nextafterf(m, s ? -INFINITY : INFINITY)) != ((h + 1) | sg);
        }
    }
    CHECKF(bad == 0, "%d rounding errors", bad);
    CHECK(gm_f32_to_f16(1e10f) == 0x7c00 && gm_f32_to_f16(-1e10f) == 0xfc00);
    CHECK(gm_f32_to_f16(INFINITY) == 0x7c00 && gm_f32_to_f16(-INFINITY) == 0xfc00);
    CHECK(gm_f32_to_f16(1e-10f) == 0 && gm_f32_to_f16(-1e-10f) == 0x8000);
    CHECK(gm_f32_to_f16(ldexpf(1, -25)) == 0);                      /* tie with 0 -> even 0 */
    CHECK(gm_f32_to_f16(nextafterf(ldexpf(1, -25), 1)) == 1);      /* just above -> 2^-24 */
    CHECK(gm_f32_to_f16(65519.0f) == 0x7bff && gm_f32_to_f16(65520.0f) == 0x7c00);
    CHECK(gm_f32_to_f16(1.0f + ldexpf(1, -11)) == 0x3c00 && gm_f32_to_f16(1.0f + 3 * ldexpf(1, -11)) == 0x3c02);
#if defined(__FLT16_MANT_DIG__)
    /* Compare with the compiler's own conversion on random floats of every exponent. */
    rng r = {42};
    int bad2 = 0;
    for (int i = 0; i < 2000000; i++) {
        const uint32_t u = (uint32_t)rng_u64(&r);
        const float f = bits_f32((u & 0x807fffffu) | ((uint32_t)(96 + (u >> 23) % 48) << 23));
        const _Float16 c = (_Float16)f;
        uint16_t hc;
        memcpy(&hc, &c, 2);
        bad2 += gm_f32_to_f16(f) != hc;
    }
    CHECKF(bad2 == 0, "%d differ from _Float16", bad2);
#endif
}

static void test_bf16(void)
{
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        const float f = gm_bf16_to_f32((uint16_t)h);
        if (isnan(f)) bad += gm_f32_to_bf16(f) != (h | 0x40);
        else bad += gm_f32_to_bf16(f) != h;
    }
    CHECKF(bad == 0, "%d bf16 round trips", bad);
    CHECK(gm_f32_to_bf16(bits_f32(0x3f808000)) == 0x3f80); /* tie -> even (down) */
    CHECK(gm_f32_to_bf16(bits_f32(0x3f818000)) == 0x3f82); /* tie -> even (up) */
    CHECK(gm_f32_to_bf16(bits_f32(0x3f808001)) == 0x3f81);
    CHECK(gm_f32_to_bf16(bits_f32(0xbf818000)) == 0xbf82);
    CHECK(gm_f32_to_bf16(bits_f32(0x7f7fffff)) == 0x7f80); /* FLT_MAX rounds to inf */
    CHECK(gm_f32_to_bf16(bits_f32(0x7f800001)) == 0x7fc0); /* signalling NaN gets the quiet bit */
    CHECK(gm_f32_to_bf16(bits_f32(0xffc00000)) == 0xffc0);
    CHECK(gm_f32_to_bf16(bits_f32(0x00008000)) == 0x0000 && gm_f32_to_bf16(bits_f32(0x00018000)) == 0x0002);
}

/* ------------------------------------------------------------------------------------- */
/* Activation quantizers                                                                   */
/* ------------------------------------------------------------------------------------- */

static void test_q8_0_q8_1(void)
{
    /* amax = 127 makes the scale exactly 1: ties show the rounding rule. */
    float x[64] = {127.0f, 0.5f, 1.5f, 2.5f, -0.5f, -1.5f, -2.5f, 3.49f, -126.5f};
    block_q8_0 b0[2];
    block_q8_1 b1[2];
    gm_quantize_row_ref(GM_TYPE_Q8_0, x, b0, 32);
    gm_quantize_row_ref(GM_TYPE_Q8_1, x, b1, 32);
    /* Both follow ggml's x86 rounding: ties to even. */
    static const int8_t even[9] = {127, 0, 2, 2, 0, -2, -2, 3, -126};
    CHECK(gm_f16_to_f32(b0[0].d) == 1.0f && gm_f16_to_f32(b1[0].d) == 1.0f);
    for (int j = 0; j < 9; j++) CHECKF(b0[0].qs[j] == even[j] && b1[0].qs[j] == even[j], "j=%d", j);
    int sum = 0;
    for (int j = 0; j < 32; j++) sum += b1[0].qs[j];
    CHECK(b1[0].s == gm_f32_to_f16((float)sum));
    /* All zero: d = 0, q = 0. */
    memset(x, 0, sizeof x);
    gm_quantize_row_ref(GM_TYPE_Q8_0, x, b0, 64);
    gm_quantize_row_ref(GM_TYPE_Q8_1, x, b1, 64);
    CHECK(b0[1].d == 0 && b0[1].qs[5] == 0 && b1[1].d == 0 && b1[1].s == 0);

    /* Round trip on random data: error <= d/2 plus the F16 rounding of d. */
    rng r = {7};
    enum { N = 4096 };
    float *y = malloc(N * sizeof *y), *z = malloc(N * sizeof *z);
    block_q8_0 *q0 = malloc(N / QK * sizeof *q0);
    block_q8_1 *q1 = malloc(N / QK * sizeof *q1);
    REQUIRE(y && z && q0 && q1);
    for (int i = 0; i < N; i++) y[i] = rng_f(&r) * (float)(1 + (i / 32) % 7) * 3.0f;
    for (int pass = 0; pass < 2; pass++) {
        const gm_type t = pass ? GM_TYPE_Q8_1 : GM_TYPE_Q8_0;
        gm_quantize_row_ref(t, y, pass ? (void *)q1 : (void *)q0, N);
        gm_dequant_row_ref(t, pass ? (void *)q1 : (void *)q0, z, N);
        int bad = 0;
        for (int b = 0; b < N / QK; b++) {
            float amax = 0;
            for (int j = 0; j < QK; j++) amax = fmaxf(amax, fabsf(y[b * QK + j]));
            const double tol = amax / 127.0 * 0.5 * 1.001 + amax * ldexp(1, -11);
            for (int j = 0; j < QK; j++) bad += fabs((double)y[b * QK + j] - z[b * QK + j]) > tol;
            if (pass) {
                int s = 0;
                for (int j = 0; j < QK; j++) s += q1[b].qs[j];
                bad += q1[b].s != gm_f32_to_f16((float)s * (amax / 127.f));
            }
        }
        CHECKF(bad == 0, "%s: %d elements out of tolerance", gm_type_get(t)->name, bad);
    }
    free(y); free(z); free(q0); free(q1);
}

static void test_q8_K(void)
{
    /* The largest-magnitude element keeps its sign: max = -127 gives iscale = 1, d = 1. */
    float x[256] = {-127.0f, 0.5f, 1.5f, 2.5f, -0.5f, -2.5f, 3.5f};
    block_q8_K b;
    gm_quantize_row_ref(GM_TYPE_Q8_K, x, &b, 256);
    CHECK(b.d == 1.0f);
    static const int8_t want[7] = {-127, 0, 2, 2, 0, -2, 4};
    for (int j = 0; j < 7; j++) CHECKF(b.qs[j] == want[j], "j=%d: %d", j, b.qs[j]);
    CHECK(b.bsums[0] == -127 + 2 + 2 - 2 + 4 && b.bsums[1] == 0);
    /* Positive max: d is negative, the max element becomes -127. */
    x[0] = 127.0f;
    gm_quantize_row_ref(GM_TYPE_Q8_K, x, &b, 256);
    CHECK(b.d == -1.0f && b.qs[0] == -127 && b.qs[2] == -2 && b.qs[3] == -2);
    memset(x, 0, sizeof x);
    gm_quantize_row_ref(GM_TYPE_Q8_K, x, &b, 256);
    CHECK(b.d == 0 && b.qs[0] == 0 && b.bsums[0] == 0 && b.bsums[15] == 0);

    rng r = {11};
    enum { N = 4096 };
    float *y = malloc(N * sizeof *y), *z = malloc(N * sizeof *z);
    block_q8_K *q = malloc(N / QK_K * sizeof *q);
    REQUIRE(y && z && q);
    for (int i = 0; i < N; i++) y[i] = rng_f(&r) * (float)(1 + (i / 256) % 5);
    gm_quantize_row_ref(GM_TYPE_Q8_K, y, q, N);
    gm_dequant_row_ref(GM_TYPE_Q8_K, q, z, N);
    int bad = 0, bad_sums = 0;
    for (int bi = 0; bi < N / QK_K; bi++) {
        const double tol = fabs((double)q[bi].d) * 0.5 * 1.0001;
        for (int j = 0; j < QK_K; j++) bad += fabs((double)y[bi * QK_K + j] - z[bi * QK_K + j]) > tol;
        for (int k = 0; k < 16; k++) {
            int s = 0;
            for (int l = 0; l < 16; l++) s += q[bi].qs[16 * k + l];
            bad_sums += s != q[bi].bsums[k];
        }
    }
    CHECKF(bad == 0, "%d elements out of tolerance", bad);
    CHECK(bad_sums == 0);
    free(y); free(z); free(q);
}

static void test_float_acts(void)
{
    const float x[4] = {1.0f, -2.5f, 1.0f + ldexpf(1, -11), 3.0e-8f};
    uint16_t h[4], bh[4];
    float back[4];
    gm_quantize_row_ref(GM_TYPE_F16, x, h, 4);
    gm_quantize_row_ref(GM_TYPE_BF16, x, bh, 4);
    for (int i = 0; i < 4; i++) CHECK(h[i] == gm_f32_to_f16(x[i]) && bh[i] == gm_f32_to_bf16(x[i]));
    gm_quantize_row_ref(GM_TYPE_F32, x, back, 4);
    CHECK(memcmp(back, x, sizeof x) == 0);
    gm_dequant_row_ref(GM_TYPE_F16, h, back, 4);
    CHECK(back[0] == 1.0f && back[1] == -2.5f && back[2] == 1.0f);
}

/* ------------------------------------------------------------------------------------- */
/* Dot products                                                                            */
/* ------------------------------------------------------------------------------------- */

static void test_vec_dot_random(void)
{
    enum { N = 4096 };
    float *x = malloc(N * sizeof *x);
    REQUIRE(x);
    for (size_t ti = 0; ti < N_WEIGHT_TYPES; ti++) {
        const gm_type t = weight_types[ti];
        double worst = 0;
        for (uint64_t seed = 1; seed <= 6; seed++) {
            rng r = {seed * 1000 + ti};
            void *w = random_weight_row(t, N, &r);
            REQUIRE(w);
            /* A non-zero mean and varying magnitudes exercise the min/bsum terms. */
            for (int i = 0; i < N; i++) x[i] = rng_f(&r) * (float)(1 + (i / 256) % 3) + (seed & 1 ? 0.3f : 0.0f);
            worst = fmax(worst, check_dot(t, N, w, x));
            free(w);
        }
        /* A single block, in exactly sized buffers (ASan catches any read past n). */
        const int64_t nb1 = gm_type_get(t)->blck;
        rng r1 = {77 + ti};
        void *w1 = random_weight_row(t, nb1, &r1);
        REQUIRE(w1);
        worst = fmax(worst, check_dot(t, nb1, w1, x));
        free(w1);
        fprintf(stderr, "  vec_dot %-5s random rows: max rel err %.2e\n", gm_type_get(t)->name, worst);
        CHECKF(worst < 1e-5, "%s: %g", gm_type_get(t)->name, worst);
    }
    free(x);
}

/* Tensor data in a GGUF file need not be aligned for the blocks' 2- and 4-byte fields:
 * the kernels must give the same results from an odd address (UBSan checks alignment). */
static void test_unaligned(void)
{
    enum { N = 512 };
    float x[N], y0[N], y1[N];
    rng r = {5};
    for (int i = 0; i < N; i++) x[i] = rng_f(&r);
    for (size_t ti = 0; ti < N_WEIGHT_TYPES; ti++) {
        const gm_type t = weight_types[ti];
        const gm_type_traits *tt = gm_type_get(t), *vt = gm_type_get(tt->vec_dot_type);
        const size_t ws = gm_row_size(tt, N), as = gm_row_size(vt, N);
        void *w = random_weight_row(t, N, &r);
        uint8_t *a = malloc(as), *wu = malloc(ws + 1), *au = malloc(as + 1);
        REQUIRE(w && a && wu && au);
        gm_quantize_row_ref(tt->vec_dot_type, x, a, N);
        gm_quantize_row_ref(tt->vec_dot_type, x, au + 1, N);
        memcpy(wu + 1, w, ws);
        CHECK(memcmp(a, au + 1, as) == 0);
        gm_dequant_row_ref(t, w, y0, N);
        gm_dequant_row_ref(t, wu + 1, y1, N);
        CHECKF(memcmp(y0, y1, sizeof y0) == 0, "%s", tt->name);
        const float d0 = gm_vec_dot_ref(t, N, w, a), d1 = gm_vec_dot_ref(t, N, wu + 1, au + 1);
        CHECKF(f32_bits(d0) == f32_bits(d1), "%s", tt->name);
        free(w); free(a); free(wu); free(au);
    }
}

/* ------------------------------------------------------------------------------------- */
/* Testdata models: dequantization error against g3-f16 and dots on real rows              */
/* ------------------------------------------------------------------------------------- */

static float *dequant_tensor(const gguf_tensor *t, int64_t *n_out)
{
    const gm_type_traits *tt = gm_type_get(t->type);
    int64_t n = 1;
    for (int d = 0; d < GGUF_MAX_DIMS; d++) n *= t->ne[d];
    if (!tt || t->ne[0] % tt->blck) return NULL;
    float *y = malloc((size_t)n * sizeof *y);
    if (!y) return NULL;
    const size_t rs = gm_row_size(tt, t->ne[0]);
    for (int64_t r = 0; r < n / t->ne[0]; r++)
        gm_dequant_row_ref((gm_type)t->type, (const uint8_t *)t->data + (size_t)r * rs, y + r * t->ne[0], t->ne[0]);
    *n_out = n;
    return y;
}

/* Honest per-type bounds on the relative RMS quantization error of the testdata tensors
 * (random Gaussian-like weights, no imatrix), set with margin over the measured values
 * printed by this test. */
static double rel_rms_bound(uint32_t type)
{
    switch (type) {
    case GM_TYPE_BF16: return 0.005;
    case GM_TYPE_Q8_0: return 0.01;
    case GM_TYPE_Q6_K: return 0.03;
    case GM_TYPE_Q5_0: case GM_TYPE_Q5_1: case GM_TYPE_Q5_K: return 0.06;
    case GM_TYPE_Q4_0: case GM_TYPE_Q4_1: case GM_TYPE_Q4_K: return 0.12;
    case GM_TYPE_Q3_K: return 0.25;
    case GM_TYPE_Q2_K: return 0.45;
    case GM_TYPE_F16: case GM_TYPE_F32: return 1e-7;
    default: return 0;
    }
}

static void test_testdata(void)
{
    static const char *files[] = {"bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q2_k",
                                  "q3_k_m", "q4_k_m", "q5_k_m", "q6_k"};
    char path[4096];
    snprintf(path, sizeof path, "%s/g3-f16.gguf", gm_test_testdata());
    gguf_file *ref = NULL;
    gemma_error err = {0};
    FILE *probe = fopen(path, "rb");
    if (!probe) {
        fprintf(stderr, "  (no testdata at %s: skipping the model checks)\n", path);
        return;
    }
    fclose(probe);
    CHECKF(gguf_file_open(path, true, &ref, &err) == GEMMA_OK, "%s: %s", path, err.message);
    if (!ref) return;
    double worst[GM_TYPE_COUNT] = {0}, worst_dot = 0;
    int count[GM_TYPE_COUNT] = {0};
    rng r = {99};
    for (size_t fi = 0; fi < sizeof files / sizeof files[0]; fi++) {
        snprintf(path, sizeof path, "%s/g3-%s.gguf", gm_test_testdata(), files[fi]);
        gguf_file *f = NULL;
        CHECKF(gguf_file_open(path, true, &f, &err) == GEMMA_OK, "%s: %s", path, err.message);
        if (!f) continue;
        for (uint64_t i = 0; i < f->ctx->n_tensors; i++) {
            const gguf_tensor *t = &f->ctx->tensors[i];
            char name[256];
            snprintf(name, sizeof name, "%.*s", (int)GM_MIN(t->name.len, 255), t->name.ptr);
            const gguf_tensor *t0 = gguf_find_tensor(ref->ctx, name);
            REQUIRE(t0 != NULL);
            int64_t n = 0, n0 = 0;
            float *y = dequant_tensor(t, &n), *y0 = dequant_tensor(t0, &n0);
            CHECKF(y && y0 && n == n0, "%s %s", files[fi], name);
            if (y && y0 && n == n0) {
                double se = 0, s0 = 0;
                for (int64_t k = 0; k < n; k++) {
                    se += ((double)y[k] - y0[k]) * ((double)y[k] - y0[k]);
                    s0 += (double)y0[k] * y0[k];
                }
                const double rel = s0 > 0 ? sqrt(se / s0) : sqrt(se);
                worst[t->type] = fmax(worst[t->type], rel);
                count[t->type]++;
                CHECKF(rel <= rel_rms_bound(t->type), "%s %s (%s): rel rms %.4f", files[fi], name,
                       gm_type_get(t->type)->name, rel);
            }
            /* Dot products on the first rows of every weight matrix. */
            const gm_type_traits *tt = gm_type_get(t->type);
            if (t->n_dims >= 2 && tt && tt->weight) {
                float *x = malloc((size_t)t->ne[0] * sizeof *x);
                REQUIRE(x);
                for (int64_t row = 0; row < GM_MIN(t->ne[1], 4); row++) {
                    for (int64_t k = 0; k < t->ne[0]; k++) x[k] = rng_f(&r);
                    const void *w = (const uint8_t *)t->data + (size_t)row * gm_row_size(tt, t->ne[0]);
                    worst_dot = fmax(worst_dot, check_dot((gm_type)t->type, t->ne[0], w, x));
                }
                free(x);
            }
            free(y);
            free(y0);
        }
        gguf_file_close(f);
    }
    for (int ty = 0; ty < GM_TYPE_COUNT; ty++)
        if (count[ty]) fprintf(stderr, "  dequant %-5s vs g3-f16: %3d tensors, max rel rms %.4f (bound %.3g)\n",
                               gm_type_get((uint32_t)ty)->name, count[ty], worst[ty], rel_rms_bound((uint32_t)ty));
    fprintf(stderr, "  vec_dot on testdata rows: max rel err %.2e\n", worst_dot);
    CHECK(worst_dot < 1e-5);
    gguf_file_close(ref);
}

int main(void)
{
    RUN(test_type_table);
    RUN(test_f16_exhaustive);
    RUN(test_f16_rounding);
    RUN(test_bf16);
    RUN(test_q8_0_q8_1);
    RUN(test_q8_K);
    RUN(test_float_acts);
    RUN(test_vec_dot_random);
    RUN(test_unaligned);
    RUN(test_testdata);
    TEST_MAIN_END();
}
