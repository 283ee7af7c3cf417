/* Fuzz target: model loading up to the first forward pass. The input is a whole GGUF file,
 * handed to gemma_model_load through an in-memory file (memfd), alternately mapped and
 * read. When it loads: model info, tokenizer and chat rendering through the public API,
 * then a session with a tiny context, a forward pass over a few tokens and a sampled
 * token. Seeds are tiny complete Gemma 3 models (fuzz/seedgen.c), so mutations land in
 * hyper-parameters, tensor shapes and the vocabulary rather than in weight bytes. */
#include "fuzz-common.h"

#include <math.h>
#include <stdlib.h>

static void md_after_load(gemma_model *m)
{
    gemma_model_info info = {.size = sizeof info};
    if (gemma_model_get_info(m, &info) != GEMMA_OK)
        __builtin_trap();
    int32_t n_vocab = gemma_vocab_size(m);
    if (n_vocab <= 0)
        __builtin_trap();
    gemma_token toks[64];
    size_t n = 0;
    static const char text[] = "<start_of_turn>user\nHi \xff there<end_of_turn>";
    gemma_status st = gemma_tokenize(m, text, sizeof text - 1, true, true, toks, 64, &n);
    /* E_MODEL: an SPM vocabulary without the <0xHH> token a byte needs (llama.cpp throws). */
    if (st != GEMMA_OK && st != GEMMA_E_BUFFER_TOO_SMALL && st != GEMMA_E_MODEL)
        __builtin_trap();
    if (st != GEMMA_OK)
        n = 0; /* the ids are not promised when the buffer was too small */
    for (size_t i = 0; i < n; i++)
        if (toks[i] < 0 || toks[i] >= n_vocab)
            __builtin_trap();
    char piece[64];
    size_t plen;
    (void)gemma_token_to_piece(m, gemma_token_bos(m), true, piece, sizeof piece, &plen);
    (void)gemma_token_is_eog(m, gemma_token_eos(m));
    gemma_chat_message msgs[2] = {{.role = "system", .content = "s"}, {.role = "user", .content = "Hello"}};
    char chat[512];
    size_t clen;
    gemma_error err;
    if ((st = gemma_chat_render(m, msgs, 2, true, true, chat, sizeof chat, &clen, &err)))
        fz_check_error(st, &err);

    gemma_session_params sp;
    gemma_session_params_init(&sp, sizeof sp);
    sp.n_ctx = 8;
    sp.n_threads = 1;
    sp.n_batch = 3;
    gemma_session *s = NULL;
    if ((st = gemma_session_create(m, &sp, &s, &err))) {
        fz_check_error(st, &err);
        return;
    }
    if (n > 6)
        n = 6;
    if (n == 0)
        toks[n++] = 0;
    st = gemma_session_eval(s, toks, n, NULL);
    if (st == GEMMA_OK) {
        const float *logits = gemma_session_logits(s);
        if (!logits)
            __builtin_trap();
        gemma_sampler_params p;
        gemma_sampler_params_init(&p, sizeof p, m);
        gemma_sampler *smp = NULL;
        if (gemma_sampler_create(&p, n_vocab, &smp, &err) == GEMMA_OK) {
            gemma_token t = gemma_sampler_sample(smp, logits);
            bool usable = false; /* -1 only when no logit is above -Inf */
            for (int32_t i = 0; i < n_vocab && !usable; i++)
                usable = logits[i] > -INFINITY;
            if (t >= n_vocab || (t < 0 && (usable || t != -1)))
                __builtin_trap();
            gemma_sampler_free(smp);
        }
    } else if (gemma_session_last_error(s)[0] == '\0') {
        __builtin_trap();
    }
    gemma_session_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64];
    int fd = fz_memfd(data, size, path);
    if (fd < 0)
        return 0;
    gemma_model_params mp;
    gemma_model_params_init(&mp, sizeof mp);
    mp.use_mmap = (size & 1) == 0; /* both the mapped and the read path */
    gemma_model *m = NULL;
    gemma_error err;
    gemma_status st = gemma_model_load(path, &mp, &m, &err);
    close(fd);
    if (st) {
        fz_check_error(st, &err);
        if (m)
            __builtin_trap();
        return 0;
    }
    md_after_load(m);
    gemma_model_free(m);
    return 0;
}
