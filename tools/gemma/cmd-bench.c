/* Placeholder until the bench command lands. */
#include "cli.h"
#include <stdio.h>
int cmd_bench(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "gemma bench: not implemented yet\n");
    return 1;
}
