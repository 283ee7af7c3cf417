/* gemma bench: prefill and decode speed in the manner of llama-bench (random but fixed
 * token ids, no sampling in the timed loops, mean ± stdev over repetitions), plus load
 * time, time to first token, peak memory and tokenizer throughput. */
#include "args.h"
#include "cli.h"
#include "gemma.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define BENCH_MAX_LIST 16
#define BENCH_TTFT_PROMPT 128
#define BENCH_TOK_BYTES (1u << 20)

static const char bench_help[] =
    "usage: gemma bench [-m MODEL] [-p N] [-n N] [-t THREADS] [-r REPS] [--json]\n"
    "\n"
    "Measures prompt processing (ppN: N prompt tokens in batches) and text generation\n"
    "(tgN: N tokens one at a time) like llama.cpp's llama-bench: random but fixed token\n"
    "ids, one warm-up, then REPS timed repetitions reported as tokens/s mean ± stdev.\n"
    "Also reports load time, time to first token for a 128-token prompt, peak resident\n"
    "memory and tokenizer speed on 1 MB of generated English-like text.\n"
    "\n"
    "examples:\n"
    "  gemma bench                        # default model, pp512 and tg128, all CPUs\n"
    "  gemma bench -m model.gguf -t 1,2,4 -r 3\n"
    "  gemma bench -p 16 -n 4 -r 1 --json\n"
    "  bench/compare.sh model.gguf 1 2    # side by side with llama-bench\n"
    "\n"
    "options:\n"
    "  -m, --model FILE      GGUF model (default: the model fetched by 'make model')\n"
    "  -p, --n-prompt N,...  prompt lengths to test (default 512; 0 = skip)\n"
    "  -n, --n-gen N,...     generation lengths to test (default 128; 0 = skip)\n"
    "  -t, --threads N,...   thread counts to test (default: all online CPUs)\n"
    "  -r, --repetitions N   timed repetitions per test (default 5)\n"
    "  -b, --batch-size N    prompt tokens per forward pass (default 512)\n"
    "      --isa NAME        force a kernel set: scalar, avx2, avx512, ... (default: best)\n"
    "      --json            print a JSON list of results instead of a table\n"
    "  -v, --verbose         progress on stderr\n"
    "  -h, --help            show this help\n";

typedef struct bench_opts {
    args_common c; /* model, batch, isa, verbose */
    int32_t p[BENCH_MAX_LIST], n[BENCH_MAX_LIST], t[BENCH_MAX_LIST];
    int np, nn, nt;
    int32_t reps;
    bool json;
} bench_opts;

typedef struct bench_row {
    char test[32];
    int32_t n_prompt, n_gen, threads;
    double mean, stdev;  /* tokens per second (ttft: milliseconds) */
    double *samples;
} bench_row;

typedef struct bench {
    const bench_opts *o;
    gemma_model *model;
    gemma_model_info info;
    char model_type[160];
    const char *path;
    char isa[48];
    double load_s;
    bench_row *rows;
    int n_rows;
    /* tokenizer */
    double tok_mean, tok_stdev, tok_bytes_per_s;
    size_t tok_bytes, tok_count;
    uint64_t rng;
} bench;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint32_t next_rand(uint64_t *x)
{
    *x = *x * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(*x >> 33);
}

static void mean_stdev(const double *v, int n, double *mean, double *sd)
{
    double s = 0, q = 0;
    for (int i = 0; i < n; i++)
        s += v[i];
    *mean = n ? s / n : 0;
    for (int i = 0; i < n; i++)
        q += (v[i] - *mean) * (v[i] - *mean);
    *sd = n > 1 ? sqrt(q / (n - 1)) : 0;
}

