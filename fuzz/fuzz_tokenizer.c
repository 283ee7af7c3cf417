/* Fuzz target: the tokenizers. Byte 0 picks the mode and flags, the rest is the payload:
 *   bit 0: vocabulary (0 = SPM from $FUZZ_MODEL, 1 = synthetic Gemma 4 BPE)
 *   bit 1: 0 = encode the payload as text (arbitrary bytes), 1 = decode it as int32 ids
 *          (arbitrary values, including negative and out-of-range ids)
 *   bit 4: add_special / remove_special;  bit 5: parse_special / render special tokens
 * Properties checked: encoding never fails on any bytes and gives in-range ids; decoding
 * rejects bad ids with GEMMA_E_INVALID_ARG; the streaming detokenizer's output is valid
 * UTF-8 whatever the ids. */
#include "fuzz-common.h"
#include "fuzz-vocab.h"

static gm_vocab *tk_vocab[2];
static bool tk_loaded;

static void tk_cleanup(void)
{
    gm_vocab_free(tk_vocab[0]);
    gm_vocab_free(tk_vocab[1]);
    tk_vocab[0] = tk_vocab[1] = NULL;
    tk_loaded = false;
}

static void tk_init(void)
{
    if (tk_loaded)
        return;
    tk_loaded = true;
    tk_vocab[0] = fz_spm_vocab();
    tk_vocab[1] = fz_bpe_vocab();
    if (!tk_vocab[0] || !tk_vocab[1])
        __builtin_trap(); /* a setup problem, not a finding: say so loudly */
}

/* Streams ids through the detokenizer; the concatenated output must be valid UTF-8. */
static void tk_stream(const gm_vocab *v, const gemma_token *ids, size_t n, bool special)
{
    gm_detok *d = NULL;
    if (gm_detok_create(v, special, &d))
        return;
    char *all = NULL;
    size_t n_all = 0;
    const char *text;
    size_t len;
    for (size_t i = 0; i <= n; i++) {
        gemma_status st = i < n ? gm_detok_push(d, ids[i], &text, &len) : gm_detok_flush(d, &text, &len);
        if (st == GEMMA_E_INVALID_ARG && i < n && (ids[i] < 0 || ids[i] >= gm_vocab_n(v)))
            continue;
        if (st)
            __builtin_trap();
        char *p = realloc(all, n_all + len + 1);
        if (!p)
            break;
        all = p;
        memcpy(all + n_all, text, len);
        n_all += len;
    }
    if (all && !fz_utf8_valid((const uint8_t *)all, n_all))
        __builtin_trap();
    free(all);
    gm_detok_free(d);
}

static void tk_decode(const gm_vocab *v, const gemma_token *ids, size_t n, bool remove_special, bool special)
{
    char *out = NULL;
    size_t len = 0;
    bool bad = false;
    for (size_t i = 0; i < n; i++)
        bad |= ids[i] < 0 || ids[i] >= gm_vocab_n(v);
    gemma_status st = gm_detokenize(v, ids, n, remove_special, special, &out, &len);
    if (st == GEMMA_OK) {
        if (bad || !out || out[len] != '\0')
            __builtin_trap(); /* bad ids must be rejected; good output is terminated */
    } else if (!(st == GEMMA_E_INVALID_ARG && bad) && st != GEMMA_E_NOMEM) {
        __builtin_trap();
    }
    free(out);
    for (size_t i = 0; i < n; i++) {
        char small[4];
        size_t need = 0;
        st = gm_token_to_piece(v, ids[i], special, small, sizeof small, &need);
        if (st == GEMMA_E_BUFFER_TOO_SMALL) {
            char *big = malloc(need ? need : 1);
            if (!big)
                continue;
            size_t again = 0;
            if (gm_token_to_piece(v, ids[i], special, big, need, &again) != GEMMA_OK || again != need)
                __builtin_trap();
            free(big);
        } else if (st != GEMMA_OK && st != GEMMA_E_INVALID_ARG) {
            __builtin_trap();
        }
        (void)gm_vocab_attr(v, ids[i]);
        (void)gm_vocab_is_eog(v, ids[i]);
        (void)gm_vocab_score(v, ids[i]);
        size_t tl;
        (void)gm_vocab_text(v, ids[i], &tl);
    }
    tk_stream(v, ids, n, special);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    tk_init();
    uint8_t mode = data[0];
    const gm_vocab *v = tk_vocab[mode & 1];
    bool flag_a = mode & 0x10, flag_b = mode & 0x20;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    if (!(mode & 2)) {
        gm_tokens toks = {0};
        gemma_error err;
        gemma_status st = gm_tokenize(v, text, len, flag_a, flag_b, &toks, &err);
        if (st) {
            if (st != GEMMA_E_NOMEM)
                __builtin_trap(); /* any bytes are valid input */
            fz_check_error(st, &err);
        }
        for (size_t i = 0; i < toks.n; i++)
            if (toks.ids[i] < 0 || toks.ids[i] >= gm_vocab_n(v))
                __builtin_trap();
        if (!st)
            tk_decode(v, toks.ids, toks.n, flag_a, flag_b);
        gm_tokens_free(&toks);
        (void)gm_vocab_find(v, text, len);
    } else {
        size_t n = len / 4;
        gemma_token *ids = malloc((n ? n : 1) * sizeof *ids);
        if (!ids)
            return 0;
        memcpy(ids, text, n * 4);
        tk_decode(v, ids, n, flag_a, flag_b);
        free(ids);
    }
    return 0;
}
