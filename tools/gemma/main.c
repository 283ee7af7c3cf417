/* gemma: run, chat with, benchmark and inspect Gemma models, fully offline. */
#include "cli.h"
#include "gemma.h"

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
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "gemma: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
