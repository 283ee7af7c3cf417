/* Vocabulary loading: reads and validates the tokenizer.ggml.* keys, builds the text -> id
 * hash, the BPE merge table, the special-token trie and the end-of-generation set. */
#include "vocab-internal.h"
#include "../util/util.h"

#include <stdlib.h>
#include <string.h>

uint64_t gm_hash_bytes(const void *p, size_t n)
{
    /* 8 bytes per step with a multiply-xorshift mix: token texts are short and hot. */
    const uint8_t *s = p;
    uint64_t h = 0x9e3779b97f4a7c15ull ^ (n * 0xff51afd7ed558ccdull);
    for (; n >= 8; n -= 8, s += 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ w) * 0xbf58476d1ce4e5b9ull;
        h ^= h >> 31;
    }
    if (n) {
        uint64_t w = 0;
        memcpy(&w, s, n);
        h = (h ^ w) * 0x94d049bb133111ebull;
    }
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    return h ^ (h >> 32);
}

static bool htab_init(gm_htab *t, uint64_t n_items)
{
    uint64_t cap = 16;
    while (cap < n_items * 2)
        cap <<= 1;
    if (cap > (1ull << 31))
        return false;
    t->slots = gm_calloc((size_t)cap, sizeof(uint32_t));
    t->mask = (uint32_t)(cap - 1);
    return t->slots != NULL;
}

static bool tok_htab_init(gm_tok_htab *t, uint64_t n_items)
{
    uint64_t cap = 16;
    while (cap < n_items * 2)
        cap <<= 1;
    if (cap > (1ull << 31))
        return false;
    t->slots = gm_calloc((size_t)cap, sizeof(uint64_t));
    t->mask = (uint32_t)(cap - 1);
    return t->slots != NULL;
}

/* ---- text -> id ---------------------------------------------------------------------- */

static bool tok_eq(const gm_vocab *v, uint32_t id, const char *s, size_t n)
{
    return v->tok[id].len == n && memcmp(v->arena + v->tok[id].off, s, n) == 0;
}

gemma_token gm_vocab_find(const gm_vocab *v, const char *text, size_t len)
{
    uint64_t h = gm_hash_bytes(text, len);
    uint32_t tag = (uint32_t)(h >> 32), i = (uint32_t)h & v->tok_ht.mask;
    for (;;) {
        uint64_t s = v->tok_ht.slots[i];
        if (!s)
            return -1;
        if ((uint32_t)(s >> 32) == tag && tok_eq(v, (uint32_t)s - 1, text, len))
            return (gemma_token)((uint32_t)s - 1);
        i = (i + 1) & v->tok_ht.mask;
    }
}

/* Later duplicates overwrite earlier ones, as llama.cpp's token_to_id[word] = i does. */
static void tok_insert(gm_vocab *v, uint32_t id)
{
    const char *s = v->arena + v->tok[id].off;
    uint64_t h = gm_hash_bytes(s, v->tok[id].len);
    uint32_t tag = (uint32_t)(h >> 32), i = (uint32_t)h & v->tok_ht.mask;
    for (;;) {
        uint64_t cur = v->tok_ht.slots[i];
        if (!cur || ((uint32_t)(cur >> 32) == tag && tok_eq(v, (uint32_t)cur - 1, s, v->tok[id].len))) {
            v->tok_ht.slots[i] = ((uint64_t)tag << 32) | (id + 1);
            return;
        }
        i = (i + 1) & v->tok_ht.mask;
    }
}

/* ---- merges -------------------------------------------------------------------------- */

static uint64_t merge_hash(const char *p, size_t left, size_t total)
{
    return gm_hash_bytes(p, total) ^ ((uint64_t)left * 0x9e3779b97f4a7c15ull);
}

int32_t gm_vocab_merge_rank(const gm_vocab *v, const char *p, size_t left_len, size_t total)
{
    if (!v->merge_ht.slots)
        return -1;
    uint32_t i = (uint32_t)merge_hash(p, left_len, total) & v->merge_ht.mask;
    for (;;) {
        uint32_t s = v->merge_ht.slots[i];
        if (!s)
            return -1;
        uint32_t m = s - 1;
        if (v->m_len[m] == total && v->m_left[m] == left_len &&
            memcmp(v->m_arena + v->m_off[m], p, total) == 0)
            return (int32_t)m;
        i = (i + 1) & v->merge_ht.mask;
    }
}

