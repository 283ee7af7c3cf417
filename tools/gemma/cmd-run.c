/* gemma run: generate text from a prompt, streaming tokens to stdout as they come. */
#include "args.h"
#include "cli.h"
#include "gemma.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RUN_MAX_STOPS 16

static const char run_help[] =
    "usage: gemma run [-m MODEL] (-p PROMPT | -f FILE) [options]\n"
    "\n"
    "Generates a continuation of PROMPT and streams it to stdout as it is produced.\n"
    "Without --chat the prompt is plain text the model continues (the default model is the\n"
    "BASE Gemma 3 270M, which continues text rather than following instructions). With\n"
    "--chat the prompt becomes a user message in the model's chat format.\n"
    "\n"
    "examples:\n"
    "  gemma run -p \"The capital of France is\" --temp 0 -n 16\n"
    "  gemma run -m gemma-3-1b-it-Q4_K_M.gguf --chat -p \"Write a haiku about C.\"\n"
    "  gemma run -f story.txt -n 200 --seed 7 -v\n"
    "  echo \"Once upon a time\" | gemma run -n 64\n"
    "\n"
    "options:\n"
    "  -m, --model FILE      GGUF model (default: the model fetched by 'make model')\n"
    "  -p, --prompt TEXT     prompt text\n"
    "  -f, --file FILE       read the prompt from FILE ('-' = stdin; one final newline is\n"
    "                        dropped); without -p or -f, text piped on stdin is the prompt\n"
    "  -n, --n-predict N     tokens to generate (default 256; -1 = until the model stops or\n"
    "                        the context is full; 0 = only evaluate the prompt)\n"
    "      --chat            wrap the prompt as a user message (chat template)\n"
    "      --system TEXT     system message (implies --chat)\n"
    "      --think           let a thinking model (Gemma 4) think first (implies --chat;\n"
    "                        --no-think: off, the default); the thoughts are printed too\n"
    "      --stop STR        stop when STR appears (not printed); may be repeated\n"
    "      --json-schema FILE  output must be JSON valid for the JSON Schema in FILE\n"
    "      --grammar FILE    output must match the grammar in FILE (docs/grammar.md)\n"
    "  -t, --threads N       CPU threads (default: all online CPUs)\n"
    "  -c, --ctx-size N      context length in tokens (default: min(trained, 8192))\n"
    "  -b, --batch-size N    prompt tokens per forward pass (default 512)\n"
    "      --isa NAME        force a kernel set: scalar, avx2, avx512, ... (default: best)\n"
    "  -v, --verbose         print model, kernel, memory and speed details to stderr\n"
    "  -h, --help            show this help\n"
    "\n";

typedef struct run_opts {
    args_common c;
    const char *prompt, *file, *system;
    const char *schema_file, *grammar_file;
    const char *stops[RUN_MAX_STOPS];
    int n_stops;
    bool chat, think;
    args_sampling sampling;
} run_opts;

static gemma_session *volatile g_run_session;
/* Ctrl-C seen: the session's cancel flag clears when the next call starts, so a Ctrl-C
 * between the prompt and the generation is remembered here. */
static volatile sig_atomic_t g_interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    gemma_session *s = g_run_session;
    g_interrupted = 1;
    if (s)
        gemma_session_cancel(s);
    else
        _exit(130);
}

