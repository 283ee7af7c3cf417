/* Option parsing helpers for the gemma CLI (see args.h). */
#include "args.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

void args_init(args *a, const char *cmd, int argc, char **argv)
{
    *a = (args){.cmd = cmd, .argc = argc, .argv = argv, .i = 0};
}

const char *args_next(args *a)
{
    a->i++;
    a->inline_val = NULL;
    return a->i < a->argc ? a->argv[a->i] : NULL;
}

static bool match(args *a, const char *name)
{
    const char *arg = a->argv[a->i];
    size_t n = strlen(name);
    if (strncmp(arg, name, n) != 0)
        return false;
    if (arg[n] == '\0')
        return true;
    if (arg[n] == '=' && name[1] == '-') {
        a->inline_val = arg + n + 1;
        return true;
    }
    return false;
}

bool args_is(args *a, const char *name, const char *alias)
{
    if (a->i >= a->argc)
        return false;
    return match(a, name) || (alias && match(a, alias));
}

const char *args_value(args *a)
{
    if (a->inline_val)
        return a->inline_val;
    const char *opt = a->argv[a->i];
    if (a->i + 1 >= a->argc) {
        args_error(a->cmd, "option %s needs a value", opt);
        return NULL;
    }
    return a->argv[++a->i];
}

/* The option name for messages, without any "=value". */
static const char *opt_name(const args *a, char *buf, size_t cap)
{
    const char *arg = a->argv[a->i];
    if (a->inline_val == NULL && a->i > 0 && a->argv[a->i - 1][0] == '-')
        arg = a->argv[a->i - 1]; /* args_value moved onto the value */
    size_t n = strcspn(arg, "=");
    snprintf(buf, cap, "%.*s", (int)(n < cap ? n : cap - 1), arg);
    return buf;
}

bool args_int(args *a, long long lo, long long hi, int32_t *out)
{
    const char *v = args_value(a);
    if (!v)
        return false;
    char name[64], *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (*v == '\0' || *end != '\0' || errno == ERANGE || x < lo || x > hi) {
        args_error(a->cmd, "%s expects a whole number from %lld to %lld, got '%s'",
                   opt_name(a, name, sizeof name), lo, hi, v);
        return false;
    }
    *out = (int32_t)x;
    return true;
}

bool args_float(args *a, double lo, double hi, float *out)
{
    const char *v = args_value(a);
    if (!v)
        return false;
    char name[64], *end;
    errno = 0;
    double x = strtod(v, &end);
    if (*v == '\0' || *end != '\0' || errno == ERANGE || !isfinite(x) || x < lo || x > hi) {
        args_error(a->cmd, "%s expects a number from %g to %g, got '%s'",
                   opt_name(a, name, sizeof name), lo, hi, v);
        return false;
    }
    *out = (float)x;
    return true;
}

bool args_u64(args *a, uint64_t *out)
{
    const char *v = args_value(a);
    if (!v)
        return false;
    char name[64], *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (*v < '0' || *v > '9' || *end != '\0' || errno == ERANGE) {
        args_error(a->cmd, "%s expects a whole number from 0 to %llu, got '%s'",
                   opt_name(a, name, sizeof name), (unsigned long long)UINT64_MAX, v);
        return false;
    }
    *out = (uint64_t)x;
    return true;
}

bool args_int_list(args *a, long long lo, long long hi, int32_t *out, int cap, int *n)
{
    const char *v = args_value(a);
    if (!v)
        return false;
    char name[64];
    opt_name(a, name, sizeof name);
    *n = 0;
    const char *p = v;
    for (;;) {
        char *end;
        errno = 0;
        long long x = strtoll(p, &end, 10);
        if (end == p || (*end != ',' && *end != '\0') || errno == ERANGE || x < lo || x > hi) {
            args_error(a->cmd, "%s expects whole numbers from %lld to %lld separated by commas "
                               "(e.g. 1,2,4), got '%s'", name, lo, hi, v);
            return false;
        }
        if (*n >= cap) {
            args_error(a->cmd, "%s takes at most %d values, got '%s'", name, cap, v);
            return false;
        }
        out[(*n)++] = (int32_t)x;
        if (*end == '\0')
            return true;
        p = end + 1;
    }
}

int args_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "gemma %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(see 'gemma %s --help')\n", cmd);
    return ARGS_USAGE;
}

int args_unknown(const args *a)
{
    const char *arg = a->argv[a->i];
    if (arg[0] == '-' && arg[1] != '\0')
        return args_error(a->cmd, "unknown option '%s'", arg);
    return args_error(a->cmd, "unexpected argument '%s' (put text after -p, quoted)", arg);
}

