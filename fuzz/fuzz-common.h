/* Shared helpers for the libFuzzer targets (test code, not library code: a broken contract
 * here is a bug we want the fuzzer to report, so it traps). */
#ifndef GM_FUZZ_COMMON_H
#define GM_FUZZ_COMMON_H

#include "gemma.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A failed call must say why: a known negative code and a non-empty, terminated message. */
static inline void fz_check_error(gemma_status st, const gemma_error *err)
{
    if (st >= 0 || st < GEMMA_E_BUSY)
        __builtin_trap();
    if (err) {
        if (err->code != st)
            __builtin_trap();
        if (memchr(err->message, '\0', sizeof err->message) == NULL || err->message[0] == '\0')
            __builtin_trap();
    }
}

/* Writes bytes into an anonymous in-memory file and gives its /proc path, so entry points
 * that take a path can be fuzzed without touching the disk. Returns the fd (close it) or -1. */
static inline int fz_memfd(const uint8_t *data, size_t size, char path[64])
{
    int fd = memfd_create("gemma-fuzz", MFD_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t done = 0;
    while (done < size) {
        ssize_t w = write(fd, data + done, size - done);
        if (w <= 0) {
            close(fd);
            return -1;
        }
        done += (size_t)w;
    }
    snprintf(path, 64, "/proc/self/fd/%d", fd);
    return fd;
}

/* Little cursor over the fuzz input for targets that need structured values. */
typedef struct fz_in {
    const uint8_t *p;
    size_t n;
} fz_in;

static inline uint8_t fz_u8(fz_in *in)
{
    if (!in->n)
        return 0;
    in->n--;
    return *in->p++;
}
static inline uint32_t fz_u32(fz_in *in)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v |= (uint32_t)fz_u8(in) << (8 * i);
    return v;
}
static inline uint64_t fz_u64(fz_in *in) { return fz_u32(in) | (uint64_t)fz_u32(in) << 32; }
static inline float fz_f32(fz_in *in)
{
    uint32_t u = fz_u32(in);
    float f;
    memcpy(&f, &u, 4);
    return f;
}

#endif
