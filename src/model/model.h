/* Internal view of a loaded model, shared by the layers above the architecture code.
 * (The model layer owns struct gemma_model, defined in arch.h together with the
 * per-architecture ops table and layer geometry; the runtime's sessions include arch.h,
 * every other layer goes through these accessors.) */
#ifndef GM_MODEL_H
#define GM_MODEL_H

#include "gemma.h"
#include "../gguf/gguf.h"

struct gm_vocab;

/* The model's validated GGUF index and its tokenizer. */
const gguf_ctx *gm_model_gguf(const gemma_model *m);
const struct gm_vocab *gm_model_vocab(const gemma_model *m);
/* "gemma3", "gemma4", ... */
const char *gm_model_arch(const gemma_model *m);

#endif