const char *args_model_path(const char *cmd, const char *given)
{
    if (given)
        return given;
    const char *def = cli_default_model();
    if (!def)
        fprintf(stderr, "gemma %s: no model given and the default model is not fetched; "
                        "run 'make model' or pass -m FILE\n", cmd);
    return def;
}

gemma_model_params args_model_params(const args_common *c)
{
    gemma_model_params p;
    gemma_model_params_init(&p, sizeof p);
    if (c) {
        p.use_mmap = !c->no_mmap;
        p.validate_data = c->check_tensors;
    }
    return p;
}

gemma_model *args_load_model(const char *cmd, const char *path, const args_common *c)
{
    gemma_model *m = NULL;
    gemma_error err = {0};
    gemma_model_params p = args_model_params(c);
    gemma_status st = gemma_model_load(path, &p, &m, &err);
    if (st != GEMMA_OK) {
        fprintf(stderr, "gemma %s: cannot load '%s': %s\n", cmd, path,
                err.message[0] ? err.message : gemma_strerror(st));
        if (st == GEMMA_E_IO)
            fprintf(stderr, "  check the path, or omit -m to use the default model "
                            "('make model' fetches it)\n");
        return NULL;
    }
    return m;
}

const char args_load_help[] =
    "model loading:\n"
    "      --no-mmap         read the model into memory instead of mapping it: slower to\n"
    "                        start, but immune to the file changing on disk while it runs\n"
    "      --check-tensors   scan every weight for NaN/Inf while loading (slow)\n"
    "\n";

/* -t beyond a few threads per CPU only makes them wait on each other: warn and cap. */
static int32_t sane_threads(const char *cmd, int32_t n)
{
    const int cpus = args_online_cpus(), cap = ARGS_THREADS_PER_CPU * cpus;
    if (n <= cap)
        return n;
    fprintf(stderr, "gemma %s: warning: -t %d is more than %d threads per online CPU (%d CPU%s); using %d\n",
            cmd, (int)n, ARGS_THREADS_PER_CPU, cpus, cpus == 1 ? "" : "s", cap);
    return cap;
}

int args_common_option(args *a, args_common *c, unsigned which)
{
    bool ok;
    if ((which & ARGS_OPT_MODEL) && args_is(a, "-m", "--model"))
        ok = (c->model = args_value(a)) != NULL;
    else if ((which & ARGS_OPT_N_PREDICT) && args_is(a, "-n", "--n-predict"))
        ok = args_int(a, -1, INT32_MAX, &c->n_predict);
    else if ((which & ARGS_OPT_THREADS) && args_is(a, "-t", "--threads")) {
        ok = args_int(a, 1, 1024, &c->threads);
        c->threads = sane_threads(a->cmd, c->threads);
    } else if ((which & ARGS_OPT_LOAD) && args_is(a, "--no-mmap", NULL))
        ok = c->no_mmap = true;
    else if ((which & ARGS_OPT_LOAD) && args_is(a, "--check-tensors", NULL))
        ok = c->check_tensors = true;
    else if ((which & ARGS_OPT_CTX) && args_is(a, "-c", "--ctx-size"))
        ok = args_int(a, 0, INT32_MAX, &c->ctx);
    else if ((which & ARGS_OPT_BATCH) && args_is(a, "-b", "--batch-size"))
        ok = args_int(a, 1, 1 << 16, &c->batch);
    else if ((which & ARGS_OPT_ISA) && args_is(a, "--isa", NULL))
        ok = (c->isa = args_value(a)) != NULL;
    else if ((which & ARGS_OPT_VERBOSE) && args_is(a, "-v", "--verbose"))
        ok = c->verbose = true;
    else
        return 0;
    return ok ? 1 : -1;
}

gemma_session_params args_session_params(const args_common *c)
{
    gemma_session_params sp;
    gemma_session_params_init(&sp, sizeof sp);
    sp.n_ctx = c->ctx;
    sp.n_threads = c->threads;
    sp.n_batch = c->batch;
    sp.isa = c->isa;
    return sp;
}

gemma_session *args_create_session(const char *cmd, gemma_model *m, const args_common *c)
{
    gemma_session_params sp = args_session_params(c);
    gemma_session *s = NULL;
    gemma_error err = {0};
    if (gemma_session_create(m, &sp, &s, &err) != GEMMA_OK) {
        fprintf(stderr, "gemma %s: cannot create a session: %s\n", cmd, err.message);
        return NULL;
    }
    return s;
}

const char *args_session_error(const gemma_session *s, gemma_status st)
{
    const char *m = gemma_session_last_error(s);
    return m && m[0] ? m : gemma_strerror(st);
}

