/*
 * gemma.h -- the public API of libgemma, an offline on-device runtime for Google's
 * Gemma models stored as GGUF files.
 *
 * Conventions
 *  - Every fallible function returns a gemma_status: GEMMA_OK (0) or a negative code.
 *    gemma_strerror() names the code; a detailed message (which field, which byte offset,
 *    what to do) goes into the caller's gemma_error when one is passed (it may be NULL),
 *    or into the session (gemma_session_last_error) for session calls.
 *  - Objects are opaque. Constructors return the object through an out-parameter.
 *    Every *_free function accepts NULL.
 *  - Thread safety is stated next to each function. In short: a gemma_model is immutable
 *    after loading and may be shared by any number of threads and sessions; a
 *    gemma_session is used by one thread at a time, except gemma_session_cancel(). A call
 *    that would enter a session already inside a call (another thread, or its own on_token
 *    callback) is refused with GEMMA_E_BUSY (see "Sessions").
 *  - The library never calls exit() or abort() and keeps no global mutable state.
 *  - Strings are UTF-8 with explicit lengths where they come from the model; invalid
 *    UTF-8 input is accepted and tokenized as bytes.
 *  - Structs that can grow (parameters, info, stats, results) start with `size_t size`, the
 *    struct's size as the caller was compiled. Parameters: gemma_*_params_init(&p, sizeof p)
 *    sets size and the defaults, then set the fields you want. Structs the library fills:
 *    set size first (`info.size = sizeof info;`). New fields are only ever
 *    appended (never inserted, resized or removed) and a field the caller's size does not
 *    cover keeps its default, so a program built against an older gemma.h runs unchanged on
 *    a newer library. A size below the first version's or above this header's is refused
 *    with GEMMA_E_INVALID_ARG.
 */
#ifndef GEMMA_H
#define GEMMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32) && defined(GEMMA_SHARED)
#  ifdef GEMMA_BUILD
#    define GEMMA_API __declspec(dllexport)
#  else
#    define GEMMA_API __declspec(dllimport)
#  endif
#elif defined(__GNUC__)
#  define GEMMA_API __attribute__((visibility("default")))
#else
#  define GEMMA_API
#endif

#define GEMMA_VERSION_MAJOR 0
#define GEMMA_VERSION_MINOR 1
#define GEMMA_VERSION_PATCH 0

/* Marks a declaration that the next minor version removes; it keeps working until then. */
#if defined(__GNUC__) || defined(__clang__)
#  define GEMMA_DEPRECATED(msg) __attribute__((deprecated(msg)))
#elif defined(_MSC_VER)
#  define GEMMA_DEPRECATED(msg) __declspec(deprecated(msg))
#else
#  define GEMMA_DEPRECATED(msg)
#endif

/* "0.1.0"; static storage. Thread-safe. */
GEMMA_API const char *gemma_version(void);

/* ---------------------------------------------------------------------------------------
 * Status codes. One list generates the enum, gemma_strerror() and gemma_status_name().
 * ------------------------------------------------------------------------------------ */
#define GEMMA_STATUS_MAP(X)                                                                  \
    X(OK, 0, "success")                                                                      \
    X(E_INVALID_ARG, -1, "invalid argument")                                                 \
    X(E_NOMEM, -2, "out of memory")                                                          \
    X(E_IO, -3, "cannot read file")                                                          \
    X(E_FORMAT, -4, "malformed GGUF file")                                                   \
    X(E_UNSUPPORTED, -5, "unsupported model or feature")                                     \
    X(E_MODEL, -6, "model file is inconsistent (missing tensor, bad shape or hyper-parameter)") \
    X(E_NOT_FOUND, -7, "not found")                                                          \
    X(E_BUFFER_TOO_SMALL, -8, "output buffer too small")                                     \
    X(E_CONTEXT_FULL, -9, "context window is full")                                          \
    X(E_CANCELLED, -10, "cancelled")                                                         \
    X(E_ABORTED, -11, "aborted by callback")                                                 \
    X(E_CHAT, -12, "invalid chat messages")                                                  \
    X(E_INTERNAL, -13, "internal error")                                                     \
    X(E_BUSY, -14, "session is busy: another call on it is running (another thread, or on_token)")

typedef enum gemma_status {
#define GEMMA_X_ENUM(name, val, msg) GEMMA_##name = (val),
    GEMMA_STATUS_MAP(GEMMA_X_ENUM)
#undef GEMMA_X_ENUM
} gemma_status;

/* Short English description of a code ("out of memory"); static storage. Thread-safe. */
GEMMA_API const char *gemma_strerror(gemma_status status);
/* The code's name without prefix ("E_NOMEM"); static storage. Thread-safe. */
GEMMA_API const char *gemma_status_name(gemma_status status);