static int parse(int argc, char **argv, bench_opts *o)
{
    args a;
    args_init(&a, "bench", argc, argv);
    *o = (bench_opts){.p = {512}, .n = {128}, .t = {args_online_cpus()}, .np = 1, .nn = 1,
                      .nt = 1, .reps = 5};
    while (args_next(&a)) {
        int r = args_common_option(&a, &o->c, ARGS_OPT_MODEL | ARGS_OPT_BATCH | ARGS_OPT_ISA | ARGS_OPT_VERBOSE |
                                                      ARGS_OPT_LOAD);
        if (r < 0)
            return ARGS_USAGE;
        if (r > 0)
            continue;
        bool ok = true;
        if (args_is(&a, "-h", "--help")) {
            fputs(bench_help, stdout);
            fputs(args_load_help, stdout);
            return -1;
        } else if (args_is(&a, "-p", "--n-prompt")) {
            ok = args_int_list(&a, 0, 1 << 20, o->p, BENCH_MAX_LIST, &o->np);
        } else if (args_is(&a, "-n", "--n-gen")) {
            ok = args_int_list(&a, 0, 1 << 20, o->n, BENCH_MAX_LIST, &o->nn);
        } else if (args_is(&a, "-t", "--threads")) {
            ok = args_int_list(&a, 1, 1024, o->t, BENCH_MAX_LIST, &o->nt);
        } else if (args_is(&a, "-r", "--repetitions")) {
            ok = args_int(&a, 1, 1000, &o->reps);
        } else if (args_is(&a, "--json", "-o")) {
            if (strcmp(a.argv[a.i], "-o") == 0) { /* llama-bench's "-o json" spelling */
                const char *v = args_value(&a);
                if (v && strcmp(v, "json") && strcmp(v, "md"))
                    return args_error("bench", "-o takes 'json' or 'md', got '%s'", v);
                ok = v != NULL;
                o->json = ok && !strcmp(v, "json");
            } else {
                o->json = true;
            }
        } else {
            return args_unknown(&a);
        }
        if (!ok)
            return ARGS_USAGE;
    }
    return 0;
}

/* ---- measurements ------------------------------------------------------------------- */

static bool eval_ok(gemma_session *s, gemma_status st, const char *what)
{
    if (st == GEMMA_OK)
        return true;
    fprintf(stderr, "gemma bench: %s failed: %s\n", what, args_session_error(s, st));
    return false;
}

/* n prompt tokens: BOS, then random ids (as llama-bench). */
static void fill_prompt(bench *b, gemma_token *tok, int32_t n)
{
    for (int32_t i = 0; i < n; i++)
        tok[i] = i == 0 ? gemma_token_bos(b->model) : (gemma_token)(next_rand(&b->rng) % (uint32_t)b->info.n_vocab);
}

static bool run_pp(bench *b, gemma_session *s, gemma_token *tok, int32_t n, double *secs)
{
    fill_prompt(b, tok, n);
    if (!eval_ok(s, gemma_session_reset(s), "reset"))
        return false;
    double t0 = now_s();
    if (!eval_ok(s, gemma_session_eval(s, tok, (size_t)n, NULL), "prompt evaluation"))
        return false;
    *secs = now_s() - t0;
    return true;
}

static bool run_tg(bench *b, gemma_session *s, int32_t n, double *secs)
{
    if (!eval_ok(s, gemma_session_reset(s), "reset"))
        return false;
    gemma_token t = gemma_token_bos(b->model);
    double t0 = now_s();
    for (int32_t i = 0; i < n; i++) {
        if (!eval_ok(s, gemma_session_eval(s, &t, 1, NULL), "generation step"))
            return false;
        t = (gemma_token)(next_rand(&b->rng) % (uint32_t)b->info.n_vocab);
    }
    *secs = now_s() - t0;
    return true;
}

/* Prompt in, first token out: evaluation of the prompt plus one (greedy) sampling. */
static bool run_ttft(bench *b, gemma_session *s, gemma_sampler *smp, gemma_token *tok, double *secs)
{
    fill_prompt(b, tok, BENCH_TTFT_PROMPT);
    if (!eval_ok(s, gemma_session_reset(s), "reset"))
        return false;
    double t0 = now_s();
    if (!eval_ok(s, gemma_session_eval(s, tok, BENCH_TTFT_PROMPT, NULL), "prompt evaluation"))
        return false;
    const float *logits = gemma_session_logits(s);
    volatile gemma_token first = logits ? gemma_sampler_sample(smp, logits) : 0;
    (void)first;
    *secs = now_s() - t0;
    return true;
}