const char args_sampling_help[] =
    "sampling (defaults come from the model file's general.sampling.* keys when present,\n"
    "otherwise Gemma's: --temp 1.0 --top-k 64 --top-p 0.95 --min-p 0):\n"
    "  --temp T              temperature, >= 0; 0 = greedy (always the likeliest token)\n"
    "  --top-k K             keep the K likeliest tokens; 0 = off\n"
    "  --top-p P             keep the smallest set whose probability reaches P, 0..1; 1 = off\n"
    "  --min-p P             drop tokens less likely than P times the likeliest, 0..1; 0 = off\n"
    "  --repeat-penalty R    divide the logits of recently seen tokens by R; 1 = off\n"
    "  --presence-penalty F  subtract F from recently seen tokens; 0 = off\n"
    "  --frequency-penalty F subtract F per occurrence of recently seen tokens; 0 = off\n"
    "  --repeat-last-n N     how many recent tokens the penalties look at (default 64)\n"
    "  --seed S              random seed; the same seed and options give the same text\n"
    "                        (default: a new seed each run)\n";

int args_sampling_option(args *a, args_sampling *s)
{
    gemma_sampler_params *v = &s->v;
    bool ok;
    if (args_is(a, "--temp", "--temperature")) {
        ok = args_float(a, 0.0, 1e6, &v->temperature);
        s->set |= ARGS_SET_TEMP;
    } else if (args_is(a, "--top-k", NULL)) {
        ok = args_int(a, 0, INT32_MAX, &v->top_k);
        s->set |= ARGS_SET_TOP_K;
    } else if (args_is(a, "--top-p", NULL)) {
        ok = args_float(a, 0.0, 1.0, &v->top_p);
        s->set |= ARGS_SET_TOP_P;
    } else if (args_is(a, "--min-p", NULL)) {
        ok = args_float(a, 0.0, 1.0, &v->min_p);
        s->set |= ARGS_SET_MIN_P;
    } else if (args_is(a, "--repeat-penalty", NULL)) {
        ok = args_float(a, 1e-3, 1e3, &v->repeat_penalty);
        s->set |= ARGS_SET_REPEAT;
    } else if (args_is(a, "--presence-penalty", NULL)) {
        ok = args_float(a, -1e3, 1e3, &v->presence_penalty);
        s->set |= ARGS_SET_PRESENCE;
    } else if (args_is(a, "--frequency-penalty", NULL)) {
        ok = args_float(a, -1e3, 1e3, &v->frequency_penalty);
        s->set |= ARGS_SET_FREQUENCY;
    } else if (args_is(a, "--repeat-last-n", NULL)) {
        ok = args_int(a, 0, 1 << 20, &v->penalty_last_n);
        s->set |= ARGS_SET_LAST_N;
    } else if (args_is(a, "--seed", "-s")) {
        ok = args_u64(a, &v->seed);
        s->seed_given = true;
    } else {
        return 0;
    }
    return ok ? 1 : -1;
}

gemma_sampler_params args_sampling_resolve(const args_sampling *s, const gemma_model *model)
{
    gemma_sampler_params p;
    gemma_sampler_params_init(&p, sizeof p, model);
    const gemma_sampler_params *u = &s->v;
    if (s->set & ARGS_SET_TEMP) p.temperature = u->temperature;
    if (s->set & ARGS_SET_TOP_K) p.top_k = u->top_k;
    if (s->set & ARGS_SET_TOP_P) p.top_p = u->top_p;
    if (s->set & ARGS_SET_MIN_P) p.min_p = u->min_p;
    if (s->set & ARGS_SET_REPEAT) p.repeat_penalty = u->repeat_penalty;
    if (s->set & ARGS_SET_PRESENCE) p.presence_penalty = u->presence_penalty;
    if (s->set & ARGS_SET_FREQUENCY) p.frequency_penalty = u->frequency_penalty;
    if (s->set & ARGS_SET_LAST_N) p.penalty_last_n = u->penalty_last_n;
    if (s->seed_given) {
        p.seed = u->seed;
    } else {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        p.seed = ((uint64_t)ts.tv_sec * 1000000007ull) ^ (uint64_t)ts.tv_nsec ^
                 ((uint64_t)getpid() << 32);
    }
    return p;
}

int args_online_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 1024 ? 1024 : (int)n;
}