/* Detailed error report, filled by functions that take a gemma_error *. */
typedef struct gemma_error {
    gemma_status code;
    char message[512]; /* NUL-terminated; names the field, tensor or byte offset involved */
} gemma_error;

/* ---------------------------------------------------------------------------------------
 * Model files: read-only inspection of a GGUF container (header, metadata, tensor table)
 * without building a model. Everything a gemma_gguf hands out is owned by it and stays
 * valid until gemma_gguf_close. A gemma_gguf is immutable once opened: all functions
 * below are thread-safe on the same handle, except gemma_gguf_close.
 * ------------------------------------------------------------------------------------ */
typedef struct gemma_gguf gemma_gguf;

/* GGUF metadata value types (the ids used in the file). */
typedef enum gemma_gguf_type {
    GEMMA_GGUF_INVALID = -1, /* what the accessors below return for an out-of-range index */
    GEMMA_GGUF_UINT8 = 0, GEMMA_GGUF_INT8 = 1, GEMMA_GGUF_UINT16 = 2, GEMMA_GGUF_INT16 = 3,
    GEMMA_GGUF_UINT32 = 4, GEMMA_GGUF_INT32 = 5, GEMMA_GGUF_FLOAT32 = 6, GEMMA_GGUF_BOOL = 7,
    GEMMA_GGUF_STRING = 8, GEMMA_GGUF_ARRAY = 9, GEMMA_GGUF_UINT64 = 10, GEMMA_GGUF_INT64 = 11,
    GEMMA_GGUF_FLOAT64 = 12
} gemma_gguf_type;

/* Opens path (memory-mapped read-only) and validates the container: magic, version,
 * every metadata record and tensor-info record, alignment, and that every tensor's data
 * lies inside the file without overlapping another. It does not check that the file is a
 * usable model (gemma_model_load does). On failure *out is NULL and err says which field
 * at which byte offset is wrong: GEMMA_E_IO (cannot read), GEMMA_E_FORMAT (malformed),
 * GEMMA_E_NOMEM. Thread-safe. */
GEMMA_API gemma_status gemma_gguf_open(const char *path, gemma_gguf **out, gemma_error *err);
/* Unmaps the file and frees the handle. NULL is a no-op. */
GEMMA_API void gemma_gguf_close(gemma_gguf *g);

/* GGUF version (2 or 3). */
GEMMA_API uint32_t gemma_gguf_version(const gemma_gguf *g);
/* File size and the file offset where tensor data starts; the data alignment. */
GEMMA_API uint64_t gemma_gguf_file_size(const gemma_gguf *g);
GEMMA_API uint64_t gemma_gguf_data_offset(const gemma_gguf *g);
GEMMA_API uint32_t gemma_gguf_alignment(const gemma_gguf *g);

/* Metadata records, in file order, indexed 0 .. n_kv-1. */
GEMMA_API size_t gemma_gguf_n_kv(const gemma_gguf *g);
/* Key of record i, NUL-terminated (a key containing a NUL byte shows up to that byte);
 * NULL when i is out of range. */
GEMMA_API const char *gemma_gguf_kv_key(const gemma_gguf *g, size_t i);
/* Index of key, or -1 when absent. O(1). */
GEMMA_API int64_t gemma_gguf_find_key(const gemma_gguf *g, const char *key);
/* Value type of record i; for arrays also the element type (GEMMA_GGUF_INVALID for
 * scalars) and the element count (scalars: 1). Out-of-range i gives GEMMA_GGUF_INVALID / 0. */
GEMMA_API gemma_gguf_type gemma_gguf_kv_type(const gemma_gguf *g, size_t i);
GEMMA_API gemma_gguf_type gemma_gguf_kv_elem_type(const gemma_gguf *g, size_t i);
GEMMA_API uint64_t gemma_gguf_kv_count(const gemma_gguf *g, size_t i);
/* "UINT32", "STRING", ... for a gemma_gguf_type; "INVALID" otherwise. Static storage. */
GEMMA_API const char *gemma_gguf_type_name(gemma_gguf_type type);
/* Renders record i's value as text into buf (always NUL-terminated when cap > 0).
 * Scalars as numbers, true/false, or the raw string; arrays as "[n x TYPE] a, b, c, ..."
 * with the first few elements (strings quoted and escaped). Returns GEMMA_OK,
 * GEMMA_E_INVALID_ARG for a bad index, or GEMMA_E_BUFFER_TOO_SMALL when the text was
 * cut to fit (buf still holds the truncated text). */
GEMMA_API gemma_status gemma_gguf_kv_to_string(const gemma_gguf *g, size_t i, char *buf, size_t cap);
/* Integer or bool element idx of record i (scalars: idx 0). GEMMA_E_INVALID_ARG when the
 * value is not an integer/bool, idx is out of range, or a UINT64 exceeds INT64_MAX. */
