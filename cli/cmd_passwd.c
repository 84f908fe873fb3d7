/* cmd_passwd.c - `sealpost passwd [USER]`: hash a password for users_file. */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "cli.h"
#include "smtp_auth.h"

static const char usage[] =
	"usage: sealpost passwd [USER]\n\n"
	"Reads a password (from the terminal without echo, or the first line of\n"
	"stdin) and prints its Argon2id hash for [proxy] users_file; with USER, prints\n"
	"the whole line USER:$argon2id$...\n";

int
cmd_passwd(int argc, char **argv)
{
	static const struct cli_command cmd = { .usage = usage, .max_operands = 1 };
	char hash[crypto_pwhash_STRBYTES], err[SP_ERRLEN];
	char *pass;
	int first, rv;

	if ((rv = cli_parse_args(&cmd, argc, argv, NULL, &first)) != CLI_CONTINUE)
		return rv;
	if (first < argc && (strchr(argv[first], ':') || argv[first][0] == '\0')) {
		fprintf(stderr, "sealpost: passwd: a user name cannot contain ':'\n");
		return EXIT_USAGE;
	}
	if ((pass = cli_read_secret("Password: ", err, sizeof err)) == NULL) {
		fprintf(stderr, "sealpost: passwd: %s\n", err);
		return EXIT_USAGE;
	}
	if (pass[0] == '\0') {
		fprintf(stderr, "sealpost: passwd: empty password\n");
		sodium_free(pass);
		return EXIT_USAGE;
	}
	if (sp_users_hash(pass, hash, sizeof hash, err, sizeof err) < 0) {
		sodium_free(pass);
		fprintf(stderr, "sealpost: passwd: %s\n", err);
		return EXIT_RUNTIME;
	}
	sodium_free(pass);
	if (first < argc)
		printf("%s:%s\n", argv[first], hash);
	else
		printf("%s\n", hash);
	return EXIT_OK;
}
