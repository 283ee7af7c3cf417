/* gemma chat: an interactive multi-turn conversation. The history lives in the session's
 * KV cache; each turn feeds only the new user message. */
#include "args.h"
#include "cli.h"
#include "gemma.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char chat_help[] =
    "usage: gemma chat [-m MODEL] [--system TEXT] [options]\n"
    "\n"
    "Talks with an instruction-tuned model in its chat format. Each line you type is one\n"
    "message; end a line with '\\' to continue it on the next. The conversation is kept in\n"
    "the context (-c), so follow-up questions see earlier turns.\n"
    "\n"
    "  Ctrl-C    stops the current answer; at the prompt it quits\n"
    "  Ctrl-D    quits (end of input)\n"
    "  /reset    forgets the conversation\n"
    "  /help     lists these commands\n"
    "  /exit     quits\n"
    "\n"
    "Input need not be a terminal: piped lines are read as turns, one answer per line.\n"
    "The default model is the BASE Gemma 3 270M, which was not trained to chat: expect\n"
    "rambling answers. Pass an instruction-tuned model (an '-it' GGUF) with -m.\n"
    "\n"
    "examples:\n"
    "  gemma chat -m gemma-3-1b-it-Q4_K_M.gguf\n"
    "  gemma chat -m gemma-3-1b-it-Q4_K_M.gguf --system \"Answer in one sentence.\" --temp 0.7\n"
    "  printf 'Hi!\\nWhat did I just say?\\n' | gemma chat -m MODEL --seed 1\n"
    "\n"
    "options:\n"
    "  -m, --model FILE      GGUF model (default: the model fetched by 'make model')\n"
    "      --system TEXT     system message, sent with the first turn (and after /reset)\n"
    "      --think           let a thinking model (Gemma 4) think before it answers; its\n"
    "                        thoughts are shown dimmed (--no-think: off, the default)\n"
    "      --hide-thoughts   do not show the thoughts\n"
    "  -n, --n-predict N     most tokens per answer (default -1 = until the model ends its\n"
    "                        turn or the context is full)\n"
    "  -t, --threads N       CPU threads (default: all online CPUs)\n"
    "  -c, --ctx-size N      context length in tokens (default: min(trained, 8192))\n"
    "      --isa NAME        force a kernel set: scalar, avx2, avx512, ... (default: best)\n"
    "  -v, --verbose         print model details, and speed after each answer, to stderr\n"
    "  -h, --help            show this help\n"
    "\n";

static const char chat_commands[] =
    "commands: /reset forgets the conversation, /exit quits, /help shows this;\n"
    "Ctrl-C stops an answer (at the prompt it quits), Ctrl-D quits.\n";

typedef struct chat_opts {
    args_common c;
    const char *system;
    bool think, hide_thoughts;
    args_sampling sampling;
} chat_opts;

/* The SIGINT handler's view: while an answer is being produced it cancels the session,
 * otherwise it asks the read loop to quit. */
static gemma_session *volatile g_chat_session;
static volatile sig_atomic_t g_busy, g_quit, g_interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    gemma_session *s = g_chat_session;
    if (g_busy && s) {
        g_interrupted = 1;
        gemma_session_cancel(s);
    } else {
        g_quit = 1;
    }
}

static int parse(int argc, char **argv, chat_opts *o)
{
    args a;
    args_init(&a, "chat", argc, argv);
    *o = (chat_opts){.c = {.n_predict = -1, .threads = args_online_cpus()}};
    while (args_next(&a)) {
        int r = args_sampling_option(&a, &o->sampling);
        if (r == 0)
            r = args_common_option(&a, &o->c, ARGS_OPT_ALL & ~(unsigned)ARGS_OPT_BATCH);
        if (r < 0)
            return ARGS_USAGE;
        if (r > 0)
            continue;
        if (args_is(&a, "-h", "--help")) {
            fputs(chat_help, stdout);
            fputs(args_load_help, stdout);
            fputs(args_sampling_help, stdout);
            return -1;
        } else if (args_is(&a, "--system", NULL)) {
            if (!(o->system = args_value(&a)))
                return ARGS_USAGE;
        } else if (args_is(&a, "--think", NULL)) {
            o->think = true;
        } else if (args_is(&a, "--no-think", NULL)) {
            o->think = false;
        } else if (args_is(&a, "--hide-thoughts", NULL)) {
            o->hide_thoughts = true;
        } else {
            return args_unknown(&a);
        }
    }
    return 0;
}

/* One message from stdin: a line, joined with the next while it ends in a backslash.
 * NULL at end of input or when Ctrl-C asked to quit. */