/* 0 = parsed, -1 = --help printed, otherwise an exit status. */
static int parse(int argc, char **argv, run_opts *o)
{
    args a;
    args_init(&a, "run", argc, argv);
    *o = (run_opts){.c = {.n_predict = 256, .threads = args_online_cpus()}};
    while (args_next(&a)) {
        int r = args_sampling_option(&a, &o->sampling);
        if (r == 0)
            r = args_common_option(&a, &o->c, ARGS_OPT_ALL);
        if (r < 0)
            return ARGS_USAGE;
        if (r > 0)
            continue;
        bool ok = true;
        if (args_is(&a, "-h", "--help")) {
            fputs(run_help, stdout);
            fputs(args_load_help, stdout);
            fputs(args_sampling_help, stdout);
            return -1;
        } else if (args_is(&a, "-p", "--prompt")) {
            ok = (o->prompt = args_value(&a)) != NULL;
        } else if (args_is(&a, "-f", "--file")) {
            ok = (o->file = args_value(&a)) != NULL;
        } else if (args_is(&a, "--chat", NULL)) {
            o->chat = true;
        } else if (args_is(&a, "--system", NULL)) {
            ok = (o->system = args_value(&a)) != NULL;
            o->chat = true;
        } else if (args_is(&a, "--think", NULL)) {
            o->think = o->chat = true;
        } else if (args_is(&a, "--no-think", NULL)) {
            o->think = false;
        } else if (args_is(&a, "--json-schema", NULL)) {
            ok = (o->schema_file = args_value(&a)) != NULL;
        } else if (args_is(&a, "--grammar", NULL)) {
            ok = (o->grammar_file = args_value(&a)) != NULL;
        } else if (args_is(&a, "--stop", NULL)) {
            const char *v = args_value(&a);
            if (v && !*v)
                return args_error("run", "--stop needs a non-empty string");
            if (v && o->n_stops == RUN_MAX_STOPS)
                return args_error("run", "at most %d --stop strings", RUN_MAX_STOPS);
            ok = v != NULL;
            if (ok)
                o->stops[o->n_stops++] = v;
        } else {
            return args_unknown(&a);
        }
        if (!ok)
            return ARGS_USAGE;
    }
    if (o->prompt && o->file)
        return args_error("run", "give the prompt with -p or -f, not both");
    if (o->schema_file && o->grammar_file)
        return args_error("run", "give --json-schema or --grammar, not both");
    if (!o->prompt && !o->file) {
        if (isatty(STDIN_FILENO))
            return args_error("run", "no prompt; pass -p TEXT, -f FILE, or pipe text on stdin");
        o->file = "-";
    }
    return 0;
}

typedef struct run_out {
    bool last_newline, any, broken;
    int write_errno; /* why stdout failed; EPIPE (reader gone, e.g. `| head`) stops quietly */
} run_out;

static int on_token(void *user, const char *text, size_t len, gemma_token token)
{
    (void)token;
    run_out *out = user;
    if (g_interrupted) /* a Ctrl-C just before the generation cleared the session's flag */
        return 1;
    if (len == 0)
        return 0;
    errno = 0;
    if (fwrite(text, 1, len, stdout) != len || fflush(stdout) != 0) {
        out->broken = true;
        out->write_errno = errno ? errno : EIO;
        return 1;
    }
    out->any = true;
    out->last_newline = text[len - 1] == '\n';
    return 0;
}

static int feed_prompt(gemma_session *s, const run_opts *o, const char *prompt, size_t len)
{
    gemma_status st;
    if (o->chat) {
        gemma_chat_message msgs[2];
        size_t n = 0;
        if (o->system)
            msgs[n++] = (gemma_chat_message){.role = "system", .content = o->system};
        if (memchr(prompt, '\0', len)) {
            fprintf(stderr, "gemma run: the prompt holds a NUL byte at offset %zu, which a chat message "
                            "cannot carry; remove it (without --chat the text is used as is)\n",
                    (size_t)((const char *)memchr(prompt, '\0', len) - prompt));
            return 1;
        }
        msgs[n++] = (gemma_chat_message){.role = "user", .content = prompt};
        gemma_chat_params cp;
        gemma_chat_params_init(&cp, sizeof cp);
        cp.enable_thinking = o->think;
        st = gemma_session_set_chat_params(s, &cp);
        if (st == GEMMA_OK)
            st = gemma_session_feed_chat(s, msgs, n);
    } else {
        st = gemma_session_feed_text(s, prompt, len);
    }
    if (st == GEMMA_E_CANCELLED)
        return 130;
    if (st != GEMMA_OK) {
        fprintf(stderr, "gemma run: cannot evaluate the prompt: %s\n", args_session_error(s, st));
        if (st == GEMMA_E_CONTEXT_FULL)
            fprintf(stderr, "  the prompt does not fit the context; raise -c or shorten it\n");
        return 1;
    }
    return 0;
}

static void print_speed(const gemma_session *s, const gemma_generate_result *res)
{
    gemma_session_stats st = {.size = sizeof st};
    if (gemma_session_get_stats(s, &st) != GEMMA_OK)
        return;
    fprintf(stderr, "prefill: %lld tokens in %.3f s (%.1f tok/s)\n", (long long)st.n_prompt_tokens,
            st.prompt_seconds,
            st.prompt_seconds > 0 ? (double)st.n_prompt_tokens / st.prompt_seconds : 0.0);
    fprintf(stderr, "decode:  %lld tokens in %.3f s (%.1f tok/s)\n", (long long)st.n_gen_tokens,
            st.gen_seconds, st.gen_seconds > 0 ? (double)st.n_gen_tokens / st.gen_seconds : 0.0);
    if (res)
        fprintf(stderr, "stop: %s after %d tokens; context holds %d of %d\n",
                args_stop_reason(res->stop_reason), res->n_tokens, st.n_past, st.n_ctx);
}

