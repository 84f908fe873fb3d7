/* cmd_keygen.c - `sealpost keygen -o FILE`: a sodium key pair. */
#include <getopt.h>
#include <stdio.h>

#include "cli.h"
#include "sodium_keys.h"

static void
help(FILE *f)
{
	fprintf(f, "usage: sealpost keygen -o FILE\n\n"
	           "Makes an X25519 key pair for the sodium form.  The secret key goes to FILE\n"
	           "(created 0600; an existing file is never overwritten).  The public line\n"
	           "printed on stdout, `sealpost1:...`, is what senders put into their\n"
	           "[sodium] recipients file next to your address.  Open received messages\n"
	           "with `sealpost open -k FILE`.\n");
}

int
cmd_keygen(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char line[SP_SODIUM_PUBLINE_LEN + 1], err[SP_ERRLEN];
	const char *out = NULL;
	int c;

	while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
		switch (c) {
		case 'o':
			out = optarg;
			break;
		case 'h':
			help(stdout);
			return EXIT_OK;
		default:
			help(stderr);
			return EXIT_USAGE;
		}
	}
	if (out == NULL || optind != argc) {
		help(stderr);
		return EXIT_USAGE;
	}
	if (sp_sodium_keygen(out, line, err, sizeof err) < 0) {
		fprintf(stderr, "sealpost: keygen: %s\n", err);
		return EXIT_RUNTIME;
	}
	printf("%s\n", line);
	return EXIT_OK;
}
