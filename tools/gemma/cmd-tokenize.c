/* Placeholder until the tokenize command lands. */
#include "cli.h"
#include <stdio.h>
int cmd_tokenize(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "gemma tokenize: not implemented yet\n");
    return 1;
}