static gemma_status load_merges(gm_vocab *v, const gguf_ctx *ctx, gemma_error *err)
{
    const char *key = "tokenizer.ggml.merges";
    uint64_t n;
    const gguf_str *strs;
    gemma_status st = gguf_get_str_arr(ctx, key, &n, &strs, err);
    if (st == GEMMA_E_NOT_FOUND)
        return gm_fail(err, GEMMA_E_MODEL, "%s: missing (required by the gemma4 tokenizer)", key);
    if (st)
        return st;
    if (n > INT32_MAX)
        return gm_fail(err, GEMMA_E_MODEL, "%s: %llu merges is too many", key, (unsigned long long)n);
    uint64_t total = 0;
    for (uint64_t i = 0; i < n; i++)
        if (!gm_add_u64(total, strs[i].len, &total) || total > ((uint64_t)1 << 40))
            return gm_fail(err, GEMMA_E_MODEL, "%s: total size overflows", key);
    v->n_merges = (uint32_t)n;
    v->m_arena = malloc(total ? (size_t)total : 1);
    v->m_off = gm_malloc_array((size_t)n + 1, sizeof(uint64_t));
    v->m_len = gm_malloc_array((size_t)n + 1, sizeof(uint32_t));
    v->m_left = gm_malloc_array((size_t)n + 1, sizeof(uint32_t));
    if (!v->m_arena || !v->m_off || !v->m_len || !v->m_left || !htab_init(&v->merge_ht, n))
        return gm_fail(err, GEMMA_E_NOMEM, "%s: out of memory for %llu merges", key, (unsigned long long)n);
    uint64_t pos = 0;
    for (uint64_t i = 0; i < n; i++) {
        const char *s = strs[i].ptr;
        uint64_t len = strs[i].len;
        /* split at the first ' ' at index >= 1, as llama.cpp; no space gives ("", "") */
        const char *sp = len > 1 ? memchr(s + 1, ' ', (size_t)len - 1) : NULL;
        uint64_t left = sp ? (uint64_t)(sp - s) : 0, right = sp ? len - left - 1 : 0;
        if (left + right > UINT32_MAX)
            return gm_fail(err, GEMMA_E_MODEL, "%s[%llu]: too long", key, (unsigned long long)i);
        memcpy(v->m_arena + pos, s, (size_t)left);
        if (right)
            memcpy(v->m_arena + pos + left, sp + 1, (size_t)right);
        v->m_off[i] = pos;
        v->m_len[i] = (uint32_t)(left + right);
        v->m_left[i] = (uint32_t)left;
        pos += left + right;
        /* keep the first rank for a duplicate pair (std::map::emplace does not overwrite) */
        const char *p = v->m_arena + v->m_off[i];
        if (gm_vocab_merge_rank(v, p, left, left + right) >= 0)
            continue;
        uint32_t h = (uint32_t)merge_hash(p, left, left + right) & v->merge_ht.mask;
        while (v->merge_ht.slots[h])
            h = (h + 1) & v->merge_ht.mask;
        v->merge_ht.slots[h] = (uint32_t)i + 1;
    }
    return GEMMA_OK;
}

/* ---- special-token trie -------------------------------------------------------------- */

static uint32_t trie_child(const gm_trie *t, uint32_t node, uint8_t b)
{
    if (node == 0)
        return t->root[b];
    if (t->one_c[node] != UINT32_MAX)
        return t->one_b[node] == b ? t->one_c[node] : 0;
    uint32_t key = ((node << 8) | b) + 1;
    uint32_t i = (uint32_t)((uint64_t)key * 0x9e3779b97f4a7c15ull >> 32) & t->edge_mask;
    for (;;) {
        if (t->edge_key[i] == key)
            return t->edge_val[i];
        if (!t->edge_key[i])
            return 0;
        i = (i + 1) & t->edge_mask;
    }
}

