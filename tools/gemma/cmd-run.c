/* Placeholder until the run command lands. */
#include "cli.h"
#include <stdio.h>
int cmd_run(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "gemma run: not implemented yet\n");
    return 1;
}
