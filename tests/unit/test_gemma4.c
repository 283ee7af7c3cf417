/* Gemma 4 loading and evaluation beyond the reference logits (test_reference.c): rewrites
 * of ../shared/testdata/g4-f16.gguf with one defect each must fail with a message naming
 * it (never crash), KV-shared layers must own no cache, and V = K (no attn_v) must run. */
#include "model-edit.h"

static gguf_file *g_file; /* g4-f16: 8 layers LLGLLGLG, 2 KV-shared, PLE */

/* Loads g4-f16 with edit e applied. */
static gemma_status load_edited(edit e, gemma_model **m, gemma_error *err)
{
    return edit_load(g_file->ctx, e, m, err);
}

static void expect_load(const char *what, edit e, gemma_status code, const char *needle)
{
    edit_expect(g_file->ctx, what, e, code, needle);
}

static void test_tensors(void)
{
    expect_load("unchanged", (edit){0}, GEMMA_OK, NULL);
    expect_load("missing attn_k", (edit){.drop_tensor = "blk.3.attn_k.weight"}, GEMMA_E_MODEL, "blk.3.attn_k.weight");
    expect_load("missing attn_k_norm", (edit){.drop_tensor = "blk.0.attn_k_norm.weight"}, GEMMA_E_MODEL,
                "blk.0.attn_k_norm.weight");
    expect_load("missing rope_freqs", (edit){.drop_tensor = "rope_freqs.weight"}, GEMMA_E_MODEL, "rope_freqs.weight");
    expect_load("missing PLE embedding", (edit){.drop_tensor = "per_layer_token_embd.weight"}, GEMMA_E_MODEL,
                "per_layer_token_embd.weight");
    expect_load("missing PLE gate", (edit){.drop_tensor = "blk.7.inp_gate.weight"}, GEMMA_E_MODEL,
                "blk.7.inp_gate.weight");
    expect_load("global q of local width", (edit){.shape_tensor = "blk.5.attn_q.weight", .ne0 = 256, .ne1 = 128},
                GEMMA_E_MODEL, "blk.5.attn_q.weight");
    expect_load("shared layer ffn not double wide",
                (edit){.shape_tensor = "blk.6.ffn_up.weight", .ne0 = 256, .ne1 = 256}, GEMMA_E_MODEL,
                "blk.6.ffn_up.weight");
    expect_load("rope_freqs too short", (edit){.shape_tensor = "rope_freqs.weight", .ne0 = 32, .ne1 = 1},
                GEMMA_E_MODEL, "rope_freqs.weight");
    expect_load("output scale of 2", (edit){.shape_tensor = "blk.1.layer_output_scale.weight", .ne0 = 2, .ne1 = 1},
                GEMMA_E_MODEL, "blk.1.layer_output_scale.weight");
    /* PLE width 0: the PLE tensors are then foreign */
    expect_load("PLE tensors without PLE", (edit){.u32_key = "gemma4.embedding_length_per_layer_input", .u32 = 0},
                GEMMA_E_MODEL, "unexpected tensor");
    expect_load("PLE width mismatch", (edit){.u32_key = "gemma4.embedding_length_per_layer_input", .u32 = 32},
                GEMMA_E_MODEL, "per_layer_token_embd.weight");
}

static void test_hparams(void)
{
    const uint32_t ff7[7] = {256, 256, 256, 256, 256, 256, 512};
    expect_load("ffn array too short",
                (edit){.arr_key = "gemma4.feed_forward_length", .arr_type = GGUF_T_UINT32, .arr = ff7, .n = 7},
                GEMMA_E_MODEL, "feed_forward_length");
    const uint32_t ff0[8] = {256, 256, 256, 0, 256, 256, 512, 512};
    expect_load("ffn width 0",
                (edit){.arr_key = "gemma4.feed_forward_length", .arr_type = GGUF_T_UINT32, .arr = ff0, .n = 8},
                GEMMA_E_MODEL, "feed_forward_length");
    const uint8_t pat7[7] = {1, 1, 0, 1, 1, 0, 1};
    const char *pat = "gemma4.attention.sliding_window_pattern";
    expect_load("pattern too short", (edit){.arr_key = pat, .arr_type = GGUF_T_BOOL, .arr = pat7, .n = 7},
                GEMMA_E_MODEL, "sliding_window_pattern");
    const uint32_t pat_u32[8] = {1, 1, 0, 1, 1, 0, 1, 0};
    expect_load("pattern of u32", (edit){.arr_key = pat, .arr_type = GGUF_T_UINT32, .arr = pat_u32, .n = 8},
                GEMMA_E_MODEL, "sliding_window_pattern");
    expect_load("missing pattern", (edit){.drop_key = pat}, GEMMA_E_MODEL, "sliding_window_pattern");
    const uint32_t kv3[8] = {1, 1, 1, 3, 1, 1, 1, 1};
    expect_load("kv heads not dividing heads",
                (edit){.arr_key = "gemma4.attention.head_count_kv", .arr_type = GGUF_T_UINT32, .arr = kv3, .n = 8},
                GEMMA_E_MODEL, "head_count_kv");
    expect_load("missing swa head width", (edit){.drop_key = "gemma4.attention.key_length_swa"}, GEMMA_E_MODEL,
                "key_length_swa");
    expect_load("K and V widths differ", (edit){.u32_key = "gemma4.attention.value_length", .u32 = 64}, GEMMA_E_MODEL,
                "value_length");
    expect_load("odd head width", (edit){.u32_key = "gemma4.attention.key_length_swa", .u32 = 33}, GEMMA_E_MODEL,
                "key_length_swa");
    expect_load("rotation wider than head", (edit){.u32_key = "gemma4.rope.dimension_count_swa", .u32 = 66},
                GEMMA_E_MODEL, "dimension_count_swa");
    expect_load("all layers shared", (edit){.u32_key = "gemma4.attention.shared_kv_layers", .u32 = 8}, GEMMA_E_MODEL,
                "shared_kv_layers");
    expect_load("one layer owns KV", (edit){.u32_key = "gemma4.attention.shared_kv_layers", .u32 = 7}, GEMMA_E_MODEL,
                "shared_kv_layers");
    /* S = 5: global layer 5 would read layer 4, a local one */
    expect_load("sharing across kinds", (edit){.u32_key = "gemma4.attention.shared_kv_layers", .u32 = 3},
                GEMMA_E_UNSUPPORTED, "same kind");
    /* no sharing: layers 6 and 7 would need their own K projections */
    expect_load("shared layers without K", (edit){.u32_key = "gemma4.attention.shared_kv_layers", .u32 = 0},
                GEMMA_E_MODEL, "blk.6.attn_k.weight");
    expect_load("MoE", (edit){.u32_key = "gemma4.expert_count", .u32 = 4}, GEMMA_E_UNSUPPORTED, "MoE");
    expect_load("no window", (edit){.u32_key = "gemma4.attention.sliding_window", .u32 = 0}, GEMMA_E_MODEL,
                "sliding_window");
    expect_load("missing PLE width", (edit){.drop_key = "gemma4.embedding_length_per_layer_input"}, GEMMA_E_MODEL,
                "embedding_length_per_layer_input");
}