char *args_read_file(const char *cmd, const char *path, size_t *len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "gemma %s: cannot open '%s': %s\n", cmd, path, strerror(errno));
        return NULL;
    }
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n + 1 >= cap) {
            char *nb = cap > ((size_t)1 << 30) ? NULL : realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - 1 - n, f);
        n += got;
        if (got == 0)
            break;
    }
    bool bad = !buf || ferror(f);
    if (f != stdin)
        fclose(f);
    if (bad) {
        fprintf(stderr, "gemma %s: cannot read '%s'%s\n", cmd, path,
                buf ? "" : " (out of memory, or larger than 1 GiB)");
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

const char *args_stop_reason(gemma_stop_reason r)
{
    switch (r) {
    case GEMMA_STOP_NONE: return "none";
    case GEMMA_STOP_EOG: return "end of turn (the model stopped)";
    case GEMMA_STOP_MAX_TOKENS: return "max tokens reached (-n)";
    case GEMMA_STOP_STRING: return "stop string";
    case GEMMA_STOP_CALLBACK: return "output closed";
    case GEMMA_STOP_CANCELLED: return "cancelled (Ctrl-C)";
    case GEMMA_STOP_CONTEXT_FULL: return "context full (raise -c)";
    }
    return "unknown";
}

static double mib(uint64_t b) { return (double)b / (1024.0 * 1024.0); }

void args_print_model_info(const gemma_model *m, const gemma_session *s)
{
    gemma_model_info mi = {.size = sizeof mi};
    if (gemma_model_get_info(m, &mi) == GEMMA_OK) {
        fprintf(stderr, "model: %s %s%s%s%s, %.1fM params, %.1f MiB of weights\n",
                mi.architecture, mi.size_label, mi.name[0] ? " \"" : "", mi.name,
                mi.name[0] ? "\"" : "", (double)mi.n_params / 1e6, mib(mi.weight_bytes));
        fprintf(stderr, "       %d layers (%d sliding-window of %d), embd %d, heads %d/%d kv, "
                        "head dim %d, ff %d, vocab %d, trained context %d%s\n",
                mi.n_layer, mi.n_swa_layers, mi.sliding_window, mi.n_embd, mi.n_head,
                mi.n_head_kv, mi.head_dim, mi.n_ff, mi.n_vocab, mi.n_ctx_train,
                mi.has_chat_template ? ", chat template" : "");
    }
    gemma_session_stats st = {.size = sizeof st};
    if (s && gemma_session_get_stats(s, &st) == GEMMA_OK) {
        fprintf(stderr, "kernels: %s, %d threads, context %d tokens\n", st.isa ? st.isa : "?",
                st.n_threads, st.n_ctx);
        fprintf(stderr, "kv cache: %.1f MiB allocated (a full-length cache on every layer would "
                        "take %.1f MiB)\n", mib(st.kv_bytes), mib(st.kv_bytes_full));
    }
}

void args_print_sampling(const gemma_sampler_params *p)
{
    fprintf(stderr, "sampling: temp %g, top-k %d, top-p %g, min-p %g, repeat-penalty %g "
                    "(last %d), presence %g, frequency %g, seed %llu%s\n",
            (double)p->temperature, (int)p->top_k, (double)p->top_p, (double)p->min_p,
            (double)p->repeat_penalty, (int)p->penalty_last_n, (double)p->presence_penalty,
            (double)p->frequency_penalty, (unsigned long long)p->seed,
            p->temperature <= 0.0f ? " (greedy)" : "");
}

bool args_out_open(const char *cmd, const char *path, args_out *o)
{
    *o = (args_out){.path = path};
    size_t n = strlen(path) + sizeof ".tmp-XXXXXX";
    if (!(o->tmp = malloc(n))) {
        fprintf(stderr, "gemma %s: out of memory\n", cmd);
        return false;
    }
    snprintf(o->tmp, n, "%s.tmp-XXXXXX", path);
    int fd = mkstemp(o->tmp);
    if (fd < 0 || !(o->f = fdopen(fd, "wb"))) {
        fprintf(stderr, "gemma %s: cannot write '%s': %s\n", cmd, path, strerror(errno));
        if (fd >= 0) {
            close(fd);
            unlink(o->tmp);
        }
        free(o->tmp);
        o->tmp = NULL;
        return false;
    }
    return true;
}

bool args_out_close(const char *cmd, args_out *o, bool ok)
{
    if (!o->f)
        return false;
    /* fflush, fsync and fclose each report a write that failed late (full disk, quota). */
    const bool wanted = ok;
    errno = 0;
    ok = ok && fflush(o->f) == 0 && !ferror(o->f) && fsync(fileno(o->f)) == 0;
    int e = errno;
    ok = fclose(o->f) == 0 && ok;
    if (!e)
        e = errno;
    if (ok && rename(o->tmp, o->path) != 0) {
        e = errno;
        ok = false;
    }
    if (!ok) {
        if (wanted)
            fprintf(stderr, "gemma %s: cannot write '%s': %s\n", cmd, o->path, e ? strerror(e) : "write error");
        unlink(o->tmp);
    }
    free(o->tmp);
    *o = (args_out){0};
    return ok;
}
