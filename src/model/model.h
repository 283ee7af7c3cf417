/* Internal view of a loaded model, shared by the layers above the architecture code.
 * (The model layer owns struct gemma_model, defined in arch.h together with the
 * per-architecture ops table and layer geometry; the runtime's sessions include arch.h,
 * every other layer goes through these accessors.) */
#ifndef GM_MODEL_H
#define GM_MODEL_H

#include "gemma.h"
#include "../gguf/gguf.h"
#include "../tokenizer/tokenizer.h"

struct gm_vocab;

/* The model's validated GGUF index and its tokenizer. */
const gguf_ctx *gm_model_gguf(const gemma_model *m);
const struct gm_vocab *gm_model_vocab(const gemma_model *m);
/* "gemma3", "gemma4", ... */
const char *gm_model_arch(const gemma_model *m);
/* The chat template's family (from the architecture's ops entry). */
gm_chat_family gm_model_chat_family(const gemma_model *m);

/* The largest penalty window gemma_sampler_create accepts (also bounds the model's hint). */
#define GM_PENALTY_LAST_N_MAX (1 << 20)

/* The model file's general.sampling.* defaults, validated at load: a has_ flag is false
 * when its key is absent or holds a value gemma_sampler_create would refuse. */
typedef struct gm_sampling_hints {
    bool has_top_k, has_top_p, has_min_p, has_temp, has_penalty_last_n, has_penalty_repeat;
    int32_t top_k, penalty_last_n;
    float top_p, min_p, temp, penalty_repeat;
} gm_sampling_hints;

/* NULL for a NULL model. */
const gm_sampling_hints *gm_model_sampling(const gemma_model *m);

#endif
