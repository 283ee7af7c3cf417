/* gemma logits: evaluate a token sequence and write its logits in the GREF format of
 * shared/testdata/README.md (every prompt row, then greedy tokens decoded one at a time). */
#include "args.h"
#include "cli.h"
#include "gemma.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f, "usage: gemma logits [-m MODEL] --tokens ID,ID,... [--gen N] --out FILE [-t THREADS]\n"
               "                    [-b BATCH] [--isa NAME]\n"
               "\nEvaluates the tokens (logits for every position), then decodes N greedy tokens one\n"
               "at a time, and writes both as a GREF file (see shared/testdata/README.md).\n");
}

static int parse_int(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

/* Parses "2,5,7" into a malloc'ed array. */
static int parse_tokens(const char *s, gemma_token **out, size_t *n)
{
    size_t cap = 1;
    for (const char *p = s; *p; p++)
        cap += *p == ',';
    gemma_token *ids = malloc(cap * sizeof *ids);
    char *copy = strdup(s);
    if (!ids || !copy) {
        free(ids);
        free(copy);
        return -1;
    }
    size_t k = 0;
    for (char *save = NULL, *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        long v;
        if (parse_int(t, 0, INT32_MAX, &v)) {
            fprintf(stderr, "gemma logits: bad token id '%s'\n", t);
            free(ids);
            free(copy);
            return -1;
        }
        ids[k++] = (gemma_token)v;
    }
    free(copy);
    if (k == 0) { /* "" or "," */
        free(ids);
        return -1;
    }
    *out = ids;
    *n = k;
    return 0;
}

static int argmax(const float *x, int32_t n)
{
    int best = 0;
    for (int32_t i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    return best;
}

static int write_i32(FILE *f, int32_t v) { return fwrite(&v, 4, 1, f) == 1 ? 0 : -1; }

typedef struct logits_opts {
    const char *model, *tokens, *out, *isa;
    long gen, threads, batch;
} logits_opts;

static int parse_args(int argc, char **argv, logits_opts *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            exit(0);
        }
        if (!v) {
            fprintf(stderr, "gemma logits: '%s' needs a value\n", a);
            return -1;
        }
        i++;
        if (!strcmp(a, "-m") || !strcmp(a, "--model"))
            o->model = v;
        else if (!strcmp(a, "--tokens"))
            o->tokens = v;
        else if (!strcmp(a, "--out") || !strcmp(a, "-o"))
            o->out = v;
        else if (!strcmp(a, "--gen") && !parse_int(v, 0, 1 << 20, &o->gen))
            ;
        else if ((!strcmp(a, "-t") || !strcmp(a, "--threads")) && !parse_int(v, 0, 1024, &o->threads))
            ;
        else if ((!strcmp(a, "-b") || !strcmp(a, "--batch-size")) && !parse_int(v, 0, 1 << 16, &o->batch))
            ;
        else if (!strcmp(a, "--isa"))
            o->isa = v;
        else {
            fprintf(stderr, "gemma logits: bad option '%s %s'\n", a, v);
            return -1;
        }
    }
    if (!o->model)
        o->model = cli_default_model();
    if (!o->model || !o->tokens || !o->out) {
        usage(stderr);
        return -1;
    }
    return 0;
}

/* Runs the model and writes the file; returns the process exit status. */
static int run(const logits_opts *o, const gemma_token *toks, size_t n)
{
    gemma_error err = {0};
    gemma_model *model = NULL;
    gemma_session *s = NULL;
    float *rows = NULL;
    gemma_token *gen = NULL;
    int rc = 1;
    if (gemma_model_load(o->model, NULL, &model, &err)) {
        fprintf(stderr, "gemma logits: %s: %s\n", o->model, err.message);
        return 1;
    }
    const int32_t V = gemma_vocab_size(model);
    gemma_session_params sp;
    gemma_session_params_init(&sp, sizeof sp);
    sp.n_threads = (int32_t)o->threads;
    sp.n_batch = (int32_t)o->batch;
    sp.isa = o->isa;
    gemma_model_info info = {.size = sizeof info};
    gemma_model_get_info(model, &info);
    long need = (long)n + o->gen;
    sp.n_ctx = need < info.n_ctx_train ? (int32_t)(need < 16 ? 16 : need) : 0;
    if (gemma_session_create(model, &sp, &s, &err)) {
        fprintf(stderr, "gemma logits: %s\n", err.message);
        goto done;
    }
    rows = malloc(n * (size_t)V * sizeof *rows);
    gen = malloc(((size_t)o->gen + 1) * sizeof *gen);
    if (!rows || !gen) {
        fprintf(stderr, "gemma logits: out of memory\n");
        goto done;
    }
    if (gemma_session_eval(s, toks, n, rows)) {
        fprintf(stderr, "gemma logits: %s\n", gemma_session_last_error(s));
        goto done;
    }
    for (long g = 0; g < o->gen; g++) {
        gen[g] = argmax(gemma_session_logits(s), V);
        if (gemma_session_eval(s, &gen[g], 1, NULL)) {
            fprintf(stderr, "gemma logits: %s\n", gemma_session_last_error(s));
            goto done;
        }
    }
    args_out out;
    if (!args_out_open("logits", o->out, &out))
        goto done;
    FILE *f = out.f;
    int bad = fwrite("GREF", 1, 4, f) != 4 || write_i32(f, 1) || write_i32(f, (int32_t)n) ||
              fwrite(toks, 4, n, f) != n || write_i32(f, V) ||
              fwrite(rows, sizeof *rows * (size_t)V, n, f) != n || write_i32(f, (int32_t)o->gen) ||
              fwrite(gen, 4, (size_t)o->gen, f) != (size_t)o->gen;
    if (!args_out_close("logits", &out, !bad))
        goto done;
    for (long g = 0; g < o->gen; g++)
        printf("%d%s", (int)gen[g], g + 1 < o->gen ? "," : "\n");
    rc = 0;
done:
    free(rows);
    free(gen);
    gemma_session_free(s);
    gemma_model_free(model);
    return rc;
}

int cmd_logits(int argc, char **argv)
{
    logits_opts o = {NULL, NULL, NULL, NULL, 16, 0, 0};
    if (parse_args(argc, argv, &o))
        return 2;
    gemma_token *toks;
    size_t n;
    if (parse_tokens(o.tokens, &toks, &n)) {
        fprintf(stderr, "gemma logits: --tokens needs a comma-separated list of ids\n");
        return 2;
    }
    int rc = run(&o, toks, n);
    free(toks);
    return rc;
}
