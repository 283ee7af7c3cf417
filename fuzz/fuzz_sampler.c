/* Fuzz target: sampler parameter validation and sampling. The input gives every field of
 * gemma_sampler_params (raw floats: NaN, infinities and negatives included), n_vocab, then
 * logits and tokens to accept. Properties: invalid parameters give GEMMA_E_INVALID_ARG with
 * a message; valid ones give a sampler whose every pick is in [0, n_vocab) (or -1 exactly
 * when every logit is NaN or -inf), that never writes to the logits, and that is
 * deterministic for a seed. */
#include "fuzz-common.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_in in = {data, size};
    gemma_sampler_params p;
    gemma_sampler_params_init(&p, sizeof p, NULL);
    p.temperature = fz_f32(&in);
    p.top_k = (int32_t)fz_u32(&in);
    p.top_p = fz_f32(&in);
    p.min_p = fz_f32(&in);
    p.repeat_penalty = fz_f32(&in);
    p.presence_penalty = fz_f32(&in);
    p.frequency_penalty = fz_f32(&in);
    p.penalty_last_n = (int32_t)fz_u32(&in);
    p.seed = fz_u64(&in);
    int32_t n_vocab = (int32_t)fz_u32(&in);
    if (n_vocab > 4096)
        n_vocab = 1 + n_vocab % 4096; /* big vocabularies only slow the fuzzer down */

    gemma_sampler *s = NULL, *s2 = NULL;
    gemma_error err;
    gemma_status st = gemma_sampler_create(&p, n_vocab, &s, &err);
    if (st) {
        fz_check_error(st, &err);
        if (st != GEMMA_E_INVALID_ARG && st != GEMMA_E_NOMEM)
            __builtin_trap();
        if (s)
            __builtin_trap();
        return 0;
    }
    if (gemma_sampler_create(&p, n_vocab, &s2, &err))
        __builtin_trap(); /* same parameters, same answer */

    float *logits = malloc((size_t)n_vocab * sizeof *logits);
    float *copy = malloc((size_t)n_vocab * sizeof *copy);
    if (logits && copy) {
        for (int32_t i = 0; i < n_vocab; i++)
            logits[i] = in.n >= 4 ? fz_f32(&in) : (float)((i * 7919) % 13) - 6.0f;
        memcpy(copy, logits, (size_t)n_vocab * sizeof *logits);
        bool usable = false;
        for (int32_t i = 0; i < n_vocab; i++)
            usable |= logits[i] > -INFINITY;
        for (int round = 0; round < 4; round++) {
            gemma_token t = gemma_sampler_sample(s, logits);
            gemma_token t2 = gemma_sampler_sample(s2, logits);
            if (t != t2 || t >= n_vocab || (usable ? t < 0 : t != -1))
                __builtin_trap();
            if (memcmp(copy, logits, (size_t)n_vocab * sizeof *logits) != 0)
                __builtin_trap();
            gemma_sampler_accept(s, t);
            gemma_sampler_accept(s2, t);
            /* tokens from the input, out-of-range ones included */
            for (int k = 0; k < 4 && in.n >= 4; k++) {
                gemma_token a = (gemma_token)fz_u32(&in);
                gemma_sampler_accept(s, a);
                gemma_sampler_accept(s2, a);
            }
        }
        gemma_sampler_reset(s);
        gemma_sampler_reset(s2);
        if (gemma_sampler_sample(s, logits) != gemma_sampler_sample(s2, logits))
            __builtin_trap();
    }
    free(logits);
    free(copy);
    gemma_sampler_free(s);
    gemma_sampler_free(s2);
    gemma_sampler_free(NULL);
    return 0;
}
