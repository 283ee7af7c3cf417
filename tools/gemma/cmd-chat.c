/* Placeholder until the chat command lands. */
#include "cli.h"
#include <stdio.h>
int cmd_chat(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "gemma chat: not implemented yet\n");
    return 1;
}