static void trie_hash_child(gm_trie *t, uint32_t node, uint8_t b, uint32_t child)
{
    uint32_t key = ((node << 8) | b) + 1;
    uint32_t i = (uint32_t)((uint64_t)key * 0x9e3779b97f4a7c15ull >> 32) & t->edge_mask;
    while (t->edge_key[i])
        i = (i + 1) & t->edge_mask;
    t->edge_key[i] = key;
    t->edge_val[i] = child;
}

static void trie_set_child(gm_trie *t, uint32_t node, uint8_t b, uint32_t child)
{
    if (node == 0) {
        t->root[b] = child;
    } else if (t->one_c[node] == 0) {
        t->one_b[node] = b;
        t->one_c[node] = child;
    } else {
        if (t->one_c[node] != UINT32_MAX) { /* second child: move the first into the hash */
            trie_hash_child(t, node, t->one_b[node], t->one_c[node]);
            t->one_c[node] = UINT32_MAX;
        }
        trie_hash_child(t, node, b, child);
    }
}

static gemma_status build_trie(gm_vocab *v, gemma_error *err)
{
    gm_trie *t = &v->trie;
    uint64_t total = 1;
    uint32_t max_len = 0;
    for (int32_t i = 0; i < v->n; i++)
        if (v->attr[i] & (GM_ATTR_CONTROL | GM_ATTR_USER_DEFINED | GM_ATTR_UNKNOWN)) {
            total += v->tok[i].len;
            max_len = GM_MAX(max_len, v->tok[i].len);
        }
    if (total >= (1u << 23))
        return gm_fail(err, GEMMA_E_MODEL, "tokenizer.ggml.tokens: special-token texts too long (%llu bytes)",
                       (unsigned long long)total);
    t->cap_nodes = (uint32_t)total;
    t->term = gm_malloc_array(total, sizeof(int32_t));
    t->one_b = gm_calloc(total, 1);
    t->one_c = gm_calloc(total, sizeof(uint32_t));
    uint64_t ecap = 16;
    while (ecap < total * 2)
        ecap <<= 1;
    t->edge_key = gm_calloc((size_t)ecap, sizeof(uint32_t));
    t->edge_val = gm_calloc((size_t)ecap, sizeof(uint32_t));
    t->edge_mask = (uint32_t)(ecap - 1);
    t->len_index = gm_calloc((size_t)max_len + 1, sizeof(uint32_t));
    t->lens = gm_calloc((size_t)max_len + 1, sizeof(uint32_t));
    if (!t->term || !t->one_b || !t->one_c || !t->edge_key || !t->edge_val || !t->len_index || !t->lens)
        return gm_fail(err, GEMMA_E_NOMEM, "out of memory for the special-token trie");
    t->term[0] = -1;
    t->n_nodes = 1;
    t->max_len = max_len;
    uint8_t *seen = gm_calloc((size_t)max_len + 1, 1);
    if (!seen)
        return gm_fail(err, GEMMA_E_NOMEM, "out of memory for the special-token trie");
    for (int32_t i = 0; i < v->n; i++) {
        if (!(v->attr[i] & (GM_ATTR_CONTROL | GM_ATTR_USER_DEFINED | GM_ATTR_UNKNOWN)) || !v->tok[i].len)
            continue;
        const uint8_t *s = (const uint8_t *)v->arena + v->tok[i].off;
        uint32_t node = 0;
        for (uint32_t k = 0; k < v->tok[i].len; k++) {
            uint32_t c = trie_child(t, node, s[k]);
            if (!c) {
                c = t->n_nodes++;
                t->term[c] = -1;
                trie_set_child(t, node, s[k], c);
            }
            node = c;
        }
        t->term[node] = i;
        seen[v->tok[i].len] = 1;
    }
    for (uint32_t l = max_len; l >= 1; l--)
        if (seen[l]) {
            t->len_index[l] = t->n_lens;
            t->lens[t->n_lens++] = l;
        }
    free(seen);
    return GEMMA_OK;
}

int32_t gm_trie_match(const gm_vocab *v, const uint8_t *s, size_t len)
{
    const gm_trie *t = &v->trie;
    uint32_t node = 0;
    for (size_t k = 0; k < len; k++) {
        node = trie_child(t, node, s[k]);
        if (!node)
            return -1;
    }
    return t->term[node];
}

