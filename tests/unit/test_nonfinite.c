/* Non-finite activations end to end (docs/robustness.md): a quantized reference model with
 * +Inf written into a norm weight runs on every kernel set this machine has without
 * undefined behaviour (this test matters most under the ASan+UBSan build), and every set
 * gives the same result class, NaN logits. The kernel-level check is test_kernels. */
#include "model-edit.h"

#include "tensor/kernels.h"

#include <math.h>

/* The model file's bytes with v written into element k of its F32 tensor name, or NULL. */
static uint8_t *model_with(const gguf_file *f, const char *name, size_t k, float v)
{
    const gguf_tensor *t = gguf_find_tensor(f->ctx, name);
    uint8_t *buf = t && t->type == GM_TYPE_F32 ? malloc(f->size) : NULL;
    if (buf) {
        memcpy(buf, f->data, f->size);
        memcpy(buf + ((const uint8_t *)t->data - f->data) + k * sizeof v, &v, sizeof v);
    }
    return buf;
}

static void run_isas(const char *path, const char *name)
{
    gemma_model *m = NULL;
    gemma_error err;
    REQUIRE(gemma_model_load(path, NULL, &m, &err) == GEMMA_OK);
    for (int i = 0; i < GM_ISA_COUNT; i++) {
        if (!gm_isa_supported((gm_isa)i))
            continue;
        gemma_session_params sp;
        gemma_session_params_init(&sp, sizeof sp);
        sp.n_threads = 2;
        sp.isa = gm_isa_name((gm_isa)i);
        gemma_session *s = NULL;
        REQUIRE(gemma_session_create(m, &sp, &s, &err) == GEMMA_OK);
        const gemma_token toks[] = { 2, 300, 301, 302, 310 };
        CHECK(gemma_session_eval(s, toks, 5, NULL) == GEMMA_OK);
        const float *logits = gemma_session_logits(s);
        int n_nan = 0;
        for (int32_t v = 0; logits && v < gemma_vocab_size(m); v++)
            n_nan += isnan(logits[v]) != 0;
        CHECKF(logits && n_nan == gemma_vocab_size(m), "%s, %s: %d of %d logits NaN", name, sp.isa, n_nan,
               gemma_vocab_size(m));
        gemma_session_free(s);
    }
    gemma_model_free(m);
}

static void test_inf_norm(void)
{
    char path[4096];
    static const char *const names[] = { "g3-q4_k_m" };
    if (!gm_test_ref_file(path, sizeof path, names, 1)) {
        fprintf(stderr, "skip: no g3-q4_k_m reference model\n");
        return;
    }
    gguf_file *f = NULL;
    gemma_error err;
    REQUIRE(gguf_file_open(path, true, &f, &err) == GEMMA_OK);
    static const char *const tensors[] = { "blk.0.ffn_norm.weight", "blk.0.attn_norm.weight" };
    for (size_t i = 0; i < sizeof tensors / sizeof tensors[0]; i++) {
        uint8_t *buf = model_with(f, tensors[i], 1, INFINITY);
        REQUIRE(buf);
        char mpath[64];
        const int fd = fz_memfd(buf, f->size, mpath);
        REQUIRE(fd >= 0);
        run_isas(mpath, tensors[i]);
        close(fd);
        free(buf);
    }
    gguf_file_close(f);
}

int main(void)
{
    RUN(test_inf_norm);
    TEST_MAIN_END();
}