GEMMA_API gemma_status gemma_gguf_kv_get_int(const gemma_gguf *g, size_t i, uint64_t idx, int64_t *out);

/* Lookups by key with an exact type check: GEMMA_E_NOT_FOUND when absent, GEMMA_E_MODEL
 * when stored with another type. get_str gives a pointer into the file (valid until
 * close; NOT NUL-terminated; may contain any bytes) and its length. */
GEMMA_API gemma_status gemma_gguf_get_u32(const gemma_gguf *g, const char *key, uint32_t *out);
GEMMA_API gemma_status gemma_gguf_get_f32(const gemma_gguf *g, const char *key, float *out);
GEMMA_API gemma_status gemma_gguf_get_str(const gemma_gguf *g, const char *key, const char **str,
                                          size_t *len);

/* The tensor table, in file order. Set size before the call (see Conventions). */
typedef struct gemma_tensor_info {
    size_t size;
    const char *name;      /* NUL-terminated; owned by the gemma_gguf */
    const char *type_name; /* "Q4_K", "F32", ...; static storage */
    uint32_t type;         /* ggml type id */
    int32_t n_dims;
    int64_t ne[4];         /* ne[0] is the contiguous dimension; missing dims are 1 */
    uint64_t n_elements;
    uint64_t offset;       /* relative to gemma_gguf_data_offset() */
    uint64_t nbytes;
} gemma_tensor_info;

GEMMA_API size_t gemma_gguf_n_tensors(const gemma_gguf *g);
/* Fills *out for tensor i; GEMMA_E_INVALID_ARG when i is out of range or out->size is bad. */
GEMMA_API gemma_status gemma_gguf_tensor(const gemma_gguf *g, size_t i, gemma_tensor_info *out);

/* ---------------------------------------------------------------------------------------
 * Models
 * ------------------------------------------------------------------------------------ */
typedef struct gemma_model gemma_model;

/* Progress of a load, in [0, 1]. Return nonzero to abort the load (GEMMA_E_ABORTED). */
typedef int (*gemma_progress_fn)(float progress, void *user);

/* use_mmap: the file is mapped read-only (default): fast to load and shared with other
 * processes through the page cache, but the model then depends on the file for its whole
 * life. If the file is truncated or replaced in place while mapped, the next read of a lost
 * page raises SIGBUS in the thread that touched it (often a worker of a session's pool):
 * the library installs no signal handlers and cannot turn that into a status code. With
 * use_mmap = false the file is read into memory once and later changes to it cannot affect
 * the model (the gemma tool: --no-mmap; its handler turns the SIGBUS into an E_IO message
 * and exit status 74). Replacing a model by rename(2) is always safe: the mapping keeps the
 * old file.
 * validate_data: also scan every tensor (1-D norms included) for NaN/Inf; the first one
 * found is GEMMA_E_MODEL naming the tensor, row and element (slow; default false). */
typedef struct gemma_model_params {
    size_t size;                /* sizeof(gemma_model_params), set by gemma_model_params_init */
    bool use_mmap;              /* map the file read-only (default); false reads it into memory */
    bool validate_data;         /* also scan every tensor for NaN/Inf (slow; default false) */
    gemma_progress_fn progress; /* may be NULL */
    void *progress_user;
} gemma_model_params;

/* Sets p->size = size and the defaults (use_mmap = true). GEMMA_E_INVALID_ARG for a bad
 * size (pass sizeof *p). Thread-safe. */
GEMMA_API gemma_status gemma_model_params_init(gemma_model_params *p, size_t size);

/* Loads and validates a GGUF model. The file is untrusted: every size, offset, type and
 * hyper-parameter is checked before use. On failure *out is NULL and err (if given)
 * says what is wrong. params may be NULL for defaults.
 * Thread-safe (loads of different models may run concurrently). */
GEMMA_API gemma_status gemma_model_load(const char *path, const gemma_model_params *params,
                                        gemma_model **out, gemma_error *err);

/* Frees the model. Every session created from it must be freed first. NULL is a no-op. */
GEMMA_API void gemma_model_free(gemma_model *model);

typedef struct gemma_model_info {
    size_t size;              /* set by the caller: sizeof(gemma_model_info) */
    const char *architecture; /* "gemma3", "gemma4"; owned by the model */
    const char *name;         /* general.name or "" */
    const char *size_label;   /* "270M", "1B", ... (from general.size_label or derived) */
    int32_t n_layer;
    int32_t n_embd;
    int32_t n_head;
    int32_t n_head_kv;
    int32_t head_dim;
    int32_t n_ff;
    int32_t n_ctx_train;
    int32_t n_vocab;
    int32_t sliding_window; /* 0 when every layer is global */
    int32_t n_swa_layers;   /* number of local (sliding-window) layers */
    uint64_t n_params;
    uint64_t weight_bytes;   /* bytes of tensor data */
    bool has_chat_template;
} gemma_model_info;

