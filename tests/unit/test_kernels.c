/* Every kernel entry (quantize, vec_dot, gemm) of every ISA this machine supports against
 * the scalar reference table, on random and edge-case data. */
#include "tensor/kernels.h"
#include "tensor/quants.h"
#include "test.h"
#include "util/util.h"

#include <stdint.h>


/* mode 0: random; 1: zeros; 2: extreme quants (all bytes 0x00 / 0xFF / 0x80 patterns). */
static void make_weights(gm_type t, uint8_t *w, int64_t n, int mode)
{
    const gm_type_traits *tt = gm_type_get((uint32_t)t);
    size_t bytes = gm_row_size(tt, n);
    if (t == GM_TYPE_F32 || t == GM_TYPE_F16 || t == GM_TYPE_BF16) {
        for (int64_t i = 0; i < n; i++) {
            float v = mode == 1 ? 0.f : mode == 2 ? (i & 1 ? 60000.f : -60000.f) : rnd_f();
            if (t == GM_TYPE_F32) memcpy(w + 4 * i, &v, 4);
            else {
                uint16_t h = t == GM_TYPE_F16 ? gm_f32_to_f16(v) : gm_f32_to_bf16(v);
                memcpy(w + 2 * i, &h, 2);
            }
        }
        return;
    }
    static const uint8_t pat[3] = { 0x00, 0xFF, 0x80 };
    for (size_t i = 0; i < bytes; i++)
        w[i] = mode == 1 ? 0 : mode == 2 ? pat[(i / 7) % 3] : (uint8_t)rnd_u32();
    size_t off[2];
    const int nf = gm_block_scale_fields(t, off);
    for (int64_t b = 0; b < n / tt->blck; b++)
        for (int f = 0; f < nf; f++) {
            float v = mode == 2 ? (f ? -0.5f : 2.f) : rnd_f() * 0.1f;
            uint16_t h = gm_f32_to_f16(v);
            memcpy(w + (size_t)b * tt->type_size + off[f], &h, 2);
        }
}

/* mode 0: random; 1: zeros; 2: large with ties and max magnitudes of both signs. */
static void make_acts(float *x, int64_t n, int mode)
{
    for (int64_t i = 0; i < n; i++) {
        if (mode == 1) x[i] = 0.f;
        else if (mode == 2) x[i] = (i % 5 == 0) ? 100.f : (i % 5 == 1) ? -100.f : (float)(i % 7) * 10.f;
        else x[i] = rnd_f() * (i % 3 == 0 ? 8.f : 1.f);
    }
}

/* |ref - got| within 1e-5 of the sum of absolute products (plus a tiny absolute floor). */
static bool close_enough(float ref, float got, double abs_sum)
{
    double tol = 1e-5 * abs_sum + 1e-30;
    return fabs((double)ref - (double)got) <= tol;
}

static double abs_dot(gm_type t, int64_t n, const void *w, const void *a, float *tw, float *ta)
{
    const gm_type_traits *tt = gm_type_get((uint32_t)t);
    gm_dequant_row_ref(t, w, tw, n);
    gm_dequant_row_ref(tt->vec_dot_type, a, ta, n);
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += fabs((double)tw[i] * (double)ta[i]);
    return s;
}

