/* Fuzz target: weight VALUES (fuzz_model mutates the container and metadata). The bases are
 * tiny complete Gemma 3 and Gemma 4 models of every computable weight type, built once
 * with the vocabulary of GEMMA_TESTDATA (K-quants mixed with the base type where rows are
 * not whole 256-element blocks, as real files mix them); the input picks a base, a kernel set (every ISA
 * this CPU has), load options, and a list of edits to tensor data: raw bytes, f32 / f16
 * specials (NaN, +-Inf, +-max, denormals) in elements or block scales, or whole tensors
 * filled with one. Each input loads the model, evaluates a few tokens, samples and
 * generates. The contract checked: no crash, no UB (ASan + UBSan), a load that fails only
 * under validate_data with E_MODEL, an eval that succeeds, a sampler that answers -1 only
 * when no logit is usable, and generation that succeeds or reports non-finite logits.
 *
 * Input: [base] [isa] [flags] then 8-byte edits [kind] [tensor] [pos u32] [val u16]. */
#include "fuzz-common.h"
#include "gguf-writer.h"
#include "tensor/kernels.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>

typedef struct base {
    uint8_t *buf;
    size_t len;
    gguf_ctx *ctx;
} base;

static base g_bases[32];
static size_t g_n_bases;
static gm_isa g_isas[GM_ISA_COUNT];
static size_t g_n_isas;

static void add_bases(const char *file, const char *alt, uint8_t *(*fn)(const gguf_ctx *, const gw_tiny_opts *, size_t *),
                      const gw_tiny_opts *opts, size_t n)
{
    char path[4096];
    const char *td = getenv("GEMMA_TESTDATA");
    gguf_file *f = NULL;
    gemma_error err;
    snprintf(path, sizeof path, "%s/%s", td ? td : "../shared/testdata", file);
    if (gguf_file_open(path, true, &f, &err) != GEMMA_OK) {
        snprintf(path, sizeof path, "%s/%s", td ? td : "../shared/testdata", alt);
        if (gguf_file_open(path, true, &f, &err) != GEMMA_OK)
            return;
    }
    for (size_t i = 0; i < n && g_n_bases < sizeof g_bases / sizeof *g_bases; i++) {
        base *b = &g_bases[g_n_bases];
        b->buf = fn(f->ctx, &opts[i], &b->len);
        if (b->buf && gguf_parse(b->buf, b->len, NULL, &b->ctx, &err) == GEMMA_OK)
            g_n_bases++;
        else
            free(b->buf);
    }
    gguf_file_close(f);
}

/* K-quant mixes as real Q*_K files have them: the 2-D tensors whose rows are whole 256-
 * element blocks become user's K type (filled afresh), the others keep the base's type. */
static bool to_k_quant(void *user, gw_tensor_rec *t)
{
    if (t->n_dims == 2 && t->ne[0] % 256 == 0) {
        t->type = *(const uint32_t *)user;
        t->data = NULL;
        t->nbytes = 0;
    }
    return false;
}

/* Adds base `from` rewritten with to_k_quant for each of the K types. */
static void add_k_quants(size_t from)
{
    static const uint32_t k_types[] = {GM_TYPE_Q2_K, GM_TYPE_Q3_K, GM_TYPE_Q4_K, GM_TYPE_Q5_K, GM_TYPE_Q6_K};
    gemma_error err;
    for (size_t i = 0; i < sizeof k_types / sizeof *k_types && g_n_bases < sizeof g_bases / sizeof *g_bases; i++) {
        gguf_writer w;
        gw_from_ctx(&w, g_bases[from].ctx, NULL, to_k_quant, (void *)&k_types[i]);
        base *b = &g_bases[g_n_bases];
        b->buf = gw_take(&w, &b->len);
        if (b->buf && gguf_parse(b->buf, b->len, NULL, &b->ctx, &err) == GEMMA_OK)
            g_n_bases++;
        else
            free(b->buf);
    }
}

