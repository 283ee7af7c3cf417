/* The ggml type table (docs: gemma-spec.md section 2.1). Sizes match ggml-common.h so that
 * tensor byte sizes computed from a GGUF header agree with llama.cpp for every type, even
 * the ones we cannot compute with (those have weight == false and are rejected later); the
 * types we compute with take theirs from the block structs in quants.h. */
#include "types.h"

#include "quants.h"

#define W(nm, b, s, vd) { nm, b, s, true, vd }   /* weight type we compute with */
#define T(nm, b, s) { nm, b, s, false, GM_TYPE_F32 } /* known type, not computable */
#define REMOVED { NULL, 0, 0, false, GM_TYPE_F32 }

static const gm_type_traits type_table[GM_TYPE_COUNT] = {
    [0] = W("F32", 1, 4, GM_TYPE_F32),
    [1] = W("F16", 1, 2, GM_TYPE_F16),
    [2] = W("Q4_0", QK, sizeof(block_q4_0), GM_TYPE_Q8_0),
    [3] = W("Q4_1", QK, sizeof(block_q4_1), GM_TYPE_Q8_1),
    [4] = REMOVED, /* Q4_2 */
    [5] = REMOVED, /* Q4_3 */
    [6] = W("Q5_0", QK, sizeof(block_q5_0), GM_TYPE_Q8_0),
    [7] = W("Q5_1", QK, sizeof(block_q5_1), GM_TYPE_Q8_1),
    [8] = W("Q8_0", QK, sizeof(block_q8_0), GM_TYPE_Q8_0),
    [9] = T("Q8_1", QK, sizeof(block_q8_1)), /* activation only */
    [10] = W("Q2_K", QK_K, sizeof(block_q2_K), GM_TYPE_Q8_K),
    [11] = W("Q3_K", QK_K, sizeof(block_q3_K), GM_TYPE_Q8_K),
    [12] = W("Q4_K", QK_K, sizeof(block_q4_K), GM_TYPE_Q8_K),
    [13] = W("Q5_K", QK_K, sizeof(block_q5_K), GM_TYPE_Q8_K),
    [14] = W("Q6_K", QK_K, sizeof(block_q6_K), GM_TYPE_Q8_K),
    [15] = T("Q8_K", QK_K, sizeof(block_q8_K)), /* activation only */
    [16] = T("IQ2_XXS", 256, 66),
    [17] = T("IQ2_XS", 256, 74),
    [18] = T("IQ3_XXS", 256, 98),
    [19] = T("IQ1_S", 256, 50),
    [20] = T("IQ4_NL", 32, 18),
    [21] = T("IQ3_S", 256, 110),
    [22] = T("IQ2_S", 256, 82),
    [23] = T("IQ4_XS", 256, 136),
    [24] = T("I8", 1, 1),
    [25] = T("I16", 1, 2),
    [26] = T("I32", 1, 4),
    [27] = T("I64", 1, 8),
    [28] = T("F64", 1, 8),
    [29] = T("IQ1_M", 256, 56),
    [30] = W("BF16", 1, 2, GM_TYPE_BF16),
    [31] = REMOVED, /* Q4_0_4_4: now a runtime repacking, never in files */
    [32] = REMOVED, /* Q4_0_4_8 */
    [33] = REMOVED, /* Q4_0_8_8 */
    [34] = T("TQ1_0", 256, 54),
    [35] = T("TQ2_0", 256, 66),
    [36] = REMOVED, /* IQ4_NL_4_4 */
    [37] = REMOVED, /* IQ4_NL_4_8 */
    [38] = REMOVED, /* IQ4_NL_8_8 */
    [39] = T("MXFP4", 32, 17),
    [40] = T("NVFP4", 64, 36),
    [41] = T("Q1_0", 128, 18),
    [42] = T("Q2_0", 64, 18),
};

const gm_type_traits *gm_type_get(uint32_t id)
{
    if (id >= GM_TYPE_COUNT || type_table[id].blck == 0) return NULL;
    return &type_table[id];
}