static bench_row *add_row(bench *b, const char *kind, int32_t np, int32_t ng, int32_t threads)
{
    bench_row *r = &b->rows[b->n_rows++];
    memset(r, 0, sizeof *r);
    if (!strcmp(kind, "pp"))
        snprintf(r->test, sizeof r->test, "pp%d", (int)np);
    else if (!strcmp(kind, "tg"))
        snprintf(r->test, sizeof r->test, "tg%d", (int)ng);
    else
        snprintf(r->test, sizeof r->test, "%s%d", kind, (int)np);
    r->n_prompt = np;
    r->n_gen = ng;
    r->threads = threads;
    r->samples = calloc((size_t)b->o->reps, sizeof *r->samples);
    return r->samples ? r : NULL;
}

/* Every test at one thread count. */
static bool bench_threads(bench *b, int32_t threads, gemma_token *tok, int32_t n_ctx)
{
    const bench_opts *o = b->o;
    gemma_session_params sp = args_session_params(&o->c);
    sp.n_ctx = n_ctx;
    sp.n_threads = threads;
    gemma_session *s = NULL;
    gemma_sampler *smp = NULL;
    gemma_error err = {0};
    gemma_sampler_params greedy;
    gemma_sampler_params_init(&greedy, sizeof greedy, b->model);
    greedy.temperature = 0;
    if (gemma_session_create(b->model, &sp, &s, &err) != GEMMA_OK ||
        gemma_sampler_create(&greedy, b->info.n_vocab, &smp, &err) != GEMMA_OK) {
        fprintf(stderr, "gemma bench: cannot create a session with %d threads: %s\n", (int)threads,
                err.message);
        gemma_session_free(s);
        return false;
    }
    gemma_session_stats st = {.size = sizeof st};
    if (gemma_session_get_stats(s, &st) == GEMMA_OK && st.isa)
        snprintf(b->isa, sizeof b->isa, "%s", st.isa);
    double secs;
    bool ok = true;
    /* Warm-up: page in the weights, spin up the pool, fill the caches. */
    ok = run_pp(b, s, tok, o->p[0] > 0 ? o->p[0] : 16, &secs) && run_tg(b, s, 1, &secs);
    for (int i = 0; ok && i < o->np; i++) {
        if (o->p[i] == 0)
            continue;
        bench_row *r = add_row(b, "pp", o->p[i], 0, threads);
        for (int k = 0; ok && r && k < o->reps; k++) {
            if (o->c.verbose)
                fprintf(stderr, "gemma bench: pp%d, %d threads, run %d/%d\n", o->p[i], threads, k + 1, o->reps);
            ok = run_pp(b, s, tok, o->p[i], &secs);
            r->samples[k] = secs > 0 ? o->p[i] / secs : 0;
        }
        ok = ok && r;
    }
    for (int i = 0; ok && i < o->nn; i++) {
        if (o->n[i] == 0)
            continue;
        bench_row *r = add_row(b, "tg", 0, o->n[i], threads);
        for (int k = 0; ok && r && k < o->reps; k++) {
            if (o->c.verbose)
                fprintf(stderr, "gemma bench: tg%d, %d threads, run %d/%d\n", o->n[i], threads, k + 1, o->reps);
            ok = run_tg(b, s, o->n[i], &secs);
            r->samples[k] = secs > 0 ? o->n[i] / secs : 0;
        }
        ok = ok && r;
    }
    bench_row *r = ok ? add_row(b, "ttft", BENCH_TTFT_PROMPT, 1, threads) : NULL;
    for (int k = 0; ok && r && k < o->reps; k++) {
        ok = run_ttft(b, s, smp, tok, &secs);
        r->samples[k] = secs * 1e3;
    }
    ok = ok && r;
    gemma_sampler_free(smp);
    gemma_session_free(s);
    return ok;
}

/* ---- tokenizer ---------------------------------------------------------------------- */