/* Keeps the bases that load unedited (tiny shapes do not suit every block size). */
static void keep_loadable(void)
{
    size_t n = 0;
    for (size_t i = 0; i < g_n_bases; i++) {
        char path[64];
        int fd = fz_memfd(g_bases[i].buf, g_bases[i].len, path);
        gemma_model *m = NULL;
        if (fd >= 0 && gemma_model_load(path, NULL, &m, NULL) == GEMMA_OK)
            g_bases[n++] = g_bases[i];
        else
            gguf_free(g_bases[i].ctx), free(g_bases[i].buf);
        gemma_model_free(m);
        if (fd >= 0)
            close(fd);
    }
    g_n_bases = n;
    fprintf(stderr, "fuzz_weights: %zu base models, %zu kernel sets\n", g_n_bases, g_n_isas);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
/* Once per process, outside any input (the bases are not leaks of the first input). */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    static const gw_tiny_opts g3[] = {
        {GM_TYPE_F32, 2, 32, 64, 16},  {GM_TYPE_F16, 2, 32, 64, 16},  {GM_TYPE_BF16, 2, 32, 64, 16},
        {GM_TYPE_Q8_0, 2, 32, 64, 16}, {GM_TYPE_Q4_0, 2, 32, 64, 16}, {GM_TYPE_Q4_1, 2, 32, 64, 16},
        {GM_TYPE_Q5_0, 2, 32, 64, 16}, {GM_TYPE_Q5_1, 2, 32, 64, 16}, {GM_TYPE_Q8_0, 1, 256, 256, 16},
    };
    static const gw_tiny_opts g4[] = {
        {GM_TYPE_F32, 4, 32, 64, 16}, {GM_TYPE_Q8_0, 4, 32, 64, 16}, {GM_TYPE_F16, 4, 256, 256, 16},
    };
    add_bases("g3-f32.gguf", "g3-q4_k_m.gguf", gw_tiny_gemma3, g3, sizeof g3 / sizeof *g3);
    const size_t g3_wide = g_n_bases - 1;
    add_bases("g4-f16.gguf", "g4-q4_k_m.gguf", gw_tiny_gemma4, g4, sizeof g4 / sizeof *g4);
    const size_t g4_wide = g_n_bases - 1;
    add_k_quants(g3_wide);
    add_k_quants(g4_wide);
    for (int i = 0; i < GM_ISA_COUNT; i++)
        if (gm_isa_supported((gm_isa)i))
            g_isas[g_n_isas++] = (gm_isa)i;
    keep_loadable();
    if (!g_n_bases) {
        fprintf(stderr, "fuzz_weights: no base models: set GEMMA_TESTDATA\n");
        abort();
    }
    return 0;
}

static const float k_f32[] = {NAN, INFINITY, -INFINITY, FLT_MAX, -FLT_MAX, 1e30f, -1e30f, 1e-45f,
                              0.0f, -0.0f, 65504.0f, 1e-30f, 3e38f, -NAN, 1e20f, 1.0f};
static const uint16_t k_f16[] = {0x7c00, 0xfc00, 0x7e00, 0x7bff, 0xfbff, 0x0001, 0x8000, 0x3c00,
                                 0x0400, 0x7c01, 0x7f80 /* bf16 Inf */, 0x7fc0 /* bf16 NaN */,
                                 0x7f7f /* bf16 max */, 0xff80, 0xffff, 0x5bff};

/* Applies one edit to base data copy buf. */
static void apply(const base *b, uint8_t *buf, fz_in *in)
{
    const uint8_t kind = fz_u8(in), ti = fz_u8(in);
    const uint32_t pos = fz_u32(in);
    const uint16_t val = (uint16_t)(fz_u8(in) | fz_u8(in) << 8);
    const gguf_tensor *t = &b->ctx->tensors[ti % b->ctx->n_tensors];
    uint8_t *data = buf + ((const uint8_t *)t->data - b->buf);
    const gm_type_traits *tr = gm_type_get(t->type);
    if (!tr || t->nbytes < 4)
        return;
    const bool f32 = t->type == GM_TYPE_F32;
    const uint64_t unit = f32 ? 4 : tr->type_size; /* an element, or a block */
    const uint64_t n_units = t->nbytes / unit;
    /* f32: the element; otherwise a 2-byte field of the block (a scale, somewhere) */
    const uint64_t in_unit = f32 ? 0 : (uint64_t)(val % (unit / 2)) * 2;
    switch (kind % 4) {
    case 0: /* two raw bytes anywhere */
        memcpy(data + (pos % (t->nbytes / 2)) * 2, &val, 2);
        break;
    case 1: /* one special value */
        if (f32)
            memcpy(data + (pos % n_units) * 4, &k_f32[(val >> 8) % 16], 4);
        else
            memcpy(data + (pos % n_units) * unit + in_unit, &k_f16[(val >> 8) % 16], 2);
        break;
    case 2: /* the whole tensor */
        for (uint64_t u = 0; u < n_units; u++) {
            if (f32)
                memcpy(data + u * 4, &k_f32[(val >> 8) % 16], 4);
            else
                memcpy(data + u * unit + in_unit, &k_f16[(val >> 8) % 16], 2);
        }
        break;
    default: { /* arbitrary f32 bits (extreme exponents) into an f32 element */
        if (!f32)
            break;
        uint32_t bits = (uint32_t)val << 16 | (pos >> 16);
        memcpy(data + (pos % n_units) * 4, &bits, 4);
    }
    }
}