static void check_type(const gm_kernels *ref, const gm_kernels *k, gm_type t)
{
    const gm_type_traits *tt = gm_type_get((uint32_t)t);
    const gm_type_traits *at = gm_type_get((uint32_t)tt->vec_dot_type);
    const gm_type_kernels *kr = &ref->type[t], *kk = &k->type[t];
    const int64_t mult = tt->blck > at->blck ? tt->blck : at->blck;
    const int64_t lens[] = { mult, 2 * mult, 3 * mult, mult == 1 ? 37 : 5 * mult,
                             mult == 1 ? 640 : mult == 32 ? 640 : 2560 };
    for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
        int64_t n = lens[li];
        size_t wrow = gm_row_size(tt, n), arow = gm_row_size(at, n);
        enum { MAXR = 9, MAXC = 7 };
        uint8_t *w = malloc(wrow * MAXR), *a = malloc(arow * MAXC), *a2 = malloc(arow);
        float *x = malloc(sizeof(float) * (size_t)n * MAXC), *tw = malloc(sizeof(float) * (size_t)n),
              *ta = malloc(sizeof(float) * (size_t)n), *y = malloc(sizeof(float) * MAXR * MAXC * 2);
        REQUIRE(w && a && a2 && x && tw && ta && y);
        for (int mode = 0; mode < 3; mode++) {
            for (int r = 0; r < MAXR; r++) make_weights(t, w + r * wrow, n, r == 0 ? mode : 0);
            for (int c = 0; c < MAXC; c++) make_acts(x + c * n, n, c == 0 ? mode : 0);
            /* quantize: bit-identical to the reference */
            for (int c = 0; c < MAXC; c++) {
                kr->quantize(x + c * n, a + c * arow, n);
                kk->quantize(x + c * n, a2, n);
                CHECKF(memcmp(a + c * arow, a2, arow) == 0, "%s %s quantize n=%lld mode=%d", gm_isa_name(k->isa),
                       tt->name, (long long)n, mode);
            }
            /* vec_dot */
            for (int r = 0; r < MAXR; r++)
                for (int c = 0; c < MAXC; c++) {
                    float s0, s1;
                    kr->vec_dot(n, &s0, w + r * wrow, a + c * arow);
                    kk->vec_dot(n, &s1, w + r * wrow, a + c * arow);
                    double as = abs_dot(t, n, w + r * wrow, a + c * arow, tw, ta);
                    CHECKF(close_enough(s0, s1, as), "%s %s vec_dot n=%lld mode=%d r=%d c=%d: %.9g vs %.9g",
                           gm_isa_name(k->isa), tt->name, (long long)n, mode, r, c, s0, s1);
                }
            /* gemm, every tile shape up to MAXR x MAXC, output stride wider than nr */
            if (!kk->gemm) continue;
            for (int nr = 1; nr <= MAXR; nr++)
                for (int nc = 1; nc <= MAXC; nc++) {
                    size_t ldy = (size_t)nr + 2;
                    for (size_t i = 0; i < MAXR * MAXC * 2; i++) y[i] = -12345.f;
                    kk->gemm(n, w, wrow, a, arow, y, ldy, nr, nc);
                    for (int c = 0; c < nc; c++)
                        for (int r = 0; r < nr; r++) {
                            float s0;
                            kr->vec_dot(n, &s0, w + r * wrow, a + c * arow);
                            double as = abs_dot(t, n, w + r * wrow, a + c * arow, tw, ta);
                            float got = y[(size_t)c * ldy + r];
                            CHECKF(close_enough(s0, got, as), "%s %s gemm n=%lld %dx%d at (%d,%d): %.9g vs %.9g",
                                   gm_isa_name(k->isa), tt->name, (long long)n, nr, nc, r, c, s0, got);
                        }
                    /* the padding between rows of y is untouched */
                    for (int c = 0; c < nc; c++)
                        for (size_t r = (size_t)nr; r < ldy && c + 1 < nc; r++)
                            CHECK(y[(size_t)c * ldy + r] == -12345.f);
                }
        }
        free(w); free(a); free(a2); free(x); free(tw); free(ta); free(y);
    }
}

/* Activation rows with non-finite or tiny blocks (docs/robustness.md): every ISA's quantizer
 * writes the scalar bytes (NaN scale for a block with NaN/Inf, zeros for a tiny block), and
 * every dot and gemm column through a NaN-scaled block is NaN, the others finite. Under the
 * sanitizer build this is also the UBSan check (AVX-512 Q8_K once summed INT_MIN lanes). */
