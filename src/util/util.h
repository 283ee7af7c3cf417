/* Small shared helpers: error reporting, checked arithmetic, half-float conversion, time. */
#ifndef GM_UTIL_H
#define GM_UTIL_H

#include "gemma.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__GNUC__)
#define GM_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define GM_PRINTF(a, b)
#endif

#define GM_MIN(a, b) ((a) < (b) ? (a) : (b))
#define GM_MAX(a, b) ((a) > (b) ? (a) : (b))

/* Records code and a formatted message in err (which may be NULL) and returns code,
 * so callers can write `return gm_fail(err, GEMMA_E_FORMAT, "...", ...);`. */
gemma_status gm_fail(gemma_error *err, gemma_status code, const char *fmt, ...) GM_PRINTF(3, 4);

/* Prefixes an existing message: "context: old message". */
void gm_err_prefix(gemma_error *err, const char *fmt, ...) GM_PRINTF(2, 3);

/* Overflow-checked u64 arithmetic: return false on overflow. */
static inline bool gm_add_u64(uint64_t a, uint64_t b, uint64_t *r) { return !__builtin_add_overflow(a, b, r); }
static inline bool gm_mul_u64(uint64_t a, uint64_t b, uint64_t *r) { return !__builtin_mul_overflow(a, b, r); }

/* Little-endian loads that never assume alignment. */
static inline uint16_t gm_rd_u16(const void *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static inline uint32_t gm_rd_u32(const void *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static inline uint64_t gm_rd_u64(const void *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static inline float gm_rd_f32(const void *p) { float v; memcpy(&v, p, 4); return v; }

/* IEEE binary16 <-> float. f32->f16 rounds to nearest even (bit-identical to F16C). */
float gm_f16_to_f32(uint16_t h);
uint16_t gm_f32_to_f16(float f);
/* bfloat16: as ggml_compute_fp32_to_bf16 (NaN keeps quiet bit, else round to nearest even). */
static inline float gm_bf16_to_f32(uint16_t h) { uint32_t u = (uint32_t)h << 16; float f; memcpy(&f, &u, 4); return f; }
uint16_t gm_f32_to_bf16(float f);

/* Growable public structs (gemma.h, Conventions): the first member is the caller's size_t
 * size. GM_ABI_MIN(type, field) is the smallest valid size: the end of the last field of
 * the first version. It never changes when fields are appended. */
#define GM_ABI_MIN(type, last_v1_field) (offsetof(type, last_v1_field) + sizeof(((type *)0)->last_v1_field))
/* Reads the caller's struct src over dst, which holds the library's defaults and is
 * dst_size bytes: fields the caller's header lacks keep their defaults. what names the
 * struct in the message. */
gemma_status gm_abi_read(void *dst, size_t dst_size, const void *src, size_t min_size, const char *what,
                         gemma_error *err);
/* Copies the first size bytes of the library's src (src_size bytes) to the caller's dst and
 * stores size as dst's first member. GEMMA_E_INVALID_ARG unless min_size <= size <= src_size. */
gemma_status gm_abi_write(void *dst, size_t size, const void *src, size_t src_size, size_t min_size);

/* Monotonic seconds. */
double gm_now(void);

/* Zeroing, overflow-checked allocation helpers (NULL on overflow or failure). */
void *gm_calloc(size_t n, size_t size);
void *gm_malloc_array(size_t n, size_t size);
/* 64-byte aligned allocation for SIMD buffers; free with gm_aligned_free. */
void *gm_aligned_alloc(size_t size);
void gm_aligned_free(void *p);

#endif