/* Fills *info (its first info->size bytes); pointers stay valid while the model lives.
 * Thread-safe. */
GEMMA_API gemma_status gemma_model_get_info(const gemma_model *model, gemma_model_info *info);

/* The size label ("270M", "E2B", ...) the library gives a model of architecture arch with
 * n_layer layers when its file has no general.size_label; NULL when arch or that layer count
 * is unknown. Needs no loaded model (gemma inspect uses it on files it only parses). */
GEMMA_API const char *gemma_arch_size_label(const char *arch, int32_t n_layer);

/* ---------------------------------------------------------------------------------------
 * Tokenizer (all thread-safe: the model is read-only)
 * ------------------------------------------------------------------------------------ */
typedef int32_t gemma_token;

/* Tokenizes text[0..len). add_bos prepends BOS when the model asks for it; parse_special
 * turns control-token text such as "<start_of_turn>" into the control token.
 * Writes at most cap ids to tokens and the total count to *n_tokens. When cap is too
 * small, returns GEMMA_E_BUFFER_TOO_SMALL with *n_tokens set to the count needed. */
GEMMA_API gemma_status gemma_tokenize(const gemma_model *model, const char *text, size_t len,
                                      bool add_bos, bool parse_special, gemma_token *tokens,
                                      size_t cap, size_t *n_tokens);

/* Text of one token into buf (not NUL-terminated). Control tokens give "" unless
 * special is true. Byte tokens give their single raw byte, which may be part of a
 * multi-byte UTF-8 character: use gemma_detok for streaming text.
 * Returns GEMMA_E_BUFFER_TOO_SMALL with *len set to the size needed. */
GEMMA_API gemma_status gemma_token_to_piece(const gemma_model *model, gemma_token token,
                                            bool special, char *buf, size_t cap, size_t *len);

GEMMA_API int32_t gemma_vocab_size(const gemma_model *model);
GEMMA_API gemma_token gemma_token_bos(const gemma_model *model);
GEMMA_API gemma_token gemma_token_eos(const gemma_model *model);
/* True for end-of-generation tokens (EOS, <end_of_turn>, Gemma 4's <turn|>, ...). */
GEMMA_API bool gemma_token_is_eog(const gemma_model *model, gemma_token token);

/* Streaming detokenizer: holds back incomplete UTF-8 so that concatenating its output
 * always gives valid UTF-8. One per stream; not thread-safe. */
typedef struct gemma_detok gemma_detok;
GEMMA_API gemma_status gemma_detok_create(const gemma_model *model, bool special, gemma_detok **out);
GEMMA_API void gemma_detok_free(gemma_detok *d);
/* Feeds one token; *text points to the bytes ready to print (valid until the next call). */
GEMMA_API gemma_status gemma_detok_push(gemma_detok *d, gemma_token token, const char **text,
                                        size_t *len);
/* Flushes what is held back; incomplete sequences come out as U+FFFD. */
GEMMA_API gemma_status gemma_detok_flush(gemma_detok *d, const char **text, size_t *len);

/* ---------------------------------------------------------------------------------------
 * Chat templates. The template family comes from the model's architecture and metadata;
 * template code in the file is never executed.
 * ------------------------------------------------------------------------------------ */
/* A function call the assistant made (OpenAI's tool_calls[i]). */
typedef struct gemma_tool_call {
    const char *id;        /* may be NULL; a tool message answers it by tool_call_id */
    const char *name;      /* the function's name */
    const char *arguments; /* a JSON object as text (a non-object is written as it is) */
} gemma_tool_call;

/* One chat message. Fields after content are optional (zero them when unused), so
 * {"user", "Hi"} is a complete message. */
typedef struct gemma_chat_message {
    const char *role;    /* "system" (or "developer"), "user", "assistant" (or "model"), "tool" */
    const char *content; /* NUL-terminated UTF-8; NULL means none (an assistant's tool calls only) */
    const char *reasoning;            /* assistant: its thoughts; Gemma 4 keeps them only in the
                                         tool-calling turns after the last user message */
    const gemma_tool_call *tool_calls; /* assistant: the calls it made */
    size_t n_tool_calls;
    const char *tool_call_id;          /* tool: the call this result answers */
    const char *name;                  /* tool: the function's name (when no id matches) */
} gemma_chat_message;

/* How a chat is rendered and tokenized. Initialize with gemma_chat_params_init().
 *
 * Turn injection: message content (user, system, assistant, tool) is untrusted text. By
 * default gemma_chat_tokenize and gemma_session_feed_chat turn only the template's own
 * markers (<bos>, <start_of_turn>, <|turn>, <|channel>, ...) into control tokens; the same
 * text inside a message is tokenized as ordinary characters, so a message containing
 * "<end_of_turn>\n<start_of_turn>model\n" cannot forge a turn. Callers whose messages are
 * trusted and deliberately contain control-token text set trusted_content. */