static const char *const words[] = {
    "the", "of", "and", "to", "in", "a", "is", "that", "for", "it", "as", "was", "with", "be",
    "by", "on", "not", "he", "this", "are", "or", "his", "from", "at", "which", "but", "have",
    "an", "had", "they", "you", "were", "their", "one", "all", "we", "can", "her", "has",
    "there", "been", "if", "more", "when", "will", "would", "who", "so", "no", "time", "people",
    "world", "government", "information", "development", "between", "important", "language",
    "model", "computer", "history", "university", "understanding", "particularly", "river",
    "mountain", "country", "children", "morning", "science", "different", "however", "because",
    "without", "through", "thousand", "question", "beautiful", "remember", "together",
    "London", "Paris", "September", "Einstein", "1984", "2024", "3.14", "e-mail", "don't",
    "it's", "well-known", "café", "naïve", "résumé", "Zürich", "東京", "🙂",
};

static char *english_text(uint64_t *rng, size_t n)
{
    char *t = malloc(n + 64);
    if (!t)
        return NULL;
    size_t len = 0;
    int in_sentence = 0;
    while (len < n) {
        const char *w = words[next_rand(rng) % (sizeof words / sizeof words[0])];
        size_t wl = strlen(w);
        if (len + wl + 3 > n)
            break;
        if (in_sentence)
            t[len++] = ' ';
        memcpy(t + len, w, wl);
        if (!in_sentence && t[len] >= 'a' && t[len] <= 'z')
            t[len] = (char)(t[len] - 'a' + 'A');
        len += wl;
        uint32_t r = next_rand(rng) % 100;
        if (r < 8 && in_sentence > 3) {
            t[len++] = r < 6 ? '.' : r < 7 ? '?' : '!';
            t[len++] = next_rand(rng) % 8 == 0 ? '\n' : ' ';
            in_sentence = 0;
        } else {
            if (r < 14)
                t[len++] = ',';
            in_sentence++;
        }
    }
    while (len < n)
        t[len++] = '\n';
    t[len] = '\0';
    return t;
}

static bool bench_tokenizer(bench *b)
{
    uint64_t rng = 12345;
    char *text = english_text(&rng, BENCH_TOK_BYTES);
    size_t cap = BENCH_TOK_BYTES + 16, n = 0;
    gemma_token *tok = malloc(cap * sizeof *tok);
    double *samples = calloc((size_t)b->o->reps, sizeof *samples);
    bool ok = text && tok && samples;
    for (int k = 0; ok && k < b->o->reps; k++) {
        double t0 = now_s();
        gemma_status st = gemma_tokenize(b->model, text, BENCH_TOK_BYTES, true, false, tok, cap, &n);
        double secs = now_s() - t0;
        if (st != GEMMA_OK) {
            fprintf(stderr, "gemma bench: tokenizing 1 MB of text failed: %s\n", gemma_strerror(st));
            ok = false;
        }
        samples[k] = secs > 0 ? (double)n / secs : 0;
    }
    if (ok) {
        mean_stdev(samples, b->o->reps, &b->tok_mean, &b->tok_stdev);
        b->tok_count = n;
        b->tok_bytes = BENCH_TOK_BYTES;
        b->tok_bytes_per_s = n ? b->tok_mean * (double)BENCH_TOK_BYTES / (double)n : 0;
    }
    free(samples);
    free(tok);
    free(text);
    return ok;
}

/* ---- output ------------------------------------------------------------------------- */

static double peak_rss_bytes(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return (double)ru.ru_maxrss * 1024.0; /* kilobytes on Linux */
}

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

static void json_common(FILE *f, const bench *b, int32_t threads)
{
    fputs("\"model_filename\": ", f);
    json_str(f, b->path);
    fputs(", \"model_type\": ", f);
    json_str(f, b->model_type);
    fprintf(f, ", \"model_size\": %llu, \"model_n_params\": %llu, \"isa\": ",
            (unsigned long long)b->info.weight_bytes, (unsigned long long)b->info.n_params);
    json_str(f, b->isa);
    fprintf(f, ", \"threads\": %d, \"n_threads\": %d, \"reps\": %d, \"load_seconds\": %.6f, "
               "\"peak_rss_bytes\": %.0f", (int)threads, (int)threads, (int)b->o->reps, b->load_s,
            peak_rss_bytes());
}