/* The --json-schema / --grammar constraint (NULL without one); *rc = 1 on error. */
static gemma_constraint *load_constraint(const gemma_model *m, const run_opts *o, int *rc)
{
    const char *file = o->schema_file ? o->schema_file : o->grammar_file;
    if (!file)
        return NULL;
    size_t len;
    char *text = args_read_file("run", file, &len);
    gemma_constraint *c = NULL;
    gemma_error err = {0};
    gemma_status st = !text ? GEMMA_E_IO
                      : o->schema_file ? gemma_constraint_from_json_schema(m, text, len, &c, &err)
                                       : gemma_constraint_from_grammar(m, text, len, NULL, &c, &err);
    if (text && st)
        fprintf(stderr, "gemma run: %s: %s\n", file, err.message);
    free(text);
    if (st)
        *rc = 1;
    return c;
}

static int generate_with(gemma_session *s, const gemma_model *m, const run_opts *o, const gemma_constraint *c)
{
    const gemma_sampler_params sp = args_sampling_resolve(&o->sampling, m);
    gemma_generate_params gp;
    gemma_generate_params_init(&gp, sizeof gp);
    gp.max_tokens = o->c.n_predict;
    gp.constraint = c;
    gp.sampling = &sp;
    gp.stop_strings = o->n_stops ? o->stops : NULL;
    gp.n_stop_strings = (size_t)o->n_stops;
    run_out out = {.last_newline = true};
    gp.on_token = on_token;
    gp.user = &out;
    if (o->c.verbose)
        args_print_sampling(&sp);
    gemma_generate_result res = {.size = sizeof res};
    gemma_status st = GEMMA_OK;
    if (g_interrupted)
        res.stop_reason = GEMMA_STOP_CANCELLED;
    else if (o->c.n_predict != 0)
        st = gemma_session_generate(s, &gp, &res);
    if (out.any && !out.last_newline && !out.broken)
        fputc('\n', stdout);
    fflush(stdout);
    if (out.write_errno == EPIPE) {
        clearerr(stdout); /* nobody is reading: not an error */
    } else if (out.broken) {
        fprintf(stderr, "gemma run: cannot write the output: %s\n", strerror(out.write_errno));
        clearerr(stdout); /* reported here, not again by main */
        return ARGS_EXIT_WRITE;
    }
    if (st != GEMMA_OK) {
        fprintf(stderr, "gemma run: generation failed: %s\n", args_session_error(s, st));
        return 1;
    }
    if (o->c.verbose)
        print_speed(s, o->c.n_predict == 0 ? NULL : &res);
    else if (res.stop_reason == GEMMA_STOP_CONTEXT_FULL)
        fprintf(stderr, "gemma run: stopped: the context is full; raise -c for longer output\n");
    return res.stop_reason == GEMMA_STOP_CANCELLED || g_interrupted ? 130 : 0;
}

static int generate(gemma_session *s, const gemma_model *m, const run_opts *o)
{
    int rc = 0;
    gemma_constraint *c = load_constraint(m, o, &rc);
    if (rc)
        return rc;
    rc = generate_with(s, m, o, c);
    gemma_constraint_free(c);
    return rc;
}

int cmd_run(int argc, char **argv)
{
    run_opts o;
    int rc = parse(argc, argv, &o);
    if (rc)
        return rc < 0 ? 0 : rc;
    const char *path = args_model_path("run", o.c.model);
    if (!path)
        return 1;
    size_t len = 0;
    char *owned = NULL;
    if (o.file) {
        if (!(owned = args_read_file("run", o.file, &len)))
            return 1;
        /* `echo text | gemma run` and editors end the text with a newline the user did not
         * mean as part of the prompt. */
        if (len > 0 && owned[len - 1] == '\n')
            owned[--len] = '\0';
        if (len > 0 && owned[len - 1] == '\r')
            owned[--len] = '\0';
        o.prompt = owned;
    } else {
        len = strlen(o.prompt);
    }
    gemma_model *m = args_load_model("run", path, &o.c);
    gemma_session *s = NULL;
    rc = 1;
    if (!m)
        goto done;
    if (!(s = args_create_session("run", m, &o.c)))
        goto done;
    if (o.c.verbose)
        args_print_model_info(m, s);
    g_run_session = s;
    signal(SIGINT, on_sigint); /* Ctrl-C ends the generation cleanly, with stats */
    rc = feed_prompt(s, &o, o.prompt, len);
    if (rc == 0)
        rc = generate(s, m, &o);
    signal(SIGINT, SIG_DFL);
    g_run_session = NULL;
done:
    gemma_session_free(s);
    gemma_model_free(m);
    free(owned);
    return rc;
}
