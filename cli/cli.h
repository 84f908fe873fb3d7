/* cli.h - the subcommands of the sealpost binary. */
#ifndef SP_CLI_H
#define SP_CLI_H

#include <stdbool.h>

#include "config.h"

/* Exit codes (SPEC "Commands"). */
#define EXIT_OK 0
#define EXIT_RUNTIME 1
#define EXIT_USAGE 2

int cmd_run(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_passwd(int argc, char **argv);
int cmd_keygen(int argc, char **argv);
int cmd_open(int argc, char **argv);
int cmd_queue(int argc, char **argv);
int cmd_linkserver(int argc, char **argv);
int cmd_revoke(int argc, char **argv);
int cmd_outbox(int argc, char **argv);

/* Find and load the config for a subcommand; prints the error and returns
 * EXIT_USAGE on failure, else 0. */
int cli_load_config(const char *explicit_path, bool need_upstream, struct sp_config *cfg);
/* Read a secret from the terminal without echo, or a line from stdin. */
char *cli_read_secret(const char *prompt);

#endif