static void print_json(const bench *b)
{
    printf("[\n");
    for (int i = 0; i < b->n_rows; i++) {
        const bench_row *r = &b->rows[i];
        printf("  {\"test\": \"%s\", ", r->test);
        json_common(stdout, b, r->threads);
        printf(", \"n_prompt\": %d, \"n_gen\": %d, ", (int)r->n_prompt, (int)r->n_gen);
        bool ttft = !strncmp(r->test, "ttft", 4);
        if (ttft)
            printf("\"ttft_ms\": %.4f, \"ttft_ms_stdev\": %.4f, \"tokens_per_second\": %.4f, "
                   "\"stdev\": 0, \"samples_ms\": [", r->mean, r->stdev,
                   r->mean > 0 ? r->n_prompt * 1e3 / r->mean : 0.0);
        else
            printf("\"tokens_per_second\": %.4f, \"stdev\": %.4f, \"avg_ts\": %.4f, "
                   "\"stddev_ts\": %.4f, \"samples_ts\": [", r->mean, r->stdev, r->mean, r->stdev);
        for (int k = 0; k < b->o->reps; k++)
            printf("%s%.4f", k ? ", " : "", r->samples[k]);
        printf("]},\n");
    }
    printf("  {\"test\": \"tokenize\", ");
    json_common(stdout, b, 1);
    printf(", \"n_prompt\": 0, \"n_gen\": 0, \"n_bytes\": %zu, \"n_tokens\": %zu, "
           "\"tokens_per_second\": %.1f, \"stdev\": %.1f, \"bytes_per_second\": %.1f}\n]\n",
           b->tok_bytes, b->tok_count, b->tok_mean, b->tok_stdev, b->tok_bytes_per_s);
}

static void print_table(const bench *b)
{
    char size[32], params[32];
    double mb = (double)b->info.weight_bytes / (1024.0 * 1024.0);
    if (mb < 1024)
        snprintf(size, sizeof size, "%.2f MiB", mb);
    else
        snprintf(size, sizeof size, "%.2f GiB", mb / 1024);
    if (b->info.n_params < 1000000000ull)
        snprintf(params, sizeof params, "%.2f M", (double)b->info.n_params / 1e6);
    else
        snprintf(params, sizeof params, "%.2f B", (double)b->info.n_params / 1e9);
    printf("| %-30s | %10s | %10s | %-12s | %7s | %12s | %20s |\n", "model", "size", "params",
           "isa", "threads", "test", "t/s");
    printf("| ------------------------------ | ---------: | ---------: | ------------ | ------: | "
           "-----------: | -------------------: |\n");
    for (int i = 0; i < b->n_rows; i++) {
        const bench_row *r = &b->rows[i];
        if (!strncmp(r->test, "ttft", 4))
            continue;
        char ts[48];
        snprintf(ts, sizeof ts, "%.2f ± %.2f", r->mean, r->stdev);
        printf("| %-30s | %10s | %10s | %-12s | %7d | %12s | %21s |\n", b->model_type, size, params,
               b->isa[0] ? b->isa : "?", (int)r->threads, r->test, ts);
    }
    printf("\n");
    printf("load time:  %.3f s\n", b->load_s);
    for (int i = 0; i < b->n_rows; i++) {
        const bench_row *r = &b->rows[i];
        if (!strncmp(r->test, "ttft", 4))
            printf("time to first token (%d-token prompt, %d thread%s): %.2f ± %.2f ms\n",
                   (int)r->n_prompt, (int)r->threads, r->threads == 1 ? "" : "s", r->mean,
                   r->stdev);
    }
    printf("peak RSS:   %.1f MiB\n", peak_rss_bytes() / (1024.0 * 1024.0));
    printf("tokenizer:  %.2f MB/s, %.0f ± %.0f tokens/s (%zu tokens from 1 MiB of text)\n",
           b->tok_bytes_per_s / 1e6, b->tok_mean, b->tok_stdev, b->tok_count);
}