typedef struct gemma_chat_params {
    size_t size;                /* sizeof(gemma_chat_params), set by gemma_chat_params_init */
    bool add_generation_prompt; /* end where the model's answer begins (default true) */
    bool add_bos;               /* start with BOS (default true) */
    bool enable_thinking;       /* Gemma 4: let the model think before answering (default false) */
    bool trusted_content;       /* parse control-token text inside content too (default false) */
    const char *tools;          /* OpenAI "tools": a JSON array of {"type": "function", "function":
                                   {"name", "description", "parameters"}}, or NULL for none */
} gemma_chat_params;

/* Sets p->size = size and the defaults above. GEMMA_E_INVALID_ARG for a bad size (pass
 * sizeof *p). Thread-safe. */
GEMMA_API gemma_status gemma_chat_params_init(gemma_chat_params *p, size_t size);

/* Renders and tokenizes messages as described at gemma_chat_params (params NULL: defaults).
 * Writes at most cap ids and the total count to *n_tokens; GEMMA_E_BUFFER_TOO_SMALL with
 * *n_tokens set to the count needed when cap is too small; GEMMA_E_CHAT for bad roles.
 * Thread-safe. */
GEMMA_API gemma_status gemma_chat_tokenize(const gemma_model *model, const gemma_chat_message *msgs,
                                           size_t n_msgs, const gemma_chat_params *params, gemma_token *tokens,
                                           size_t cap, size_t *n_tokens, gemma_error *err);

/* Model output as an assistant message: gemma_chat_parser splits generated text into answer
 * content, reasoning (Gemma 4's <|channel>thought ... <channel|>) and tool calls (Gemma 4's
 * <|tool_call>call:NAME{...}<tool_call|>; with tools, Gemma 3's {"name": ..., "parameters": ...}),
 * while it streams. Text that may still turn out to be a marker or a call is held back, so a
 * call never shows up as content; a call that does not parse comes out as content. */
typedef enum gemma_chat_event_kind {
    GEMMA_CHAT_CONTENT = 0,   /* answer text: text, len */
    GEMMA_CHAT_REASONING = 1, /* thought text: text, len */
    GEMMA_CHAT_TOOL_CALL = 2  /* a complete call: name, arguments (a JSON object), index */
} gemma_chat_event_kind;

typedef struct gemma_chat_event {
    gemma_chat_event_kind kind;
    const char *text; /* CONTENT / REASONING: new text, not NUL-terminated, valid during the call */
    size_t len;
    const char *name;      /* TOOL_CALL: NUL-terminated, valid during the call */
    const char *arguments; /* TOOL_CALL: compact JSON object text, NUL-terminated */
    int32_t index;         /* TOOL_CALL: 0, 1, ... within this answer */
} gemma_chat_event;

/* Receives parser events; return nonzero to stop (the push returns GEMMA_E_ABORTED). */
typedef int (*gemma_chat_event_fn)(void *user, const gemma_chat_event *ev);

typedef struct gemma_chat_parser gemma_chat_parser;

/* A parser for one answer of model, for the prompt rendered with params (Gemma 3 looks for
 * calls only when params->tools is set; NULL: no tools). One per answer; not thread-safe. */
GEMMA_API gemma_status gemma_chat_parser_create(const gemma_model *model, const gemma_chat_params *params,
                                                gemma_chat_parser **out, gemma_error *err);
GEMMA_API void gemma_chat_parser_free(gemma_chat_parser *p);
/* Feeds generated text (any split, e.g. each gemma_token_fn piece); fn gets the events that
 * are decided. GEMMA_E_ABORTED when fn stopped, GEMMA_E_NOMEM. */
GEMMA_API gemma_status gemma_chat_parser_push(gemma_chat_parser *p, const char *text, size_t len,
                                              gemma_chat_event_fn fn, void *user);
/* Ends the answer: what is held back comes out. A call that never closed (generation cut
 * off by max_tokens) is dropped and *cut_call (may be NULL) set. */
GEMMA_API gemma_status gemma_chat_parser_finish(gemma_chat_parser *p, gemma_chat_event_fn fn, void *user,
                                                bool *cut_call);

/* Renders messages into the model's prompt format (starting with the BOS text when
 * add_bos). With add_generation_prompt the text ends where the model's answer begins.
 * Writes up to cap bytes plus a NUL; *len gets the length without the NUL; returns
 * GEMMA_E_BUFFER_TOO_SMALL with *len set when cap <= length. Thread-safe. */
GEMMA_API gemma_status gemma_chat_render(const gemma_model *model, const gemma_chat_message *msgs,
                                         size_t n_msgs, bool add_generation_prompt, bool add_bos,
                                         char *buf, size_t cap, size_t *len, gemma_error *err);