uint32_t gm_trie_step(const gm_vocab *v, uint32_t node, uint8_t b) { return trie_child(&v->trie, node, b); }

/* ---- loading ------------------------------------------------------------------------- */

static gemma_status load_tokens(gm_vocab *v, const gguf_ctx *ctx, gemma_error *err)
{
    uint64_t n;
    const gguf_str *strs;
    gemma_status st = gguf_get_str_arr(ctx, "tokenizer.ggml.tokens", &n, &strs, err);
    if (st == GEMMA_E_NOT_FOUND)
        return gm_fail(err, GEMMA_E_MODEL, "tokenizer.ggml.tokens: missing");
    if (st)
        return st;
    if (n == 0 || n > INT32_MAX)
        return gm_fail(err, GEMMA_E_MODEL, "tokenizer.ggml.tokens: bad token count %llu", (unsigned long long)n);
    v->n = (int32_t)n;
    uint64_t total = 0;
    for (uint64_t i = 0; i < n; i++) {
        if (!gm_add_u64(total, strs[i].len, &total) || total > UINT32_MAX)
            return gm_fail(err, GEMMA_E_MODEL, "tokenizer.ggml.tokens: texts exceed 4 GiB at token %llu",
                           (unsigned long long)i);
    }
    v->arena = malloc(total ? (size_t)total : 1);
    v->tok = gm_malloc_array((size_t)n, sizeof *v->tok);
    v->score = gm_calloc((size_t)n, sizeof(float));
    v->attr = gm_calloc((size_t)n, 1);
    v->eog = gm_calloc((size_t)n, 1);
    if (!v->arena || !v->tok || !v->score || !v->attr || !v->eog || !tok_htab_init(&v->tok_ht, n))
        return gm_fail(err, GEMMA_E_NOMEM, "out of memory for %llu tokens", (unsigned long long)n);
    uint64_t pos = 0;
    for (uint64_t i = 0; i < n; i++) {
        memcpy(v->arena + pos, strs[i].ptr, (size_t)strs[i].len);
        v->tok[i].off = (uint32_t)pos;
        v->tok[i].len = (uint32_t)strs[i].len;
        pos += strs[i].len;
        if (v->tok[i].len) /* an empty text can never match input */
            tok_insert(v, (uint32_t)i);
    }
    return GEMMA_OK;
}

