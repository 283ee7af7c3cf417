/* Placeholder until the logits command lands. */
#include "cli.h"
#include <stdio.h>
int cmd_logits(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "gemma logits: not implemented yet\n");
    return 1;
}
