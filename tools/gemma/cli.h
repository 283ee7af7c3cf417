/* Subcommands of the gemma tool. Each lives in its own cmd-*.c and uses only gemma.h. */
#ifndef GEMMA_CLI_H
#define GEMMA_CLI_H

int cmd_inspect(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_chat(int argc, char **argv);
int cmd_logits(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_serve(int argc, char **argv);

/* The default model path (~/.cache/gemma/models/gemma-3-270m-q4_k_m.gguf), or NULL when it
 * has not been fetched (`make model`). Static storage. */
const char *cli_default_model(void);

#endif
