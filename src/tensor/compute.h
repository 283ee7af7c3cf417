/* Compute context: a persistent thread pool, the kernel table and scratch memory.
 * One per session (so sessions run concurrently without sharing mutable state).
 */
#ifndef GM_COMPUTE_H
#define GM_COMPUTE_H

#include "gemma.h"
#include "kernels.h"
#include "types.h"

#include <stddef.h>
#include <stdint.h>

/* A weight matrix bound from the file: ne[0] = K (row length), ne[1] = N rows. */
typedef struct gm_tensor {
    const char *name;   /* NUL-terminated copy owned by the model */
    gm_type type;
    int64_t ne[4];
    size_t row_bytes;   /* bytes per row of ne[0] elements */
    const void *data;   /* in the mapping (or a repacked copy owned by the model) */
} gm_tensor;

typedef struct gm_compute gm_compute;

/* n_threads >= 1; isa must be supported. */
gemma_status gm_compute_create(int n_threads, gm_isa isa, gm_compute **out, gemma_error *err);
void gm_compute_free(gm_compute *c);
int gm_compute_threads(const gm_compute *c);
const gm_kernels *gm_compute_kernels(const gm_compute *c);

/* Runs fn(arg, ith, nth) on every thread of the pool (the caller is thread 0) and returns
 * when all are done. */
typedef void (*gm_task_fn)(void *arg, int ith, int nth);
void gm_parallel(gm_compute *c, gm_task_fn fn, void *arg);

/* y[t*N + r] = dot(row r of W, x[t*K .. t*K+K)) for t < n_tok, r < N, where K = W->ne[0],
 * N = W->ne[1]. x is converted once to W's activation type, then rows are split across
 * threads. Returns GEMMA_E_NOMEM if scratch cannot grow. */
gemma_status gm_matmul(gm_compute *c, const gm_tensor *W, const float *x, int n_tok, float *y);

/* y[i] = W[i] x for n_w (<= 4) matrices sharing x: for a few tokens and matrices of one
 * type and row length, one quantization and one pool wake-up for all; else gm_matmul each. */
gemma_status gm_matmul_multi(gm_compute *c, const gm_tensor *const *W, int n_w, const float *x, int n_tok,
                             float *const *y);

/* Same, for rows [r0, r1) of W only (y has r1-r0 columns per token). */
gemma_status gm_matmul_rows(gm_compute *c, const gm_tensor *W, int64_t r0, int64_t r1,
                            const float *x, int n_tok, float *y);

/* Dequantizes row r of W into out[0..K). */
void gm_tensor_get_row(const gm_tensor *W, int64_t r, float *out);

#endif
