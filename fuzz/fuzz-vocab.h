/* Vocabularies for the tokenizer and chat targets, loaded once per process:
 *  - SPM: the vocabulary of $FUZZ_MODEL (fuzz/run.sh points it at the default Gemma 3
 *    model when fetched, else at ../shared/testdata/g3-f32.gguf);
 *  - BPE: a synthetic Gemma 4 vocabulary (control tokens, byte tokens, letters, a few
 *    merges), built in memory so the rank-BPE engine is fuzzed without a real Gemma 4 file. */
#ifndef GM_FUZZ_VOCAB_H
#define GM_FUZZ_VOCAB_H

#include "gguf-writer.h"
#include "tokenizer/tokenizer.h"

#include <libgen.h>
#include <unistd.h>

/* Directory of this header (absolute in CMake builds), to find ../shared/testdata. */
#define GM_FUZZ_DIR fz_dir_of(__FILE__)
static inline const char *fz_dir_of(const char *file)
{
    static char buf[4096];
    snprintf(buf, sizeof buf, "%s", file);
    return dirname(buf);
}

static inline gm_vocab *fz_load_vocab_file(const char *path)
{
    gguf_file *f = NULL;
    gemma_error err;
    gm_vocab *v = NULL;
    if (gguf_file_open(path, true, &f, &err) || gm_vocab_load(f->ctx, &v, &err)) {
        fprintf(stderr, "fuzz: cannot load the vocabulary of %s: %s\n", path, err.message);
        v = NULL;
    }
    gguf_file_close(f);
    return v;
}

/* First loadable of: $FUZZ_MODEL, $GEMMA_TEST_MODEL, the default model in the cache,
 * $GEMMA_TESTDATA/g3-f32.gguf, and ../shared/testdata next to this source tree. */
static inline gm_vocab *fz_spm_vocab(void)
{
    char paths[5][4096];
    const char *e;
    int n = 0;
    if ((e = getenv("FUZZ_MODEL")) && *e)
        snprintf(paths[n++], sizeof paths[0], "%s", e);
    if ((e = getenv("GEMMA_TEST_MODEL")) && *e)
        snprintf(paths[n++], sizeof paths[0], "%s", e);
    if ((e = getenv("HOME")) && *e)
        snprintf(paths[n++], sizeof paths[0], "%s/.cache/gemma/models/gemma-3-270m-q4_k_m.gguf", e);
    if ((e = getenv("GEMMA_TESTDATA")) && *e)
        snprintf(paths[n++], sizeof paths[0], "%s/g3-f32.gguf", e);
    snprintf(paths[n++], sizeof paths[0], "%s/../../shared/testdata/g3-f32.gguf", GM_FUZZ_DIR);
    for (int i = 0; i < n; i++) {
        if (access(paths[i], R_OK) != 0)
            continue;
        gm_vocab *v = fz_load_vocab_file(paths[i]);
        if (v)
            return v;
    }
    fprintf(stderr, "fuzz: no Gemma 3 vocabulary found: set FUZZ_MODEL\n");
    return NULL;
}

static inline gm_vocab *fz_bpe_vocab(void)
{
    static const char *const special[] = {"<pad>", "<eos>", "<bos>", "<unk>", "<mask>", "<|turn>", "<turn|>",
                                          "<|channel>", "<channel|>", "<|think|>", "<|tool_response>",
                                          "<|\"|>", "<|image|>"};
    static const char *const pieces[] = {"\n", "\n\n", "\xe2\x96\x81", "\t", "th", "he", "the", "\xe2\x96\x81t",
                                         "\xe2\x96\x81the", "ll", "llo", "\xe2\x96\x81w", "or", "ld", "\xc3\xa9",
                                         "\xe4\xbd\xa0", "\xe4\xbd\xa0\xe5\xa5\xbd", "</s>"};
    static const char *const merges[] = {"t h", "h e", "th e", "\xe2\x96\x81 t", "\xe2\x96\x81t he",
                                         "l l", "ll o", "\xe2\x96\x81 w", "o r", "l d",
                                         "\xe4\xbd\xa0 \xe5\xa5\xbd", "bad", " x", "x ", "\xe2\x96\x81 the"};
    enum { N_SP = sizeof special / sizeof *special, N_PC = sizeof pieces / sizeof *pieces };
    enum { N = N_SP + 256 + 95 + N_PC };
    static char texts[N][24];
    const char *toks[N];
    float scores[N];
    int32_t types[N];
    int n = 0;
    for (int i = 0; i < N_SP; i++, n++) {
        snprintf(texts[n], sizeof texts[n], "%s", special[i]);
        types[n] = 3;
    }
    for (int b = 0; b < 256; b++, n++) {
        snprintf(texts[n], sizeof texts[n], "<0x%02X>", b);
        types[n] = 6;
    }
    for (int c = 32; c < 127; c++, n++) {
        texts[n][0] = (char)c;
        texts[n][1] = '\0';
        types[n] = c == '~' ? 4 : 1; /* one user-defined token */
    }
    for (int i = 0; i < N_PC; i++, n++) {
        snprintf(texts[n], sizeof texts[n], "%s", pieces[i]);
        types[n] = 1;
    }
    for (int i = 0; i < N; i++) {
        toks[i] = texts[i];
        scores[i] = -(float)i;
    }
    gguf_writer m;
    gw_init(&m, 3);
    gw_kv_str(&m, "tokenizer.ggml.model", "gemma4");
    gw_kv_arr_str(&m, "tokenizer.ggml.tokens", toks, N);
    gw_kv_arr(&m, "tokenizer.ggml.scores", GGUF_T_FLOAT32, scores, N, 4);
    gw_kv_arr(&m, "tokenizer.ggml.token_type", GGUF_T_INT32, types, N, 4);
    gw_kv_arr_str(&m, "tokenizer.ggml.merges", merges, sizeof merges / sizeof *merges);
    gw_kv_u32(&m, "tokenizer.ggml.bos_token_id", 2);
    gw_kv_u32(&m, "tokenizer.ggml.eos_token_id", 1);
    gw_kv_u32(&m, "tokenizer.ggml.unknown_token_id", 3);
    gw_kv_u32(&m, "tokenizer.ggml.padding_token_id", 0);
    size_t len;
    uint8_t *buf = gw_take(&m, &len);
    gguf_ctx *ctx = NULL;
    gm_vocab *v = NULL;
    gemma_error err;
    if (!buf || gguf_parse(buf, len, NULL, &ctx, &err) || gm_vocab_load(ctx, &v, &err)) {
        fprintf(stderr, "fuzz: cannot build the synthetic BPE vocabulary: %s\n", err.message);
        v = NULL;
    }
    gguf_free(ctx);
    free(buf);
    return v;
}

/* True when s[0..n) is valid UTF-8 (no overlongs, surrogates or values past U+10FFFF). */
static inline bool fz_utf8_valid(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        size_t len;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            len = 2, cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            len = 3, cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            len = 4, cp = c & 0x07;
        } else {
            return false;
        }
        if (i + len > n)
            return false;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
            cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += len;
    }
    return true;
}

#endif