static gemma_status load_scores_types(gm_vocab *v, const gguf_ctx *ctx, gemma_error *err)
{
    uint64_t n;
    const void *data;
    gemma_status st = gguf_get_arr(ctx, "tokenizer.ggml.scores", GGUF_T_FLOAT32, &n, &data, err);
    if (st == GEMMA_E_NOT_FOUND && v->kind == GM_VOCAB_SPM)
        return gm_fail(err, GEMMA_E_MODEL, "tokenizer.ggml.scores: missing (the SentencePiece tokenizer needs it)");
    if (st && st != GEMMA_E_NOT_FOUND)
        return st;
    if (!st) {
        if (n != (uint64_t)v->n)
            return gm_fail(err, GEMMA_E_MODEL, "tokenizer.ggml.scores: %llu entries for %d tokens",
                           (unsigned long long)n, v->n);
        for (int32_t i = 0; i < v->n; i++) {
            v->score[i] = gm_rd_f32((const uint8_t *)data + 4 * (size_t)i);
            if (v->score[i] != v->score[i])
                return gm_fail(err, GEMMA_E_MODEL, "tokenizer.ggml.scores[%d]: NaN", i);
        }
    }
    st = gguf_get_arr(ctx, "tokenizer.ggml.token_type", GGUF_T_INT32, &n, &data, err);
    if (st == GEMMA_E_NOT_FOUND)
        return gm_fail(err, GEMMA_E_MODEL, "tokenizer.ggml.token_type: missing");
    if (st)
        return st;
    if (n != (uint64_t)v->n)
        return gm_fail(err, GEMMA_E_MODEL, "tokenizer.ggml.token_type: %llu entries for %d tokens",
                       (unsigned long long)n, v->n);
    static const uint8_t map[7] = {GM_ATTR_UNDEFINED, GM_ATTR_NORMAL, GM_ATTR_UNKNOWN, GM_ATTR_CONTROL,
                                   GM_ATTR_USER_DEFINED, GM_ATTR_UNUSED, GM_ATTR_BYTE};
    for (int32_t i = 0; i < v->n; i++) {
        int32_t ty = (int32_t)gm_rd_u32((const uint8_t *)data + 4 * (size_t)i);
        if (ty < 0 || ty > 6)
            return gm_fail(err, GEMMA_E_MODEL, "tokenizer.ggml.token_type[%d]: %d is not a token type (0..6)", i, ty);
        v->attr[i] = map[ty];
    }
    return GEMMA_OK;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Byte tokens must read exactly "<0xHH>"; byte_tok[] maps each byte to its fallback token. */
static gemma_status load_bytes(gm_vocab *v, gemma_error *err)
{
    static const char hex[] = "0123456789ABCDEF";
    for (int32_t i = 0; i < v->n; i++) {
        if (!(v->attr[i] & GM_ATTR_BYTE))
            continue;
        const char *s = v->arena + v->tok[i].off;
        if (v->tok[i].len != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>' || hexval(s[3]) < 0 || hexval(s[4]) < 0)
            return gm_fail(err, GEMMA_E_MODEL, "tokenizer.ggml.tokens[%d]: byte token is not <0xHH> (\"%.*s\")", i,
                           (int)GM_MIN(v->tok[i].len, 32u), s);
    }
    for (int b = 0; b < 256; b++) {
        char buf[6] = {'<', '0', 'x', hex[b >> 4], hex[b & 15], '>'};
        gemma_token t = gm_vocab_find(v, buf, 6);
        if (t < 0 && v->kind == GM_VOCAB_SPM) {
            char c = (char)b;
            t = gm_vocab_find(v, &c, 1);
        }
        v->byte_tok[b] = t;
    }
    return GEMMA_OK;
}

static gemma_status get_id(const gm_vocab *v, const gguf_ctx *ctx, const char *key, gemma_token *id, gemma_error *err)
{
    uint32_t u;
    gemma_status st = gguf_get_u32(ctx, key, &u, err);
    if (st == GEMMA_E_NOT_FOUND)
        return GEMMA_OK;
    if (st)
        return st;
    if (u >= (uint32_t)v->n)
        return gm_fail(err, GEMMA_E_MODEL, "%s: token id %u is outside the vocabulary (%d tokens)", key, u, v->n);
    *id = (gemma_token)u;
    return GEMMA_OK;
}

static gemma_status get_flag(const gguf_ctx *ctx, const char *key, bool *flag, gemma_error *err)
{
    gemma_status st = gguf_get_bool(ctx, key, flag, err);
    return st == GEMMA_E_NOT_FOUND ? GEMMA_OK : st;
}

/* Id of the token whose text is a (or b), or -1. */
static gemma_token find_special(const gm_vocab *v, const char *a, const char *b)
{
    gemma_token t = gm_vocab_find(v, a, strlen(a));
    return t < 0 && b ? gm_vocab_find(v, b, strlen(b)) : t;
}

static gemma_status load_specials(gm_vocab *v, const gguf_ctx *ctx, gemma_error *err)
{
    gemma_token eom = -1, sep = -1, mask = -1;
    /* SPM: BOS and a space prefix by default; gemma4 neither */
    if (v->kind == GM_VOCAB_SPM) {
        v->bos = v->eos = v->unk = -1;
        v->add_bos = true, v->add_space_prefix = true;
    } else {
        v->clean_spaces = true;
    }
    gemma_status st;
    if ((st = get_id(v, ctx, "tokenizer.ggml.bos_token_id", &v->bos, err)) ||
        (st = get_id(v, ctx, "tokenizer.ggml.eos_token_id", &v->eos, err)) ||
        (st = get_id(v, ctx, "tokenizer.ggml.unknown_token_id", &v->unk, err)) ||
        (st = get_id(v, ctx, "tokenizer.ggml.padding_token_id", &v->pad, err)) ||
        (st = get_id(v, ctx, "tokenizer.ggml.seperator_token_id", &sep, err)) ||
        (st = get_id(v, ctx, "tokenizer.ggml.mask_token_id", &mask, err)) ||
        (st = get_id(v, ctx, "tokenizer.ggml.eot_token_id", &v->eot, err)) ||
        (st = get_id(v, ctx, "tokenizer.ggml.eom_token_id", &eom, err)) ||
        (st = get_flag(ctx, "tokenizer.ggml.add_bos_token", &v->add_bos, err)) ||
        (st = get_flag(ctx, "tokenizer.ggml.add_eos_token", &v->add_eos, err)) ||
        (st = get_flag(ctx, "tokenizer.ggml.add_space_prefix", &v->add_space_prefix, err)))
        return st;
    if (v->kind == GM_VOCAB_SPM) {
        /* Ids the file leaves out come from the vocabulary's own tokens, not from llama.cpp's
         * SPM defaults 1/2/0: in Gemma's vocabulary id 1 is <eos> and 2 is <bos>. */
        if (v->bos < 0)
            v->bos = find_special(v, "<bos>", "<s>");
        if (v->eos < 0)
            v->eos = find_special(v, "<eos>", "</s>");
        if (v->unk < 0)
            v->unk = find_special(v, "<unk>", NULL);
    }
    if (v->kind == GM_VOCAB_BPE)
        v->add_bos = true; /* llama.cpp forces BOS for Gemma 4 whatever the file says */
    if (v->add_bos && v->bos < 0)
        return gm_fail(err, GEMMA_E_MODEL, "tokenizer.ggml.bos_token_id: missing, no <bos> token in the "
                                           "vocabulary, and add_bos_token is set");
    if (v->add_eos && v->eos < 0)
        return gm_fail(err, GEMMA_E_MODEL, "tokenizer.ggml.eos_token_id: missing but add_eos_token is set");

    /* End-of-generation set, found by text as llama.cpp does (spec 5.1). */
    static const char *const eog_texts[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>",
                                            "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "<|end_of_text|>",
                                            "<eos>", "<turn|>", "<|tool_response>"};
    static const char *const eot_texts[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>",
                                            "<|endoftext|>", "<|end_of_text|>", "<EOT>"};
    if (v->eot < 0)
        for (size_t k = 0; k < sizeof eot_texts / sizeof *eot_texts && v->eot < 0; k++)
            v->eot = gm_vocab_find(v, eot_texts[k], strlen(eot_texts[k]));
    if (v->eot >= 0)
        v->attr[v->eot] |= GM_ATTR_CONTROL;
    for (size_t k = 0; k < sizeof eog_texts / sizeof *eog_texts; k++) {
        gemma_token t = gm_vocab_find(v, eog_texts[k], strlen(eog_texts[k]));
        if (t >= 0) {
            v->eog[t] = 1;
            v->attr[t] |= GM_ATTR_CONTROL;
        }
    }
    if (v->eos >= 0)
        v->eog[v->eos] = 1;
    if (v->eot >= 0)
        v->eog[v->eot] = 1;
    if (eom >= 0)
        v->eog[eom] = 1;
    /* Gemma 4 (has <|tool_response>): </s> is not an end of generation and is a normal token */
    gemma_token tr = gm_vocab_find(v, "<|tool_response>", 16), s = gm_vocab_find(v, "</s>", 4);
    if (tr >= 0 && s >= 0 && v->eog[tr] && s != v->eos) {
        v->eog[s] = 0;
        v->attr[s] = GM_ATTR_NORMAL;
    }
    /* control tokens named "unused" are flagged unused (display only; they stay candidates) */
    for (int32_t i = 0; i < v->n; i++)
        if ((v->attr[i] & GM_ATTR_CONTROL) && v->tok[i].len >= 6) {
            const char *p = v->arena + v->tok[i].off;
            for (uint32_t k = 0; k + 6 <= v->tok[i].len; k++)
                if (!memcmp(p + k, "unused", 6)) {
                    v->attr[i] |= GM_ATTR_UNUSED;
                    break;
                }
        }
    return GEMMA_OK;
}

gemma_status gm_vocab_load(const gguf_ctx *ctx, gm_vocab **out, gemma_error *err)
{
    *out = NULL;
    gguf_str model;
    gemma_status st = gguf_get_str(ctx, "tokenizer.ggml.model", &model, err);
    if (st == GEMMA_E_NOT_FOUND)
        return gm_fail(err, GEMMA_E_MODEL, "tokenizer.ggml.model: missing (the file has no tokenizer)");
    if (st)
        return st;
    gm_vocab *v = calloc(1, sizeof *v);
    if (!v)
        return gm_fail(err, GEMMA_E_NOMEM, "out of memory for the vocabulary");
    v->bos = v->eos = v->unk = v->pad = v->eot = -1;
    if (model.len == 5 && !memcmp(model.ptr, "llama", 5))
        v->kind = GM_VOCAB_SPM;
    else if (model.len == 6 && !memcmp(model.ptr, "gemma4", 6))
        v->kind = GM_VOCAB_BPE;
    else {
        st = gm_fail(err, GEMMA_E_UNSUPPORTED, "tokenizer.ggml.model: \"%.*s\" is not a Gemma tokenizer "
                     "(expected \"llama\" or \"gemma4\")", (int)GM_MIN(model.len, 64u), model.ptr);
        goto fail;
    }
    if ((st = load_tokens(v, ctx, err)) || (st = load_scores_types(v, ctx, err)) || (st = load_bytes(v, err)) ||
        (st = load_specials(v, ctx, err)) || (st = build_trie(v, err)))
        goto fail;
    if (v->kind == GM_VOCAB_BPE && (st = load_merges(v, ctx, err)))
        goto fail;
    if ((st = gm_vocab_init_split(v, err)))
        goto fail;
    *out = v;
    return GEMMA_OK;
fail:
    gm_vocab_free(v);
    return st;
}

void gm_vocab_free(gm_vocab *v)
{
    if (!v)
        return;
    free(v->arena);
    free(v->tok);
    free(v->score);
    free(v->attr);
    free(v->eog);
    free(v->tok_ht.slots);
    free(v->m_arena);
    free(v->m_off);
    free(v->m_len);
    free(v->m_left);
    free(v->merge_ht.slots);
    free(v->cross);
    free(v->trie.edge_key);
    free(v->trie.edge_val);
    free(v->trie.term);
    free(v->trie.one_b);
    free(v->trie.one_c);
    free(v->trie.lens);
    free(v->trie.len_index);
    free(v);
}

/* ---- accessors ----------------------------------------------------------------------- */

gm_vocab_kind gm_vocab_kind_of(const gm_vocab *v) { return v->kind; }
int32_t gm_vocab_n(const gm_vocab *v) { return v->n; }
gemma_token gm_vocab_bos(const gm_vocab *v) { return v->bos; }
gemma_token gm_vocab_eos(const gm_vocab *v) { return v->eos; }
bool gm_vocab_add_bos(const gm_vocab *v) { return v->add_bos; }
bool gm_vocab_is_eog(const gm_vocab *v, gemma_token t) { return t >= 0 && t < v->n && v->eog[t]; }
uint32_t gm_vocab_attr(const gm_vocab *v, gemma_token t) { return t >= 0 && t < v->n ? v->attr[t] : 0; }
float gm_vocab_score(const gm_vocab *v, gemma_token t) { return t >= 0 && t < v->n ? v->score[t] : 0.0f; }
gemma_token gm_vocab_byte_token(const gm_vocab *v, uint8_t b) { return v->byte_tok[b]; }

const char *gm_vocab_text(const gm_vocab *v, gemma_token t, size_t *len)
{
    if (t < 0 || t >= v->n)
        return NULL;
    *len = v->tok[t].len;
    return v->arena + v->tok[t].off;
}

gemma_status gm_tokens_push(gm_tokens *t, gemma_token id)
{
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        gemma_token *p = cap > SIZE_MAX / sizeof *p ? NULL : realloc(t->ids, cap * sizeof *p);
        if (!p)
            return GEMMA_E_NOMEM;
        t->ids = p;
        t->cap = cap;
    }
    t->ids[t->n++] = id;
    return GEMMA_OK;
}

void gm_tokens_free(gm_tokens *t)
{
    if (!t)
        return;
    free(t->ids);
    t->ids = NULL;
    t->n = t->cap = 0;
}
