/* cmd_open.c - `sealpost open -k KEYFILE [FILE]`: decrypt a sodium copy. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "sodium_keys.h"
#include "sodium_seal.h"

static const char usage[] =
	"usage: sealpost open -k KEYFILE [FILE]\n\n"
	"Decrypts a message sealed to you (the sodium form): FILE (default stdin) is\n"
	"the message as saved from your mail client (.eml), or the bare\n"
	"message.sealpost attachment.  The original message is written to stdout\n"
	"only after the whole copy has been verified: a wrong key, a tampered or\n"
	"truncated copy writes nothing and exits 1.\n";

int
cmd_open(int argc, char **argv)
{
	const char *keyfile = NULL;
	const struct cli_option opts[] = {
		{ .name = "key", .letter = 'k', .required = true, .value = &keyfile },
		{ 0 },
	};
	const struct cli_command cmd = { .usage = usage, .options = opts, .max_operands = 1 };
	struct sp_sodium_keypair kp;
	char err[SP_ERRLEN];
	FILE *in = stdin;
	int first, rv;

	if ((rv = cli_parse_args(&cmd, argc, argv, NULL, &first)) != CLI_CONTINUE)
		return rv;
	if (sp_sodium_load_secret(keyfile, &kp, err, sizeof err) < 0) {
		fprintf(stderr, "sealpost: open: %s\n", err);
		return EXIT_RUNTIME;
	}
	if (first < argc && (in = fopen(argv[first], "rb")) == NULL) {
		fprintf(stderr, "sealpost: open: %s: %s\n", argv[first], strerror(errno));
		sp_sodium_keypair_wipe(&kp);
		return EXIT_RUNTIME;
	}
	rv = sp_sodium_open(in, stdout, &kp, err, sizeof err);
	sp_sodium_keypair_wipe(&kp);
	if (in != stdin)
		fclose(in);
	if (rv < 0) {
		fprintf(stderr, "sealpost: open: %s\n", err);
		return EXIT_RUNTIME;
	}
	if (fflush(stdout) != 0) {
		fprintf(stderr, "sealpost: open: writing the message: %s\n", strerror(errno));
		return EXIT_RUNTIME;
	}
	return EXIT_OK;
}
