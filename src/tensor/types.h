/* ggml tensor type ids, block sizes and what each weight type is multiplied with. */
#ifndef GM_TYPES_H
#define GM_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum gm_type {
    GM_TYPE_F32 = 0, GM_TYPE_F16 = 1, GM_TYPE_Q4_0 = 2, GM_TYPE_Q4_1 = 3,
    GM_TYPE_Q5_0 = 6, GM_TYPE_Q5_1 = 7, GM_TYPE_Q8_0 = 8, GM_TYPE_Q8_1 = 9,
    GM_TYPE_Q2_K = 10, GM_TYPE_Q3_K = 11, GM_TYPE_Q4_K = 12, GM_TYPE_Q5_K = 13,
    GM_TYPE_Q6_K = 14, GM_TYPE_Q8_K = 15, GM_TYPE_BF16 = 30, GM_TYPE_COUNT = 43
} gm_type;

typedef struct gm_type_traits {
    const char *name;      /* "Q4_K" */
    uint32_t blck;         /* elements per block; 0 for removed ids */
    uint32_t type_size;    /* bytes per block */
    bool weight;           /* we can compute with it as a weight type */
    gm_type vec_dot_type;  /* activation type its dot product takes (weights only) */
} gm_type_traits;

/* Traits of a ggml type id, or NULL for ids outside the table or removed (block size 0).
 * Ids that are valid ggml types but not computable (IQ*, TQ*, ...) have weight == false. */
const gm_type_traits *gm_type_get(uint32_t id);

/* Bytes of one row of n elements (n must be a multiple of the block size). */
static inline size_t gm_row_size(const gm_type_traits *t, int64_t n) { return (size_t)(n / t->blck) * t->type_size; }

#endif
