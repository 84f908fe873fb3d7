/* cmd_passwd.c - `sealpost passwd [USER]`: hash a password for users_file. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "cli.h"
#include "smtp_auth.h"

static void
help(FILE *f)
{
	fprintf(f, "usage: sealpost passwd [USER]\n\n"
	           "Reads a password (from the terminal without echo, or the first line of\n"
	           "stdin) and prints its Argon2id hash for [proxy] users_file; with USER, prints\n"
	           "the whole line USER:$argon2id$...\n");
}

int
cmd_passwd(int argc, char **argv)
{
	static const struct option opts[] = { { "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 } };
	char hash[crypto_pwhash_STRBYTES], err[SP_ERRLEN];
	char *pass;
	int c;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'h') {
			help(stdout);
			return EXIT_OK;
		}
		help(stderr);
		return EXIT_USAGE;
	}
	if (argc - optind > 1) {
		help(stderr);
		return EXIT_USAGE;
	}
	if (optind < argc && (strchr(argv[optind], ':') || argv[optind][0] == '\0')) {
		fprintf(stderr, "sealpost: passwd: a user name cannot contain ':'\n");
		return EXIT_USAGE;
	}
	pass = cli_read_secret("Password: ");
	if (pass == NULL || pass[0] == '\0') {
		fprintf(stderr, "sealpost: passwd: empty password\n");
		if (pass)
			sodium_free(pass);
		return EXIT_USAGE;
	}
	if (sp_users_hash(pass, hash, sizeof hash, err, sizeof err) < 0) {
		sodium_free(pass);
		fprintf(stderr, "sealpost: passwd: %s\n", err);
		return EXIT_RUNTIME;
	}
	sodium_free(pass);
	if (optind < argc)
		printf("%s:%s\n", argv[optind], hash);
	else
		printf("%s\n", hash);
	return EXIT_OK;
}
