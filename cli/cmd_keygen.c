/* cmd_keygen.c - `sealpost keygen -o FILE`: a sodium key pair. */
#include <stdio.h>

#include "cli.h"
#include "sodium_keys.h"

static const char usage[] =
	"usage: sealpost keygen -o FILE\n\n"
	"Makes an X25519 key pair for the sodium form.  The secret key goes to FILE\n"
	"(created 0600; an existing file is never overwritten).  The public line\n"
	"printed on stdout, `sealpost1:...`, is what senders put into their\n"
	"[sodium] recipients file next to your address.  Open received messages\n"
	"with `sealpost open -k FILE`.\n";

int
cmd_keygen(int argc, char **argv)
{
	const char *out = NULL;
	const struct cli_option opts[] = {
		{ .name = "output", .letter = 'o', .required = true, .value = &out },
		{ 0 },
	};
	const struct cli_command cmd = { .usage = usage, .options = opts };
	char line[SP_SODIUM_PUBLINE_LEN + 1], err[SP_ERRLEN];
	int first, rv;

	if ((rv = cli_parse_args(&cmd, argc, argv, NULL, &first)) != CLI_CONTINUE)
		return rv;
	if (sp_sodium_keygen(out, line, err, sizeof err) < 0) {
		fprintf(stderr, "sealpost: keygen: %s\n", err);
		return EXIT_RUNTIME;
	}
	printf("%s\n", line);
	return EXIT_OK;
}