/* "gemma3 270M Q4_K - Medium", as llama-bench names models, so results line up. */
static void describe_model(bench *b)
{
    static const struct { uint32_t id; const char *name; } ftypes[] = {
        {0, "all F32"}, {1, "F16"}, {2, "Q4_0"}, {3, "Q4_1"}, {7, "Q8_0"}, {8, "Q5_0"},
        {9, "Q5_1"}, {10, "Q2_K - Medium"}, {11, "Q3_K - Small"}, {12, "Q3_K - Medium"},
        {13, "Q3_K - Large"}, {14, "Q4_K - Small"}, {15, "Q4_K - Medium"}, {16, "Q5_K - Small"},
        {17, "Q5_K - Medium"}, {18, "Q6_K"}, {32, "BF16"},
    };
    const char *ft = NULL;
    gemma_gguf *g = NULL;
    uint32_t id;
    if (gemma_gguf_open(b->path, &g, NULL) == GEMMA_OK &&
        gemma_gguf_get_u32(g, "general.file_type", &id) == GEMMA_OK)
        for (size_t i = 0; i < sizeof ftypes / sizeof ftypes[0]; i++)
            if (ftypes[i].id == id)
                ft = ftypes[i].name;
    snprintf(b->model_type, sizeof b->model_type, "%s %s%s%s", b->info.architecture,
             b->info.size_label, ft ? " " : "", ft ? ft : "");
    gemma_gguf_close(g);
}

int cmd_bench(int argc, char **argv)
{
    bench_opts o;
    int rc = parse(argc, argv, &o);
    if (rc)
        return rc < 0 ? 0 : rc;
    bench b = {.o = &o, .rng = 0x1234567ull};
    if (!(b.path = args_model_path("bench", o.c.model)))
        return 1;
    double t0 = now_s();
    if (!(b.model = args_load_model("bench", b.path, &o.c)))
        return 1;
    b.load_s = now_s() - t0;
    b.info.size = sizeof b.info;
    gemma_model_get_info(b.model, &b.info);
    describe_model(&b);

    int32_t n_ctx = BENCH_TTFT_PROMPT + 16;
    for (int i = 0; i < o.np; i++)
        n_ctx = o.p[i] + 16 > n_ctx ? o.p[i] + 16 : n_ctx;
    for (int i = 0; i < o.nn; i++)
        n_ctx = o.n[i] + 16 > n_ctx ? o.n[i] + 16 : n_ctx;
    size_t max_rows = (size_t)o.nt * (size_t)(o.np + o.nn + 1);
    b.rows = calloc(max_rows, sizeof *b.rows);
    gemma_token *tok = malloc((size_t)n_ctx * sizeof *tok);
    bool ok = b.rows && tok;
    if (!ok)
        fprintf(stderr, "gemma bench: out of memory\n");
    if (ok && b.info.n_ctx_train > 0 && n_ctx > b.info.n_ctx_train) {
        fprintf(stderr, "gemma bench: the tests need %d tokens of context but the model was "
                        "trained for %d; use smaller -p/-n\n", (int)n_ctx, (int)b.info.n_ctx_train);
        ok = false;
    }
    for (int i = 0; ok && i < o.nt; i++)
        ok = bench_threads(&b, o.t[i], tok, n_ctx);
    ok = ok && bench_tokenizer(&b);
    if (ok) {
        for (int i = 0; i < b.n_rows; i++)
            mean_stdev(b.rows[i].samples, o.reps, &b.rows[i].mean, &b.rows[i].stdev);
        if (o.json)
            print_json(&b);
        else
            print_table(&b);
    }
    for (int i = 0; i < b.n_rows; i++)
        free(b.rows[i].samples);
    free(b.rows);
    free(tok);
    gemma_model_free(b.model);
    return ok ? 0 : 1;
}
