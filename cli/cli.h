/* cli.h - the subcommands of the sealpost binary. */
#ifndef SP_CLI_H
#define SP_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "config.h"

/* Exit codes (sealpost(8) "EXIT STATUS", man/sealpost.8.scd). */
#define EXIT_OK 0
#define EXIT_RUNTIME 1
#define EXIT_USAGE 2

/* The subcommands: each is the main of `sealpost <name>`.  It prints its own
 * errors on stderr and returns the exit status: EXIT_OK, EXIT_RUNTIME or
 * EXIT_USAGE (its man page says which failure is which). */
int cmd_run(int argc, char **argv);
int cmd_check(int argc, char **argv);
/* `check --viewer`: base is the links' base URL (check_viewer.c).  Returns
 * EXIT_OK when the viewer serves this build's page and scripts, EXIT_RUNTIME
 * when one differs, is missing or the viewer is unreachable, EXIT_USAGE for a
 * bad URL. */
int check_viewer(const char *base, const char *ca_file);
int cmd_passwd(int argc, char **argv);
int cmd_keygen(int argc, char **argv);
int cmd_open(int argc, char **argv);
int cmd_queue(int argc, char **argv);
int cmd_linkserver(int argc, char **argv);
int cmd_revoke(int argc, char **argv);
int cmd_outbox(int argc, char **argv);
int cmd_keys(int argc, char **argv);

/* A subcommand's own options, besides -c/--config and -h/--help.  Exactly
 * one of the targets is set: `flag` (no argument; set to true), `value` (an
 * argument; the last one given wins) or `list` (an argument, repeatable;
 * appended, the caller sizes the array for argc entries). */
struct cli_option {
	const char *name;       /* --name */
	char letter;            /* -letter */
	bool required;          /* missing: usage error */
	bool *flag;
	const char **value;
	const char **list;
	size_t *n_list;
};

/* A subcommand's command line: its usage text (printed as is for --help, on
 * stdout, and for a usage error, on stderr), whether it reads a config
 * (-c/--config FILE), its options (ended by an entry with name NULL; NULL
 * when it has none) and how many operands it takes. */
struct cli_command {
	const char *usage;
	bool config;
	const struct cli_option *options;
	int min_operands;
	int max_operands;       /* CLI_ANY: no upper bound */
};

#define CLI_ANY (-1)
/* cli_parse_args(): the command line is good, go on. */
#define CLI_CONTINUE (-1)

/* Parse a subcommand's argv (argv[0] is the subcommand; options may come
 * anywhere after it).  Sets *config_path (when cmd->config; NULL unless -c
 * was given) and the option targets, and *first to the index of the first
 * operand.  Returns CLI_CONTINUE, or the exit status the subcommand returns
 * now: EXIT_OK after --help (usage on stdout), EXIT_USAGE after a bad option,
 * a missing required option or a wrong number of operands (usage on stderr). */
int cli_parse_args(const struct cli_command *cmd, int argc, char **argv, const char **config_path,
                   int *first);
/* Print the usage on stderr; returns EXIT_USAGE. */
int cli_usage_error(const struct cli_command *cmd);

/* Find and load the config for a subcommand.  Returns 0 (EXIT_OK) with cfg
 * loaded, or EXIT_USAGE with the error printed on stderr. */
int cli_load_config(const char *explicit_path, bool need_upstream, struct sp_config *cfg);
/* Read a secret from the terminal without echo, or a line from stdin.
 * Returns it (sodium_malloc'd: sodium_free()), or NULL with err set when it
 * is longer than 1023 bytes or sodium_malloc fails. */
char *cli_read_secret(const char *prompt, char *err, size_t errsz);

#endif
