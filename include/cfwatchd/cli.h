/*
 * The on-call command line over the daemon's HTTP API: `cfwatchd incidents`, `cfwatchd silence
 * add|list|expire`, `cfwatchd ack KEY` (see cfwatchd(8)).
 */
#ifndef CFWATCHD_CLI_H
#define CFWATCHD_CLI_H

#include <stdbool.h>

/* True when s (argv[1]) names one of these commands. */
bool cfw_cli_is_command(const char *s);

/* Runs one command; argv[0] is the command's name. Returns the exit status (0, 1, 2). */
int cfw_cli_main(int argc, char **argv);

#endif
