/* Option parsing shared by the cmd-*.c files: strict numbers with range checks, and error
 * messages that name the command, the option and what would be accepted. Every function
 * that fails prints its message to stderr and returns false (or NULL). */
#ifndef GEMMA_ARGS_H
#define GEMMA_ARGS_H

#include "gemma.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Exit status for a usage error (bad option or value), as getopt-style tools do. */
#define ARGS_USAGE 2

typedef struct args {
    const char *cmd; /* "run", for messages: "gemma run: ..." */
    int argc;
    char **argv;
    int i;           /* index of the option being looked at */
    const char *inline_val; /* value given as --opt=value, or NULL */
} args;

void args_init(args *a, const char *cmd, int argc, char **argv);
/* The current argument, or NULL at the end. Advances past it on the next call. */
const char *args_next(args *a);
/* True when the current argument is name or alias (which may be NULL): args_is(a, "-n",
 * "--n-predict"). Long names also match "--name=value". */
bool args_is(args *a, const char *name, const char *alias);
/* The value of the current option (inline or the next argument); NULL with a message when
 * it is missing. */
const char *args_value(args *a);

/* Strict conversions of the current option's value: the whole string must be a number
 * within [lo, hi]. */
bool args_int(args *a, long long lo, long long hi, int32_t *out);
bool args_float(args *a, double lo, double hi, float *out);
bool args_u64(args *a, uint64_t *out);
/* Comma-separated integers ("1,2,4"), each in [lo, hi]; at most cap of them. */
bool args_int_list(args *a, long long lo, long long hi, int32_t *out, int cap, int *n);

/* Prints "gemma CMD: unknown option 'X'; see 'gemma CMD --help'" and returns ARGS_USAGE. */
int args_unknown(const args *a);
/* Prints "gemma CMD: " + the formatted message + a pointer to --help; returns ARGS_USAGE. */
int args_error(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* The model path: the given one, or the default model when it has been fetched; NULL with
 * a message saying how to get one. */
const char *args_model_path(const char *cmd, const char *given);
/* Options several commands share; each command picks the ones it accepts. */
typedef struct args_common {
    const char *model, *isa;
    int32_t n_predict, threads, ctx, batch;
    bool verbose;
    bool no_mmap, check_tensors; /* gemma_model_params: !use_mmap, validate_data */
} args_common;

/* Loads a model (c may be NULL: defaults), printing a helpful message on failure. */
gemma_model *args_load_model(const char *cmd, const char *path, const args_common *c);
/* gemma_model_params from --no-mmap and --check-tensors (c may be NULL: defaults). */
gemma_model_params args_model_params(const args_common *c);

enum {
    ARGS_OPT_MODEL = 1u << 0,     /* -m, --model FILE */
    ARGS_OPT_N_PREDICT = 1u << 1, /* -n, --n-predict N (-1 .. INT32_MAX) */
    ARGS_OPT_THREADS = 1u << 2,   /* -t, --threads N (1 .. 1024) */
    ARGS_OPT_CTX = 1u << 3,       /* -c, --ctx-size N */
    ARGS_OPT_BATCH = 1u << 4,     /* -b, --batch-size N */
    ARGS_OPT_ISA = 1u << 5,       /* --isa NAME */
    ARGS_OPT_VERBOSE = 1u << 6,   /* -v, --verbose */
    ARGS_OPT_LOAD = 1u << 7,      /* --no-mmap, --check-tensors */
    ARGS_OPT_ALL = (1u << 8) - 1,
};

/* Help lines for ARGS_OPT_LOAD. */
extern const char args_load_help[];

/* 1 when the current option is one of those in `which` (consumed), 0 when it is not,
 * -1 after printing an error about its value. */
int args_common_option(args *a, args_common *c, unsigned which);
/* Session parameters from the context, thread, batch and ISA options. */
gemma_session_params args_session_params(const args_common *c);
/* A session with args_session_params; NULL after printing why not. */
gemma_session *args_create_session(const char *cmd, gemma_model *m, const args_common *c);
/* The session's last error message, or st's generic one when it has none. */
const char *args_session_error(const gemma_session *s, gemma_status st);

/* Sampling options shared by run and chat. Values the user did not give come from the
 * model (gemma_sampler_params_init) once it is loaded. */
typedef struct args_sampling {
    gemma_sampler_params v;
    unsigned set; /* ARGS_SET_* bits: which fields the user gave */
    bool seed_given;
} args_sampling;

enum {
    ARGS_SET_TEMP = 1u << 0, ARGS_SET_TOP_K = 1u << 1, ARGS_SET_TOP_P = 1u << 2,
    ARGS_SET_MIN_P = 1u << 3, ARGS_SET_REPEAT = 1u << 4, ARGS_SET_PRESENCE = 1u << 5,
    ARGS_SET_FREQUENCY = 1u << 6, ARGS_SET_LAST_N = 1u << 7,
};

/* 1 when the current option was a sampling option (consumed), 0 when it is not one,
 * -1 after printing an error about its value. */
int args_sampling_option(args *a, args_sampling *s);
/* The model's defaults with the user's choices on top. A seed the user did not give is
 * drawn from the clock, so plain runs differ (pass --seed for repeatable output). */
gemma_sampler_params args_sampling_resolve(const args_sampling *s, const gemma_model *model);
/* Help text for the sampling options, shared by run and chat. */
extern const char args_sampling_help[];

/* "end of turn", "max tokens", ... for messages. */
const char *args_stop_reason(gemma_stop_reason r);
/* Prints model, kernel, thread and KV-cache facts to stderr (for -v). */
void args_print_model_info(const gemma_model *m, const gemma_session *s);
/* Prints a sampler configuration to stderr (for -v). */
void args_print_sampling(const gemma_sampler_params *p);

/* Number of online CPUs (at least 1). */
int args_online_cpus(void);
/* Threads beyond this many per online CPU only slow a run down (they wait on each other). */
#define ARGS_THREADS_PER_CPU 4

/* Exit status for output that could not be written (other than a closed pipe). */
#define ARGS_EXIT_WRITE 1
/* A file written whole or not at all: args_out_open creates a temporary file next to path;
 * args_out_close checks every write, then renames it over path (or removes it). */
typedef struct args_out {
    FILE *f;
    char *tmp;
    const char *path;
} args_out;
bool args_out_open(const char *cmd, const char *path, args_out *o);
/* ok = false: the caller gave up; the temporary file is removed and path left untouched.
 * Returns true when path now holds everything written. */
bool args_out_close(const char *cmd, args_out *o, bool ok);
/* The whole of a file (or stdin for "-") as a NUL-terminated string; NULL with a message. */
char *args_read_file(const char *cmd, const char *path, size_t *len);

#endif