/* ---------------------------------------------------------------------------------------
 * Sampling
 * ------------------------------------------------------------------------------------ */
typedef struct gemma_sampler_params {
    size_t size;             /* sizeof(gemma_sampler_params), set by gemma_sampler_params_init */
    float temperature;       /* 0: greedy (always the most likely token); must be >= 0 */
    int32_t top_k;           /* <= 0: off */
    float top_p;             /* >= 1: off */
    float min_p;             /* <= 0: off */
    float repeat_penalty;    /* 1: off */
    float presence_penalty;  /* 0: off */
    float frequency_penalty; /* 0: off */
    int32_t penalty_last_n;  /* window of recent tokens the penalties look at */
    uint64_t seed;           /* same seed, same text, whatever the thread count */
} gemma_sampler_params;

/* Sets p->size = size and Gemma's published defaults (temperature 1.0, top-k 64, top-p 0.95,
 * min-p 0), overridden by the file's general.sampling.* keys when model is not NULL and has
 * them. GEMMA_E_INVALID_ARG for a bad size (pass sizeof *p). Thread-safe. */
GEMMA_API gemma_status gemma_sampler_params_init(gemma_sampler_params *p, size_t size,
                                                 const gemma_model *model);

typedef struct gemma_sampler gemma_sampler;
/* Validates params (GEMMA_E_INVALID_ARG with a message for a bad size, NaN, negative, out of
 * range) and copies them: params may go away after the call. */
GEMMA_API gemma_status gemma_sampler_create(const gemma_sampler_params *params, int32_t n_vocab,
                                            gemma_sampler **out, gemma_error *err);
GEMMA_API void gemma_sampler_free(gemma_sampler *s);
/* Picks a token from logits[0..n_vocab). Does not modify logits. Not thread-safe.
 * Returns -1, never a token id, when s or logits is NULL or no logit is a number above
 * -Inf (all NaN / -Inf). NaN logits are never drawn; +Inf counts as the largest float. */
GEMMA_API gemma_token gemma_sampler_sample(gemma_sampler *s, const float *logits);
/* Records a token for the penalty window (call for prompt and generated tokens). */
GEMMA_API void gemma_sampler_accept(gemma_sampler *s, gemma_token token);
GEMMA_API void gemma_sampler_reset(gemma_sampler *s);

/* ---------------------------------------------------------------------------------------
 * Sessions: one conversation with its own KV cache, over a shared model.
 * ------------------------------------------------------------------------------------ */
typedef struct gemma_session gemma_session;

/* Misuse a session detects: every call that changes it (reset, rewind, eval, feed_text,
 * feed_chat, set_chat_params, generate) marks it busy for its duration, and a second such call meanwhile,
 * from another thread or from inside on_token, returns GEMMA_E_BUSY at once without touching
 * the session (the last error is left as it was). gemma_session_free during such a call
 * cancels it and frees the session when the call returns (so freeing inside on_token is
 * safe; the call still reports its result). Undefined, as for any C object: using a session
 * after it was freed, and calling the read-only functions (n_past, tokens, logits,
 * last_error, get_stats) from another thread while a call runs. */

typedef enum gemma_overflow {
    GEMMA_OVERFLOW_ERROR = 0,     /* a prompt longer than the context is an error */
    GEMMA_OVERFLOW_KEEP_RECENT = 1 /* keep the most recent tokens that fit */
} gemma_overflow;

typedef struct gemma_session_params {
    size_t size;       /* sizeof(gemma_session_params), set by gemma_session_params_init */
    int32_t n_ctx;     /* context length; 0 = min(model's trained length, 8192) */
    int32_t n_threads; /* 0 = number of online CPUs */
    int32_t n_batch;   /* prompt tokens per forward pass; 0 = 512 */
    gemma_overflow overflow;
    const char *isa;   /* force a kernel set: "scalar", "avx2", "avx512", ...; NULL = best */
} gemma_session_params;

/* Sets p->size = size and the defaults (every field 0: see above). GEMMA_E_INVALID_ARG for a
 * bad size (pass sizeof *p). Thread-safe. */
GEMMA_API gemma_status gemma_session_params_init(gemma_session_params *p, size_t size);

/* Creates a session on model. Allocates the KV cache (local sliding-window layers keep
 * only the window) and a thread pool. Thread-safe with respect to other sessions. */
GEMMA_API gemma_status gemma_session_create(gemma_model *model, const gemma_session_params *params,
                                            gemma_session **out, gemma_error *err);
GEMMA_API void gemma_session_free(gemma_session *s);

/* Detailed message for the last failed call on s ("" if none). */
GEMMA_API const char *gemma_session_last_error(const gemma_session *s);