/* Greedy tokens after a short prompt; returns false on any failure. */
static bool run_greedy(gemma_model *m, gemma_session_stats *stats, gemma_token *out, int n_out)
{
    gemma_session_params sp;
    gemma_session_params_init(&sp, sizeof sp);
    sp.n_ctx = 256;
    sp.n_batch = 16;
    sp.n_threads = 2;
    gemma_session *s = NULL;
    gemma_error err = {0};
    if (gemma_session_create(m, &sp, &s, &err)) {
        fprintf(stderr, "session: %s\n", err.message);
        return false;
    }
    const gemma_token prompt[] = {2, 300, 301, 302, 303, 304, 305, 306, 307, 308, 309, 310};
    bool ok = gemma_session_eval(s, prompt, sizeof prompt / sizeof prompt[0], NULL) == GEMMA_OK;
    for (int i = 0; ok && i < n_out; i++) {
        const float *lg = gemma_session_logits(s);
        int best = 0;
        for (int v = 1; v < gemma_vocab_size(m); v++)
            best = lg[v] > lg[best] ? v : best;
        for (int v = 0; v < gemma_vocab_size(m); v++)
            ok = ok && isfinite(lg[v]);
        out[i] = best;
        ok = ok && gemma_session_eval(s, &out[i], 1, NULL) == GEMMA_OK;
    }
    const gemma_token bad = 100000;
    CHECK(gemma_session_eval(s, &bad, 1, NULL) == GEMMA_E_INVALID_ARG);
    ok = ok && gemma_session_get_stats(s, stats) == GEMMA_OK;
    gemma_session_free(s);
    return ok;
}

static void test_eval(void)
{
    gemma_model *m = NULL;
    gemma_error err = {0};
    REQUIRE(load_edited((edit){0}, &m, &err) == GEMMA_OK);
    gemma_model_info info = {.size = sizeof info};
    REQUIRE(gemma_model_get_info(m, &info) == GEMMA_OK);
    CHECK(!strcmp(info.architecture, "gemma4") && info.n_layer == 8 && info.n_swa_layers == 5);
    CHECK(info.head_dim == 64 && info.n_head == 2 && info.n_head_kv == 1 && info.sliding_window == 8);
    gemma_session_stats st = {.size = sizeof st};
    gemma_token gen[8];
    CHECK(run_greedy(m, &st, gen, 8));
    /* Owners: local 0, 1, 3, 4 (64 wide) and global 2, 5 (128 wide); 6 and 7 own nothing.
     * K and V, F16, n_ctx = 256 cells (locals keep 8 + 16). */
    CHECKF(st.kv_bytes_full == 2u * 2u * 256u * (4u * 64u + 2u * 128u), "kv_bytes_full %llu",
           (unsigned long long)st.kv_bytes_full);
    CHECKF(st.kv_bytes == 2u * 2u * (24u * 4u * 64u + 256u * 2u * 128u), "kv_bytes %llu",
           (unsigned long long)st.kv_bytes);
    gemma_model_free(m);
    /* Without blk.2.attn_v, layer 2 takes V from its raw K projection. */
    REQUIRE(load_edited((edit){.drop_tensor = "blk.2.attn_v.weight"}, &m, &err) == GEMMA_OK);
    gemma_token gen2[8];
    CHECK(run_greedy(m, &st, gen2, 8));
    gemma_model_free(m);
}

int main(void)
{
    char path[4096];
    static const char *const names[] = {"g4-f16", "g4-q4_k_m"};
    gemma_error err;
    if (!gm_test_ref_file(path, sizeof path, names, 2) || gguf_file_open(path, true, &g_file, &err) != GEMMA_OK)
        TEST_SKIP("reference vectors not found (GEMMA_TESTDATA): no Gemma 4 model to test with");
    RUN(test_tensors);
    RUN(test_hparams);
    RUN(test_eval);
    gguf_file_close(g_file);
    TEST_MAIN_END();
}
