/* cli_util.c - helpers shared by the subcommands. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <sodium.h>

#include "cli.h"

/* The most options one subcommand has besides -c and -h (check: --rcpt and
 * --json); a bound for the getopt tables built below. */
#define CLI_MAX_OPTIONS 4

int
cli_usage_error(const struct cli_command *cmd)
{
	fputs(cmd->usage, stderr);
	return EXIT_USAGE;
}

static const struct cli_option *
find_option(const struct cli_command *cmd, int letter)
{
	const struct cli_option *o;

	for (o = cmd->options; o && o->name; o++)
		if (o->letter == letter)
			return o;
	return NULL;
}

/* The getopt_long() tables for cmd: -c/--config first (when the command
 * reads a config), then the command's own options, then -h/--help. */
static void
build_tables(const struct cli_command *cmd, struct option *longopts, char *shortopts)
{
	const struct cli_option *o;
	size_t n = 0, k = 0, own = 0;

	if (cmd->config) {
		longopts[n++] = (struct option){ "config", required_argument, NULL, 'c' };
		shortopts[k++] = 'c';
		shortopts[k++] = ':';
	}
	for (o = cmd->options; o && o->name; o++) {
		bool arg = o->flag == NULL;
		if (++own > CLI_MAX_OPTIONS)
			abort(); /* a broken table, not input */
		longopts[n++] = (struct option){ o->name, arg ? required_argument : no_argument, NULL, o->letter };
		shortopts[k++] = o->letter;
		if (arg)
			shortopts[k++] = ':';
	}
	longopts[n++] = (struct option){ "help", no_argument, NULL, 'h' };
	longopts[n] = (struct option){ NULL, 0, NULL, 0 };
	shortopts[k++] = 'h';
	shortopts[k] = '\0';
}

int
cli_parse_args(const struct cli_command *cmd, int argc, char **argv, const char **config_path,
               int *first)
{
	struct option longopts[CLI_MAX_OPTIONS + 3];
	char shortopts[2 * (CLI_MAX_OPTIONS + 2) + 1];
	const struct cli_option *o;
	int c, operands;

	build_tables(cmd, longopts, shortopts);
	if (config_path)
		*config_path = NULL;
	/* A fresh scan: glibc's getopt_long re-initialises only at optind 0
	 * (optind 1 would resume a scan a previous parse left in the middle of
	 * an argument, e.g. after -h). */
	optind = 0;
	while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
		if (c == 'h') {
			fputs(cmd->usage, stdout);
			return EXIT_OK;
		}
		if (c == 'c' && cmd->config) {
			*config_path = optarg;
			continue;
		}
		if ((o = find_option(cmd, c)) == NULL)
			return cli_usage_error(cmd);
		if (o->flag)
			*o->flag = true;
		else if (o->value)
			*o->value = optarg;
		else
			o->list[(*o->n_list)++] = optarg;
	}
	for (o = cmd->options; o && o->name; o++)
		if (o->required && o->value && *o->value == NULL)
			return cli_usage_error(cmd);
	operands = argc - optind;
	if (operands < cmd->min_operands || (cmd->max_operands != CLI_ANY && operands > cmd->max_operands))
		return cli_usage_error(cmd);
	*first = optind;
	return CLI_CONTINUE;
}

int
cli_load_config(const char *explicit_path, bool need_upstream, struct sp_config *cfg)
{
	char err[SP_ERRLEN];
	char *path = sp_config_find(explicit_path, err, sizeof err);

	if (path == NULL) {
		fprintf(stderr, "sealpost: %s\n", err);
		return EXIT_USAGE;
	}
	if (sp_config_load(cfg, path, need_upstream, err, sizeof err) < 0) {
		fprintf(stderr, "sealpost: %s\n", err);
		free(path);
		return EXIT_USAGE;
	}
	free(path);
	return 0;
}

char *
cli_read_secret(const char *prompt, char *err, size_t errsz)
{
	struct termios old, noecho;
	bool tty = isatty(STDIN_FILENO);
	char *buf = sodium_malloc(1024);
	size_t n = 0;
	int c;

	if (buf == NULL) {
		sp_seterr(err, errsz, "cannot allocate protected memory for the secret");
		return NULL;
	}
	if (tty) {
		fprintf(stderr, "%s", prompt);
		tcgetattr(STDIN_FILENO, &old);
		noecho = old;
		noecho.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &noecho);
	}
	while ((c = getchar()) != EOF && c != '\n') {
		if (n + 1 >= 1024) {
			/* Never shorten a secret silently. */
			if (tty)
				tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
			sp_seterr(err, errsz, "longer than 1023 bytes");
			sodium_free(buf);
			return NULL;
		}
		buf[n++] = (char)c;
	}
	buf[n] = '\0';
	if (n && buf[n - 1] == '\r')
		buf[--n] = '\0';
	if (tty) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
		fprintf(stderr, "\n");
	}
	return buf;
}