static char *read_message(bool tty)
{
    char *msg = NULL, *line = NULL;
    size_t msg_len = 0, cap = 0;
    for (;;) {
        if (tty) {
            fputs(msg ? "... " : "> ", stdout);
            fflush(stdout);
        }
        errno = 0;
        ssize_t n = getline(&line, &cap, stdin);
        if (n < 0 || g_quit) {
            free(line);
            if (msg && !g_quit && n < 0)
                return msg; /* end of input right after a continued line */
            free(msg);
            return NULL;
        }
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        if (memchr(line, '\0', (size_t)n)) { /* would silently cut the message short */
            fprintf(stderr, "gemma chat: the line holds a NUL byte, which a message cannot carry; "
                            "it was not sent\n");
            free(line);
            free(msg);
            return strdup("");
        }
        bool more = n > 0 && line[n - 1] == '\\';
        if (more) /* the backslash becomes the newline it escapes */
            line[n - 1] = '\n';
        char *grown = realloc(msg, msg_len + (size_t)n + 1);
        if (!grown) {
            free(line);
            free(msg);
            fprintf(stderr, "gemma chat: out of memory\n");
            return NULL;
        }
        msg = grown;
        memcpy(msg + msg_len, line, (size_t)n);
        msg_len += (size_t)n;
        msg[msg_len] = '\0';
        if (!more) {
            free(line);
            return msg;
        }
    }
}

typedef struct chat_state {
    gemma_model *model;
    gemma_session *s;
    const chat_opts *o;
    gemma_sampler_params sampling;
    gemma_chat_parser *parser; /* this answer's: thoughts apart from the answer */
    int turn;
    bool last_newline, dim, tty;
    int write_errno; /* stdout failed; EPIPE (reader gone) ends the chat quietly */
} chat_state;

static bool put_text(chat_state *c, const char *text, size_t len, bool dim)
{
    if (c->tty && dim != c->dim) /* thoughts in the terminal's faint style */
        fputs(dim ? "\x1b[2m" : "\x1b[0m", stdout);
    c->dim = c->tty && dim;
    errno = 0;
    if ((len && fwrite(text, 1, len, stdout) != len) || fflush(stdout) != 0) {
        c->write_errno = errno ? errno : EIO;
        return false;
    }
    if (len)
        c->last_newline = text[len - 1] == '\n';
    return true;
}

static int on_event(void *user, const gemma_chat_event *ev)
{
    chat_state *c = user;
    if (ev->kind == GEMMA_CHAT_REASONING && c->o->hide_thoughts)
        return 0;
    if (ev->kind == GEMMA_CHAT_TOOL_CALL) {
        char line[256];
        int n = snprintf(line, sizeof line, "[call %s %.200s]", ev->name, ev->arguments);
        return !put_text(c, line, (size_t)(n < (int)sizeof line ? n : (int)sizeof line - 1), true);
    }
    return ev->len && !put_text(c, ev->text, ev->len, ev->kind == GEMMA_CHAT_REASONING);
}

static int print_token(void *user, const char *text, size_t len, gemma_token token)
{
    (void)token;
    chat_state *c = user;
    if (g_interrupted) /* Ctrl-C just before the answer started: the session's flag was cleared */
        return 1;
    return gemma_chat_parser_push(c->parser, text, len, on_event, c) != GEMMA_OK;
}

/* Feeds one user turn and streams the answer. false = a fatal error. */
static bool answer(chat_state *c, const char *text)
{
    gemma_chat_message msgs[2];
    size_t n = 0;
    if (gemma_session_n_past(c->s) == 0 && c->o->system)
        msgs[n++] = (gemma_chat_message){.role = "system", .content = c->o->system};
    msgs[n++] = (gemma_chat_message){.role = "user", .content = text};
    g_interrupted = 0;
    g_busy = 1;
    gemma_status st = gemma_session_feed_chat(c->s, msgs, n);
    if (st == GEMMA_E_CANCELLED) {
        g_busy = 0;
        fprintf(stderr, "(cancelled while reading your message; the conversation was reset)\n");
        gemma_session_reset(c->s);
        return true;
    }
    if (st == GEMMA_E_CONTEXT_FULL) { /* nothing was evaluated: the history is intact */
        g_busy = 0;
        fprintf(stderr, "gemma chat: the message was not sent: %s\n  (the conversation is kept; "
                        "send a shorter message, /reset to start over, or restart with a larger -c)\n",
                args_session_error(c->s, st));
        return true;
    }
    if (st != GEMMA_OK) {
        g_busy = 0;
        fprintf(stderr, "gemma chat: %s\n", args_session_error(c->s, st));
        return st == GEMMA_E_CHAT; /* a message the template rejects: the user may retry */
    }
    gemma_chat_params cp;
    gemma_chat_params_init(&cp, sizeof cp);
    cp.enable_thinking = c->o->think;
    if (gemma_chat_parser_create(c->model, &cp, &c->parser, NULL) != GEMMA_OK) {
        g_busy = 0;
        fprintf(stderr, "gemma chat: out of memory\n");
        return false;
    }
    gemma_sampler_params sp = c->sampling;
    sp.seed = c->sampling.seed + (uint64_t)c->turn++; /* a new draw each turn */
    gemma_generate_params gp;
    gemma_generate_params_init(&gp, sizeof gp);
    gp.max_tokens = c->o->c.n_predict;
    gp.sampling = &sp;
    gp.on_token = print_token;
    gp.user = c;
    c->last_newline = true;
    gemma_generate_result res = {.size = sizeof res};
    if (!g_interrupted)
        st = gemma_session_generate(c->s, &gp, &res);
    if (g_interrupted)
        res.stop_reason = GEMMA_STOP_CANCELLED;
    gemma_chat_parser_finish(c->parser, on_event, c, NULL);
    gemma_chat_parser_free(c->parser);
    c->parser = NULL;
    if (c->dim)
        put_text(c, "", 0, false);
    g_busy = 0;
    if (c->write_errno) {
        if (c->write_errno != EPIPE)
            fprintf(stderr, "gemma chat: cannot write the answer: %s\n", strerror(c->write_errno));
        clearerr(stdout);
        return false;
    }
    if (!c->last_newline)
        fputc('\n', stdout);
    fflush(stdout);
    if (st != GEMMA_OK) {
        fprintf(stderr, "gemma chat: %s\n", args_session_error(c->s, st));
        return false;
    }
    if (res.stop_reason == GEMMA_STOP_CANCELLED)
        fprintf(stderr, "(stopped)\n");
    else if (res.stop_reason == GEMMA_STOP_CONTEXT_FULL)
        fprintf(stderr, "(the context is full; /reset to start over, or restart with a larger -c)\n");
    if (c->o->c.verbose) {
        gemma_session_stats stt = {.size = sizeof stt};
        if (gemma_session_get_stats(c->s, &stt) == GEMMA_OK)
            fprintf(stderr, "[%d tokens, %s; context %d/%d; prefill %.1f tok/s, decode %.1f tok/s]\n",
                    res.n_tokens, args_stop_reason(res.stop_reason), stt.n_past, stt.n_ctx,
                    stt.prompt_seconds > 0 ? (double)stt.n_prompt_tokens / stt.prompt_seconds : 0.0,
                    stt.gen_seconds > 0 ? (double)stt.n_gen_tokens / stt.gen_seconds : 0.0);
    }
    return true;
}

