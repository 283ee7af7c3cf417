/* gemma: run, chat with, benchmark and inspect Gemma models, fully offline. */
#include "cli.h"
#include "gemma.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} commands[] = {
    {"run", cmd_run, "generate text from a prompt"},
    {"chat", cmd_chat, "interactive multi-turn chat"},
    {"serve", cmd_serve, "serve the OpenAI API over HTTP (chat and completions, streaming)"},
    {"bench", cmd_bench, "measure prefill and decode speed"},
    {"inspect", cmd_inspect, "show what a GGUF model file contains, and validate it"},
    {"tokenize", cmd_tokenize, "show how text is split into tokens"},
    {"logits", cmd_logits, "write reference logits (GREF) for a token sequence"},
};

const char *cli_default_model(void)
{
    static char path[4096];
    const char *home = getenv("HOME");
    if (!home)
        return NULL;
    snprintf(path, sizeof path, "%s/.cache/gemma/models/gemma-3-270m-q4_k_m.gguf", home);
    return access(path, R_OK) == 0 ? path : NULL;
}

/* Exit status when the mapped model file was truncated or replaced under us (EX_IOERR). */
#define CLI_EXIT_MODEL_GONE 74

static const char *g_cmd = "";
static atomic_flag g_sigbus_seen = ATOMIC_FLAG_INIT;

/* A mapped model file that shrinks under a running process turns the next read of a lost
 * page into SIGBUS (BUS_ADRERR). The library cannot recover from it, so the tool ends with
 * a clear message and a distinct status instead of "Bus error". Async-signal-safe only. */
static void on_sigbus(int sig, siginfo_t *si, void *ctx)
{
    (void)ctx;
    if (si->si_code == BUS_ADRERR) {
        if (atomic_flag_test_and_set(&g_sigbus_seen)) /* several threads fault at once: one speaks */
            for (;;)
                pause();
        static const char what[] = ": E_IO: the model file was truncated or replaced while in use (its "
                                   "mapped pages are gone); run again, or pass --no-mmap to read the model "
                                   "into memory\n";
        char msg[sizeof what + 64] = "gemma ";
        strncat(msg, g_cmd, 32);
        strcat(msg, what);
        (void)!write(STDERR_FILENO, msg, strlen(msg));
        _exit(CLI_EXIT_MODEL_GONE);
    }
    signal(sig, SIG_DFL); /* any other bus error is a bug: crash as usual */
    raise(sig);
}

static void catch_sigbus(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGBUS, &sa, NULL);
}

/* Output that could not be written is an error (and not a silent empty file), except when
 * the reader went away (EPIPE: `gemma ... | head`). */
static int finish_stdout(const char *cmd, int rc)
{
    errno = 0;
    if (fflush(stdout) == 0 && !ferror(stdout))
        return rc;
    if (errno == EPIPE)
        return rc;
    fprintf(stderr, "gemma %s: cannot write the output: %s\n", cmd, errno ? strerror(errno) : "write error");
    return rc ? rc : 1;
}

static void usage(FILE *f)
{
    fprintf(f, "gemma %s - offline Gemma inference from GGUF files\n\n"
               "usage: gemma COMMAND [options]\n\ncommands:\n", gemma_version());
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\n'gemma COMMAND --help' explains each command.\n"
               "Without -m, commands use the default model (fetch it with 'make model').\n");
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("gemma %s\n", gemma_version());
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) {
            g_cmd = commands[i].name;
            catch_sigbus();
            return finish_stdout(g_cmd, commands[i].fn(argc - 1, argv + 1));
        }
    fprintf(stderr, "gemma: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