/* Forgets the conversation (KV cache and position). GEMMA_E_BUSY inside another call. */
GEMMA_API gemma_status gemma_session_reset(gemma_session *s);

/* Number of tokens in the KV cache (the current position). */
GEMMA_API int32_t gemma_session_n_past(const gemma_session *s);

/* The tokens in the KV cache, in order (*n gets gemma_session_n_past). Owned by the session;
 * valid until the next call that evaluates, rewinds or resets it. */
GEMMA_API const gemma_token *gemma_session_tokens(const gemma_session *s, int32_t *n);

/* Keeps the first n_keep tokens of the cache and forgets the rest, so a new prompt that
 * starts like the old one only evaluates what differs (a chat's next turn, a server reusing
 * a session). Sliding-window layers keep only the last window + batch positions, so going
 * back further than n_batch tokens or so is refused with GEMMA_E_UNSUPPORTED and the session
 * is left as it was: reset it and evaluate the whole prompt instead. Logits are unavailable
 * until the next eval. */
GEMMA_API gemma_status gemma_session_rewind(gemma_session *s, int32_t n_keep);

/* Evaluates tokens after the current position, in batches of n_batch. Afterwards the
 * logits of the last token are available from gemma_session_logits. When logits_all is
 * not NULL it receives n * n_vocab floats, row i = logits after tokens[0..i].
 * GEMMA_E_CONTEXT_FULL when the tokens do not fit (see gemma_overflow). */
GEMMA_API gemma_status gemma_session_eval(gemma_session *s, const gemma_token *tokens, size_t n,
                                          float *logits_all);

/* Tokenizes and evaluates text (BOS added when the session is empty). */
GEMMA_API gemma_status gemma_session_feed_text(gemma_session *s, const char *text, size_t len);

/* Renders and evaluates a chat turn: messages are the new ones since the last call (the
 * history already in the KV cache is kept), ending with the generation prompt. Message
 * content is tokenized as text (see gemma_chat_params) unless the session's chat params
 * say trusted_content. */
GEMMA_API gemma_status gemma_session_feed_chat(gemma_session *s, const gemma_chat_message *msgs,
                                               size_t n_msgs);

/* Chat params for the following gemma_session_feed_chat calls (NULL: defaults; tools are
 * copied); kept across gemma_session_reset. Tool results are rendered after the assistant
 * message that made the calls, so a tool loop on one session passes that message again:
 * render the whole conversation with gemma_chat_tokenize instead (as gemma serve does). add_bos and add_generation_prompt are ignored: the session adds BOS
 * to an empty cache and always ends with the generation prompt. */
GEMMA_API gemma_status gemma_session_set_chat_params(gemma_session *s, const gemma_chat_params *params);

/* Logits after the last evaluated token (n_vocab floats, owned by the session, valid until
 * the next eval), or NULL before the first eval. */
GEMMA_API const float *gemma_session_logits(const gemma_session *s);

/* Called for each generated token with its printable text (valid UTF-8, possibly empty).
 * Return nonzero to stop generation. */
typedef int (*gemma_token_fn)(void *user, const char *text, size_t len, gemma_token token);

typedef enum gemma_stop_reason {
    GEMMA_STOP_NONE = 0,
    GEMMA_STOP_EOG,          /* the model ended its turn */
    GEMMA_STOP_MAX_TOKENS,   /* max_tokens generated */
    GEMMA_STOP_STRING,       /* a stop string appeared (it is not emitted) */
    GEMMA_STOP_CALLBACK,     /* on_token returned nonzero */
    GEMMA_STOP_CANCELLED,    /* gemma_session_cancel */
    GEMMA_STOP_CONTEXT_FULL  /* the context window is full */
} gemma_stop_reason;

/* ---------------------------------------------------------------------------------------
 * Constrained output: a grammar (docs/grammar.md: GBNF-like rules over UTF-8 text) or a JSON
 * Schema, compiled for one model's vocabulary. Attached to gemma_generate_params.constraint,
 * it masks every token whose text cannot continue the grammar before sampling, and allows
 * the end of generation only where the text so far is complete. Generation then ends with
 * GEMMA_STOP_EOG once the text is complete and nothing more can follow.
 * A constraint is immutable: it may be shared by any number of threads and generations at
 * once; each generation keeps its own parse state. It must not outlive its model.
 * To constrain only part of the output (a tool call's arguments after its opening), feed
 * the fixed prefix as prompt tokens, generate with the constraint, then continue freely;
 * gemma_json_schema_to_grammar gives rules to embed in a larger grammar.
 * ------------------------------------------------------------------------------------ */
typedef struct gemma_constraint gemma_constraint;

/* Compiles grammar text (len bytes; root names the start rule, NULL = "root"). Untrusted
 * input: errors (GEMMA_E_INVALID_ARG) name the line; left recursion and rules that can
 * never complete are refused; sizes are bounded. Thread-safe. */
