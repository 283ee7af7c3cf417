/* gemma tokenize: shows how text is split into tokens (public API only). */
#include "args.h"
#include "cli.h"
#include "gemma.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char help[] =
    "usage: gemma tokenize [options] TEXT\n"
    "       gemma tokenize [options] --file FILE\n"
    "\n"
    "Splits text into the model's tokens, exactly as generation would see it, and prints\n"
    "one token per line: its id and its text in quotes. In the text, a space is shown as\n"
    "a space (the vocabulary stores it as U+2581), control tokens such as <start_of_turn>\n"
    "are shown by name, and bytes that are not printable UTF-8 are escaped (\\n, \\t,\n"
    "\\xHH). A byte token (<0xE4> ...) is a byte-fallback piece of a character that has\n"
    "no token of its own.\n"
    "\n"
    "options:\n"
    "  -m, --model FILE  the model whose vocabulary to use (default: the default model)\n"
    "  -f, --file FILE   read the text from FILE ('-' = stdin) instead of the argument;\n"
    "                    the bytes are used as they are (no trailing newline is removed)\n"
    "  --ids             print only the ids, comma-separated, on one line\n"
    "  --no-bos          do not add the BOS token the model normally starts with\n"
    "  --no-special      treat control-token text like \"<start_of_turn>\" as plain text\n"
    "                    (user-defined tokens such as runs of spaces still apply)\n"
    "  --time            print the token count and the time taken to stderr\n"
    "  -h, --help        this text\n"
    "\n"
    "Output matches llama.cpp's 'llama-tokenize' (which also adds BOS and parses special\n"
    "tokens by default). Invalid UTF-8 is accepted and tokenized byte by byte.\n"
    "\n"
    "examples:\n"
    "  gemma tokenize 'Hello world'\n"
    "  gemma tokenize --ids --no-bos '<start_of_turn>user'\n"
    "  gemma tokenize --file book.txt --ids --time > /dev/null\n";

typedef struct opts {
    const char *model, *file, *text;
    bool ids, no_bos, no_special, time;
} opts;

static int parse(opts *o, int argc, char **argv)
{
    args a;
    args_init(&a, "tokenize", argc, argv);
    const char *arg;
    while ((arg = args_next(&a))) {
        if (args_is(&a, "-h", "--help")) {
            fputs(help, stdout);
            return -1;
        } else if (args_is(&a, "-m", "--model")) {
            if (!(o->model = args_value(&a)))
                return ARGS_USAGE;
        } else if (args_is(&a, "-f", "--file")) {
            if (!(o->file = args_value(&a)))
                return ARGS_USAGE;
        } else if (args_is(&a, "--ids", NULL)) {
            o->ids = true;
        } else if (args_is(&a, "--no-bos", NULL)) {
            o->no_bos = true;
        } else if (args_is(&a, "--no-special", NULL)) {
            o->no_special = true;
        } else if (args_is(&a, "--time", NULL)) {
            o->time = true;
        } else if (arg[0] == '-' && arg[1]) {
            return args_unknown(&a);
        } else if (!o->text) {
            o->text = arg;
        } else {
            return args_error("tokenize", "more than one TEXT given (quote text with spaces)");
        }
    }
    if (!o->text == !o->file)
        return args_error("tokenize", o->file ? "give either TEXT or --file, not both" : "no TEXT given");
    return 0;
}

/* The piece in single quotes, escaping what would not print as itself. */
static void print_piece(const char *s, size_t n)
{
    putchar('\'');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        size_t k = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
        bool ok = k && i + k <= n;
        for (size_t j = 1; ok && j < k; j++)
            ok = ((unsigned char)s[i + j] & 0xc0) == 0x80;
        if (c == '\n')
            fputs("\\n", stdout);
        else if (c == '\t')
            fputs("\\t", stdout);
        else if (c == '\r')
            fputs("\\r", stdout);
        else if (c == '\\' || c == '\'')
            printf("\\%c", c);
        else if (!ok || c < 0x20 || c == 0x7f)
            printf("\\x%02X", c);
        else {
            fwrite(s + i, 1, k, stdout);
            i += k - 1;
        }
    }
    putchar('\'');
}

static int run(const opts *o, gemma_model *m, const char *text, size_t len)
{
    size_t cap = len + 16, n = 0;
    gemma_token *ids = malloc(cap * sizeof *ids);
    if (!ids) {
        fprintf(stderr, "gemma tokenize: out of memory\n");
        return 1;
    }
    double t0 = (double)clock() / CLOCKS_PER_SEC;
    struct timespec w0, w1;
    clock_gettime(CLOCK_MONOTONIC, &w0);
    gemma_status st = gemma_tokenize(m, text, len, !o->no_bos, !o->no_special, ids, cap, &n);
    clock_gettime(CLOCK_MONOTONIC, &w1);
    double cpu = (double)clock() / CLOCKS_PER_SEC - t0;
    if (st) {
        fprintf(stderr, "gemma tokenize: %s\n", gemma_strerror(st));
        free(ids);
        return 1;
    }
    if (o->time)
        fprintf(stderr, "%zu bytes -> %zu tokens in %.4f s (%.4f s CPU)\n", len, n,
                (double)(w1.tv_sec - w0.tv_sec) + 1e-9 * (double)(w1.tv_nsec - w0.tv_nsec), cpu);
    char buf[256];
    for (size_t i = 0; i < n; i++) {
        if (o->ids) {
            printf("%s%d", i ? "," : "", ids[i]);
            continue;
        }
        size_t pl = 0;
        st = gemma_token_to_piece(m, ids[i], true, buf, sizeof buf, &pl);
        char *p = buf;
        if (st == GEMMA_E_BUFFER_TOO_SMALL && (p = malloc(pl)) != NULL)
            st = gemma_token_to_piece(m, ids[i], true, p, pl, &pl);
        printf("%6d ", ids[i]);
        if (st == GEMMA_OK)
            print_piece(p, pl);
        putchar('\n');
        if (p != buf)
            free(p);
    }
    if (o->ids)
        putchar('\n');
    free(ids);
    return 0;
}

int cmd_tokenize(int argc, char **argv)
{
    opts o = {0};
    int rc = parse(&o, argc, argv);
    if (rc)
        return rc < 0 ? 0 : rc;
    const char *path = args_model_path("tokenize", o.model);
    if (!path)
        return 1;
    size_t len = 0;
    char *file_text = NULL;
    if (o.file && !(file_text = args_read_file("tokenize", o.file, &len)))
        return 1;
    const char *text = file_text ? file_text : o.text;
    if (!file_text)
        len = strlen(text);
    gemma_model *m = args_load_model("tokenize", path, NULL);
    if (!m) {
        free(file_text);
        return 1;
    }
    rc = run(&o, m, text, len);
    gemma_model_free(m);
    free(file_text);
    return rc;
}
