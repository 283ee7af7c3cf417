/* Batched decode (gm_decode_batch) against each session decoding alone: sessions with
 * different prompts, lengths and context sizes join a running batch one step apart (batch
 * sizes 1..N, across the mat-vec and tile paths of the mat-mul), decode past the sliding
 * window, and every step's logits must be bit-identical (memcmp) to evaluating that token
 * alone, on every kernel set this machine has, for Gemma 3 and Gemma 4 (KV-shared layers,
 * per-layer embeddings, two head widths). This holds only while a kernel gives the same
 * bits for a row whatever the number of rows next to it: a GEMM change that breaks that
 * fails here. */
#include "gemma.h"
#include "model/arch.h"
#include "util/util.h"
#include "runtime/batch.h"
#include "tensor/kernels.h"
#include "test.h"

#define N_SESS 9

static uint32_t rng = 12345;
static gemma_token rnd_tok(int32_t n_vocab)
{
    rng = rng * 1664525u + 1013904223u;
    return (gemma_token)(1 + (rng >> 8) % (uint32_t)(n_vocab - 1));
}

static gemma_token argmax(const float *x, int32_t n)
{
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    return best;
}

static gemma_session *new_session(gemma_model *m, const char *isa, int32_t n_ctx)
{
    gemma_session_params sp;
    gemma_session_params_init(&sp, sizeof sp);
    sp.isa = isa;
    sp.n_ctx = n_ctx;
    sp.n_threads = 2;
    sp.n_batch = 16;
    gemma_session *s = NULL;
    gemma_error err;
    return gemma_session_create(m, &sp, &s, &err) == GEMMA_OK ? s : NULL;
}

/* Sessions a (batched) and b (alone) get the same prompt; session i joins at step i. */
static void run_isa(gemma_model *m, const char *name, gm_isa isa)
{
    const int32_t V = m->hp.n_vocab, steps = GM_MAX(24, m->hp.n_swa + 6);
    gemma_session *a[N_SESS] = {0}, *b[N_SESS] = {0};
    gemma_token next[N_SESS];
    gm_decoder *d = NULL;
    gemma_error err;
    REQUIRE(gm_decoder_create(m, N_SESS, 160, 2, isa, &d, &err) == GEMMA_OK);
    int bad = 0;
    for (int i = 0; i < N_SESS && !bad; i++) {
        const int32_t n_ctx = i % 3 == 2 ? 96 : 160, len = 2 + 5 * i;
        a[i] = new_session(m, gm_isa_name(isa), n_ctx);
        b[i] = new_session(m, gm_isa_name(isa), n_ctx);
        gemma_token prompt[64];
        for (int32_t j = 0; j < len; j++)
            prompt[j] = rnd_tok(V);
        bad = !a[i] || !b[i] || gemma_session_eval(a[i], prompt, (size_t)len, NULL) ||
              gemma_session_eval(b[i], prompt, (size_t)len, NULL);
        if (!bad)
            next[i] = argmax(gemma_session_logits(b[i]), V);
    }
    CHECKF(!bad, "%s %s: setting up the sessions", name, gm_isa_name(isa));
    for (int step = 0; step < steps + N_SESS && !bad; step++) {
        gemma_session *rows[N_SESS];
        gemma_token toks[N_SESS];
        size_t n = 0;
        for (int i = 0; i < N_SESS; i++)
            if (step >= i && step < i + steps && gemma_session_n_past(a[i]) < 96) {
                rows[n] = a[i];
                toks[n++] = next[i];
            }
        if (!n)
            continue;
        gemma_status st = gm_decode_batch(d, rows, toks, n, &err);
        CHECKF(st == GEMMA_OK, "%s %s step %d: %s", name, gm_isa_name(isa), step, err.message);
        for (int i = 0, r = 0; i < N_SESS && !st; i++) {
            if (r >= (int)n || rows[r] != a[i])
                continue;
            r++;
            bad |= gemma_session_eval(b[i], &next[i], 1, NULL) != GEMMA_OK;
            const float *la = gemma_session_logits(a[i]), *lb = gemma_session_logits(b[i]);
            if (!la || !lb || memcmp(la, lb, sizeof(float) * (size_t)V) ||
                gemma_session_n_past(a[i]) != gemma_session_n_past(b[i])) {
                CHECKF(false, "%s %s step %d (batch of %zu): session %d at %d differs", name, gm_isa_name(isa),
                       step, n, i, (int)gemma_session_n_past(b[i]));
                bad = 1;
                break;
            }
            next[i] = argmax(lb, V);
        }
        bad |= st != GEMMA_OK;
    }
    /* a full session, a foreign argument and a session listed twice are refused */
    gemma_session *twice[2] = {a[0], a[0]};
    gemma_token t2[2] = {1, 1};
    CHECK(gm_decode_batch(d, twice, t2, 2, &err) == GEMMA_E_BUSY);
    CHECK(gm_decode_batch(d, twice, t2, N_SESS + 1, &err) == GEMMA_E_INVALID_ARG);
    for (int i = 0; i < N_SESS; i++) {
        gemma_session_free(a[i]);
        gemma_session_free(b[i]);
    }
    gm_decoder_free(d);
}

static void test_model(const char *ref)
{
    char path[4096];
    const char *names[1] = {ref};
    if (!gm_test_ref_file(path, sizeof path, names, 1)) {
        fprintf(stderr, "  %s: not in the reference set, not tested\n", ref);
        return;
    }
    gemma_model *m = NULL;
    gemma_error err;
    REQUIRE(gemma_model_load(path, NULL, &m, &err) == GEMMA_OK);
    for (int isa = 0; isa < GM_ISA_COUNT; isa++)
        if (gm_isa_supported((gm_isa)isa))
            run_isa(m, ref, (gm_isa)isa);
    fprintf(stderr, "  %s: window %d\n", ref, (int)m->hp.n_swa);
    gemma_model_free(m);
}

static void test_gemma3(void) { test_model("g3-q4_k_m"); test_model("g3-q8_0"); }
static void test_gemma4(void) { test_model("g4-q4_k_m"); test_model("g4-f16"); }

int main(void)
{
    RUN(test_gemma3);
    RUN(test_gemma4);
    TEST_MAIN_END();
}
