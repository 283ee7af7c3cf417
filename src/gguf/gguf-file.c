/* The file layer: map a GGUF read-only (or read it into memory) and parse it. */
#include "gguf.h"

#include "../util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* map_errno: why mapping failed before we fell back to reading (0 when not tried). */
static gemma_status read_all(int fd, const char *path, size_t size, int map_errno, uint8_t **out,
                             gemma_error *err)
{
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) {
        if (map_errno)
            return gm_fail(err, GEMMA_E_NOMEM, "cannot map '%s' (%s) nor allocate %zu bytes to read it",
                           path, strerror(map_errno), size);
        return gm_fail(err, GEMMA_E_NOMEM, "cannot allocate %zu bytes to read '%s': %s", size, path,
                       strerror(ENOMEM));
    }
    size_t got = 0;
    while (got < size) {
        ssize_t r = read(fd, buf + got, GM_MIN(size - got, (size_t)1 << 30));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            int e = r < 0 ? errno : 0;
            free(buf);
            return gm_fail(err, GEMMA_E_IO, "cannot read '%s' at offset %zu: %s", path, got,
                           e ? strerror(e) : "file shrank while reading");
        }
        got += (size_t)r;
    }
    *out = buf;
    return GEMMA_OK;
}

/* Maps or reads the whole file; *mapped tells which. */
static gemma_status load_bytes(const char *path, bool use_mmap, const uint8_t **data, size_t *size,
                               bool *mapped, gemma_error *err)
{
    /* O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever,
     * before the S_ISREG check below could refuse it. It means nothing for regular files. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return gm_fail(err, GEMMA_E_IO, "cannot open '%s': %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return gm_fail(err, GEMMA_E_IO, "cannot stat '%s': %s", path, strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return gm_fail(err, GEMMA_E_IO, "'%s' is not a regular file", path);
    }
    if (sb.st_size < 0 || (uint64_t)sb.st_size > (uint64_t)SIZE_MAX) {
        close(fd);
        return gm_fail(err, GEMMA_E_IO, "'%s' is too large for this platform", path);
    }
    *size = (size_t)sb.st_size;
    *mapped = false;
    int map_errno = 0;
    if (use_mmap && *size > 0) {
        void *p = mmap(NULL, *size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p != MAP_FAILED) {
            /* Loading touches every weight: ask for read-ahead. Advice only; failure is harmless. */
            (void)madvise(p, *size, MADV_WILLNEED);
            close(fd);
            *data = p;
            *mapped = true;
            return GEMMA_OK;
        }
        /* Fall through: some file systems cannot be mapped; reading still works. */
        map_errno = errno;
    }
    uint8_t *buf = NULL;
    gemma_status st = read_all(fd, path, *size, map_errno, &buf, err);
    close(fd);
    if (!st)
        *data = buf;
    return st;
}

void gguf_file_close(gguf_file *f)
{
    if (!f)
        return;
    gguf_free(f->ctx);
    if (f->mapped)
        munmap((void *)f->data, f->size);
    else
        free((void *)f->data);
    free(f);
}

gemma_status gguf_file_open(const char *path, bool use_mmap, gguf_file **out, gemma_error *err)
{
    if (!out || !path)
        return gm_fail(err, GEMMA_E_INVALID_ARG, "gguf_file_open: NULL argument");
    *out = NULL;
    gguf_file *f = gm_calloc(1, sizeof *f);
    if (!f)
        return gm_fail(err, GEMMA_E_NOMEM, "out of memory opening '%s'", path);
    gemma_status st = load_bytes(path, use_mmap, &f->data, &f->size, &f->mapped, err);
    if (st) {
        free(f);
        return st;
    }
    st = gguf_parse(f->data, f->size, NULL, &f->ctx, err);
    if (st) {
        gm_err_prefix(err, "%s", path);
        gguf_file_close(f);
        return st;
    }
    *out = f;
    return GEMMA_OK;
}