static void check_nonfinite(const gm_kernels *ref, const gm_kernels *k, gm_type t)
{
    const gm_type_traits *tt = gm_type_get((uint32_t)t), *at = gm_type_get((uint32_t)tt->vec_dot_type);
    if (tt->blck == 1) return; /* float activations carry the values themselves */
    enum { N = 512, C = 6 };
    const size_t wrow = gm_row_size(tt, N), arow = gm_row_size(at, N);
    uint8_t *w = malloc(wrow * 4), *a = malloc(arow * C), *a2 = malloc(arow);
    float *x = malloc(sizeof(float) * N * C), y[4 * C];
    REQUIRE(w && a && a2 && x);
    for (int r = 0; r < 4; r++) make_weights(t, w + r * wrow, N, 0);
    const float special[C] = { INFINITY, -INFINITY, NAN, -NAN, 1e-40f, 0.f };
    for (int c = 0; c < C; c++) {
        make_acts(x + c * N, N, 0);
        if (c >= 4) /* a tiny (subnormal) or zero first block */
            for (int j = 0; j < (int)at->blck; j++) x[c * N + j] = j % 3 ? 0.f : special[c];
        else
            x[c * N + 37 * c + 3] = special[c];
        ref->type[t].quantize(x + c * N, a + c * arow, N);
        k->type[t].quantize(x + c * N, a2, N);
        CHECKF(memcmp(a + c * arow, a2, arow) == 0, "%s %s quantize special %d", gm_isa_name(k->isa), tt->name, c);
        for (int r = 0; r < 4; r++) {
            float s0, s1;
            ref->type[t].vec_dot(N, &s0, w + r * wrow, a + c * arow);
            k->type[t].vec_dot(N, &s1, w + r * wrow, a + c * arow);
            CHECKF(isnan(s0) == (c < 4) && isnan(s1) == (c < 4), "%s %s dot special %d: %g %g",
                   gm_isa_name(k->isa), tt->name, c, s0, s1);
        }
    }
    if (k->type[t].gemm) {
        k->type[t].gemm(N, w, wrow, a, arow, y, 4, 4, C);
        for (int c = 0; c < C; c++)
            for (int r = 0; r < 4; r++)
                CHECKF(isnan(y[c * 4 + r]) == (c < 4), "%s %s gemm special %d", gm_isa_name(k->isa), tt->name, c);
    }
    free(w); free(a); free(a2); free(x);
}

static void test_nonfinite_acts(void)
{
    gm_kernels ref, k;
    gm_kernels_init(&ref, GM_ISA_SCALAR);
    for (int i = 0; i < GM_ISA_COUNT; i++) {
        if (!gm_isa_supported((gm_isa)i)) continue;
        gm_kernels_init(&k, (gm_isa)i);
        for (uint32_t id = 0; id < GM_TYPE_COUNT; id++) {
            const gm_type_traits *tt = gm_type_get(id);
            if (tt && tt->weight) check_nonfinite(&ref, &k, (gm_type)id);
        }
    }
}

static void test_names(void)
{
    for (int i = 0; i < GM_ISA_COUNT; i++) CHECK(gm_isa_from_name(gm_isa_name((gm_isa)i)) == (gm_isa)i);
    CHECK(gm_isa_from_name("nope") == GM_ISA_COUNT);
    CHECK(gm_isa_from_name(NULL) == GM_ISA_COUNT);
    CHECK(gm_isa_supported(GM_ISA_SCALAR));
    CHECK(gm_isa_supported(gm_isa_detect()));
    fprintf(stderr, "detected ISA: %s\n", gm_isa_name(gm_isa_detect()));
}

static void test_all_isas(void)
{
    gm_kernels ref, k;
    gm_kernels_init(&ref, GM_ISA_SCALAR);
    for (int i = 0; i < GM_ISA_COUNT; i++) {
        if (!gm_isa_supported((gm_isa)i)) continue;
        gm_kernels_init(&k, (gm_isa)i);
        CHECK(k.isa == (gm_isa)i);
        for (uint32_t id = 0; id < GM_TYPE_COUNT; id++) { /* every weight type of the table */
            const gm_type_traits *tt = gm_type_get(id);
            if (!tt || !tt->weight) continue;
            const gm_type_kernels *e = &k.type[id];
            CHECK(e->quantize && e->vec_dot);
            if (e->quantize && e->vec_dot) check_type(&ref, &k, (gm_type)id);
        }
        fprintf(stderr, "checked %s\n", gm_isa_name((gm_isa)i));
    }
}

int main(void)
{
    rnd_seed(0x9e3779b97f4a7c15ull);
    RUN(test_names);
    RUN(test_all_isas);
    RUN(test_nonfinite_acts);
    TEST_MAIN_END();
}