/* true = keep going. */
static bool command(chat_state *c, const char *line)
{
    if (!strcmp(line, "/exit") || !strcmp(line, "/quit") || !strcmp(line, "/bye"))
        return false;
    if (!strcmp(line, "/reset") || !strcmp(line, "/clear")) {
        gemma_session_reset(c->s);
        c->turn = 0;
        fprintf(stderr, "(conversation forgotten)\n");
    } else if (!strcmp(line, "/help") || !strcmp(line, "/?")) {
        fputs(chat_commands, stderr);
    } else {
        fprintf(stderr, "unknown command '%s'; /help lists the commands (start a message "
                        "with a space to send text beginning with '/')\n", line);
    }
    return true;
}

static int loop(chat_state *c)
{
    bool tty = isatty(STDIN_FILENO);
    if (tty) {
        gemma_model_info mi = {.size = sizeof mi};
        gemma_model_get_info(c->model, &mi);
        fprintf(stderr, "gemma chat with %s %s%s. /help for commands, Ctrl-C stops an answer, "
                        "Ctrl-D quits.\n", mi.architecture, mi.size_label,
                mi.has_chat_template ? "" : " (no chat template in the file: using Gemma's)");
    }
    char *line;
    while ((line = read_message(tty))) {
        bool go = true, failed = false;
        if (line[0] == '/')
            go = command(c, line);
        else if (line[strspn(line, " \t\n")] != '\0')
            failed = !(go = answer(c, line));
        free(line);
        if (!go)
            return failed && c->write_errno != EPIPE ? 1 : 0;
        if (tty)
            fputc('\n', stdout);
    }
    if (tty)
        fputc('\n', stdout);
    return 0;
}

int cmd_chat(int argc, char **argv)
{
    chat_opts o;
    int rc = parse(argc, argv, &o);
    if (rc)
        return rc < 0 ? 0 : rc;
    const char *path = args_model_path("chat", o.c.model);
    if (!path)
        return 1;
    chat_state c = {.o = &o};
    if (!(c.model = args_load_model("chat", path, &o.c)))
        return 1;
    gemma_error err = {0};
    rc = 1;
    if (!(c.s = args_create_session("chat", c.model, &o.c)))
        goto done;
    c.sampling = args_sampling_resolve(&o.sampling, c.model);
    c.tty = isatty(STDOUT_FILENO);
    gemma_chat_params cp;
    gemma_chat_params_init(&cp, sizeof cp);
    cp.enable_thinking = o.think;
    gemma_session_set_chat_params(c.s, &cp);
    gemma_sampler *probe = NULL;
    if (gemma_sampler_create(&c.sampling, gemma_vocab_size(c.model), &probe, &err) != GEMMA_OK) {
        fprintf(stderr, "gemma chat: %s\n", err.message);
        goto done;
    }
    gemma_sampler_free(probe);
    if (o.c.verbose) {
        args_print_model_info(c.model, c.s);
        args_print_sampling(&c.sampling);
    }
    /* No SA_RESTART: Ctrl-C at the prompt must interrupt the blocking read. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    g_chat_session = c.s;
    rc = loop(&c);
    g_chat_session = NULL;
    signal(SIGINT, SIG_DFL);
done:
    gemma_session_free(c.s);
    gemma_model_free(c.model);
    return rc;
}
