/* Fuzz target: chat-message rendering. Byte 0 holds flags (bit 0 family: Gemma 3 with the
 * SPM vocabulary or Gemma 4 with the synthetic BPE one; bit 1 add_generation_prompt; bit 2
 * add_bos; bit 3 enable_thinking; bit 4 a NULL content; bit 5 every message also carries a
 * tool call, reasoning and a tool_call_id from its fields; bit 6 the last field is the tools
 * JSON; bit 7 a session's later turn). The rest is split at NUL bytes
 * into role, content, role, content, ... (at most 64 messages). Rendered text is then
 * tokenized as a session does with a chat turn (content as text, and trusted). Also fuzzes the
 * architecture-name lookup with the first field. */
#include "fuzz-common.h"
#include "fuzz-vocab.h"

#define CH_MAX_MSGS 64

static gm_vocab *ch_vocab[2];
static bool ch_loaded;

static void ch_cleanup(void)
{
    gm_vocab_free(ch_vocab[0]);
    gm_vocab_free(ch_vocab[1]);
    ch_vocab[0] = ch_vocab[1] = NULL;
    ch_loaded = false;
}

static void ch_init(void)
{
    if (ch_loaded)
        return;
    ch_loaded = true;
    ch_vocab[0] = fz_spm_vocab();
    ch_vocab[1] = fz_bpe_vocab();
    if (!ch_vocab[0] || !ch_vocab[1])
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    ch_init();
    uint8_t flags = data[0];
    /* NUL-terminated copy so every field is a C string */
    char *buf = malloc(size + 1);
    if (!buf)
        return 0;
    memcpy(buf, data + 1, size - 1);
    buf[size - 1] = '\0';
    const char *fields[2 * CH_MAX_MSGS];
    size_t n_fields = 0;
    for (size_t i = 0; i < size - 1 && n_fields < 2 * CH_MAX_MSGS;) {
        fields[n_fields++] = buf + i;
        i += strlen(buf + i) + 1;
    }
    gemma_chat_message msgs[CH_MAX_MSGS];
    gemma_tool_call calls[CH_MAX_MSGS];
    memset(msgs, 0, sizeof msgs);
    size_t n_msgs = n_fields / 2;
    for (size_t i = 0; i < n_msgs; i++) {
        msgs[i].role = fields[2 * i];
        msgs[i].content = fields[2 * i + 1];
        if (flags & 0x20) { /* every message also calls a tool (named by its role) with its content */
            calls[i] = (gemma_tool_call){i % 2 ? "id" : NULL, fields[2 * i], fields[2 * i + 1]};
            msgs[i].tool_calls = &calls[i];
            msgs[i].n_tool_calls = 1;
            msgs[i].reasoning = msgs[i].tool_call_id = fields[2 * i + 1];
        }
    }
    if ((flags & 0x10) && n_msgs)
        msgs[n_msgs - 1].content = NULL;

    gemma_error err;
    int which = flags & 1;
    gm_chat_opts opts = {.add_generation_prompt = flags & 2, .add_bos = flags & 4, .enable_thinking = flags & 8,
                         .tools = flags & 0x40 && n_fields ? fields[n_fields - 1] : NULL,
                         .continuation = flags & 0x80};
    gm_chat_text t;
    gemma_status st = gm_chat_render_marked(ch_vocab[which], which ? GM_CHAT_GEMMA4 : GM_CHAT_GEMMA3, msgs, n_msgs, &opts, &t,
                               &err);
    if (st == GEMMA_OK) {
        if (!t.text || strlen(t.text) != t.len)
            __builtin_trap(); /* contents hold no NUL here, so neither may the text */
        for (size_t k = 0; k < t.n_marks; k++) /* markers in order, inside the text */
            if (t.marks[k].off + t.marks[k].len > t.len || (k && t.marks[k].off < t.marks[k - 1].off))
                __builtin_trap();
        for (int trusted = 0; trusted < 2; trusted++) {
            gm_tokens toks = {0};
            if ((st = gm_chat_tokenize(ch_vocab[which], &t, trusted, &toks, &err)))
                fz_check_error(st, &err);
            gm_tokens_free(&toks);
        }
    } else {
        fz_check_error(st, &err);
        if (t.text)
            __builtin_trap();
    }
    gm_chat_text_free(&t);
    free(buf);
    return 0;
}
