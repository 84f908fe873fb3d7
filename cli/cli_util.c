/* cli_util.c - helpers shared by the subcommands. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <sodium.h>

#include "cli.h"

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
cli_read_secret(const char *prompt)
{
	struct termios old, noecho;
	bool tty = isatty(STDIN_FILENO);
	char *buf = sodium_malloc(1024);
	size_t n = 0;
	int c;

	if (buf == NULL)
		return NULL;
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
			fprintf(stderr, "sealpost: longer than 1023 bytes\n");
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