static bool any_usable(const float *l, int32_t n)
{
    for (int32_t i = 0; i < n; i++)
        if (l[i] > -INFINITY)
            return true;
    return false;
}

static void run(gemma_model *m, gm_isa isa, uint8_t flags)
{
    gemma_session_params sp;
    gemma_session_params_init(&sp, sizeof sp);
    sp.n_ctx = 16;
    sp.n_batch = 4;
    sp.n_threads = (flags & 8) ? 2 : 1;
    sp.isa = gm_isa_name(isa);
    gemma_session *s = NULL;
    gemma_error err;
    gemma_status st = gemma_session_create(m, &sp, &s, &err);
    if (st)
        __builtin_trap(); /* nothing about the weights can make this fail */
    const int32_t V = gemma_vocab_size(m);
    const gemma_token toks[5] = {gemma_token_bos(m) >= 0 ? gemma_token_bos(m) : 0, 10 % V, 100 % V, 7 % V, 300 % V};
    if (gemma_session_eval(s, toks, 5, NULL) != GEMMA_OK)
        __builtin_trap();
    const float *logits = gemma_session_logits(s);
    gemma_sampler_params p;
    gemma_sampler_params_init(&p, sizeof p, m);
    p.temperature = (flags & 4) ? 1.0f : 0.0f;
    gemma_sampler *smp = NULL;
    if (gemma_sampler_create(&p, V, &smp, &err) != GEMMA_OK)
        __builtin_trap();
    const gemma_token t = gemma_sampler_sample(smp, logits);
    if (t >= V || (t < 0 && (t != -1 || any_usable(logits, V))))
        __builtin_trap();
    gemma_sampler_free(smp);
    bool finite = true;
    for (int32_t i = 0; i < V; i++)
        finite = finite && isfinite(logits[i]);
    gemma_generate_params gp;
    gemma_generate_params_init(&gp, sizeof gp);
    gp.max_tokens = 3;
    gp.sampling = &p;
    gemma_generate_result res = {.size = sizeof res};
    st = gemma_session_generate(s, &gp, &res);
    if (st != GEMMA_OK && !(st == GEMMA_E_MODEL && strstr(gemma_session_last_error(s), "non-finite")))
        __builtin_trap();
    if (st == GEMMA_OK && !finite) /* the first step must have refused these logits */
        __builtin_trap();
    gemma_session_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_in in = {data, size};
    const base *b = &g_bases[fz_u8(&in) % g_n_bases];
    const gm_isa isa = g_isas[fz_u8(&in) % g_n_isas];
    const uint8_t flags = fz_u8(&in);
    uint8_t *buf = malloc(b->len);
    if (!buf)
        return 0;
    memcpy(buf, b->buf, b->len);
    for (int k = 0; k < 64 && in.n >= 8; k++)
        apply(b, buf, &in);
    char path[64];
    int fd = fz_memfd(buf, b->len, path);
    free(buf);
    if (fd < 0)
        return 0;
    gemma_model_params mp;
    gemma_model_params_init(&mp, sizeof mp);
    mp.validate_data = flags & 1;
    mp.use_mmap = !(flags & 2);
    gemma_model *m = NULL;
    gemma_error err;
    gemma_status st = gemma_model_load(path, &mp, &m, &err);
    close(fd);
    if (st) {
        fz_check_error(st, &err);
        if (!mp.validate_data || st != GEMMA_E_MODEL || m)
            __builtin_trap(); /* only the scan may refuse edited weights */
        return 0;
    }
    run(m, isa, flags);
    gemma_model_free(m);
    return 0;
}