GEMMA_API gemma_status gemma_constraint_from_grammar(const gemma_model *model, const char *grammar, size_t len,
                                                     const char *root, gemma_constraint **out, gemma_error *err);
/* Compiles a JSON Schema (README: supported keywords). Unsupported keywords, hostile or
 * contradictory schemas are GEMMA_E_INVALID_ARG with a message naming the schema path
 * ("schema /properties/a: ..."). "{}" or {"type":"object"} gives any JSON value / object.
 * Thread-safe. */
GEMMA_API gemma_status gemma_constraint_from_json_schema(const gemma_model *model, const char *schema, size_t len,
                                                         gemma_constraint **out, gemma_error *err);
/* The grammar text for a JSON Schema, e.g. to embed in a larger grammar: every rule name
 * starts with prefix (letters, digits, - and _; NULL or "" = none) and the value's rule is
 * named prefix itself ("root" without one). *grammar is malloc'ed, NUL-terminated; the
 * caller frees it with free(). Thread-safe. */
GEMMA_API gemma_status gemma_json_schema_to_grammar(const char *schema, size_t len, const char *prefix,
                                                    char **grammar, size_t *grammar_len, gemma_error *err);
/* NULL is a no-op. Not while a generation uses it. */
GEMMA_API void gemma_constraint_free(gemma_constraint *c);

/* max_tokens <= 0 means no limit (until EOG or the context is full), as the OpenAI API's
 * absent max_tokens. The gemma tool's -n differs: -n 0 evaluates the prompt only (it does
 * not call generate) and -n -1 is no limit. */
typedef struct gemma_generate_params {
    size_t size;                      /* set by gemma_generate_params_init */
    int32_t max_tokens;               /* <= 0: until EOG or the context is full */
    /* NULL: gemma_sampler_params_init's defaults for the session's model. A pointer, not a
     * member, so that both structs can grow. Read during the call only. */
    const gemma_sampler_params *sampling;
    const char *const *stop_strings;  /* may be NULL */
    size_t n_stop_strings;
    gemma_token_fn on_token;          /* may be NULL */
    void *user;
    int32_t max_thinking_tokens;      /* > 0: a thought (Gemma 4's <|channel> ... <channel|>) longer
                                         than this is closed: <channel|> comes next; <= 0: no limit */
    const gemma_constraint *constraint; /* NULL, or the output must match it (see gemma_constraint) */
} gemma_generate_params;

/* Sets p->size = size and the defaults: max_tokens 256, everything else 0/NULL.
 * GEMMA_E_INVALID_ARG for a bad size (pass sizeof *p). Thread-safe. */
GEMMA_API gemma_status gemma_generate_params_init(gemma_generate_params *p, size_t size);

typedef struct gemma_generate_result {
    size_t size;             /* set by the caller: sizeof(gemma_generate_result) */
    gemma_stop_reason stop_reason;
    int32_t n_tokens;        /* tokens generated */
} gemma_generate_result;

/* Samples and evaluates tokens until a stop condition. Cancelling ends it with
 * GEMMA_OK and stop_reason GEMMA_STOP_CANCELLED. Logits that are NaN or Inf (broken
 * weights) end it with GEMMA_E_MODEL and a message, never with an arbitrary token. params may
 * be NULL (defaults); result may be NULL, else its size must be set. */
GEMMA_API gemma_status gemma_session_generate(gemma_session *s, const gemma_generate_params *params,
                                              gemma_generate_result *result);

/* Asks a running eval or generate on s to stop as soon as possible. Thread-safe: may be
 * called from any thread (or a signal handler) at any time; the flag clears when the
 * next eval or generate starts, so a cancel that arrives between two calls is lost: a
 * caller that must not lose it (a Ctrl-C between the prompt and the generation) keeps its
 * own flag too, as the gemma tool does. */
GEMMA_API void gemma_session_cancel(gemma_session *s);

typedef struct gemma_session_stats {
    size_t size;              /* set by the caller: sizeof(gemma_session_stats) */
    int32_t n_ctx;
    int32_t n_past;
    int32_t n_threads;
    const char *isa;          /* kernel set in use, e.g. "avx512-vnni" */
    uint64_t kv_bytes;        /* bytes allocated for the KV cache */
    uint64_t kv_bytes_full;   /* what a full-length cache on every layer would take */
    int64_t n_prompt_tokens;  /* totals since creation or reset */
    int64_t n_gen_tokens;
    double prompt_seconds;
    double gen_seconds;
} gemma_session_stats;

/* Fills *st (its first st->size bytes). Same thread rules as the other session calls. */
GEMMA_API gemma_status gemma_session_get_stats(const gemma_session *s, gemma_session_stats *st);

#ifdef __cplusplus
}
#endif
#endif /* GEMMA_H */
