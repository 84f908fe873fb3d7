/* cmd_open.c - `sealpost open -k KEYFILE [FILE]`: decrypt a sodium copy. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "sodium_keys.h"
#include "sodium_seal.h"

static void
help(FILE *f)
{
	fprintf(f, "usage: sealpost open -k KEYFILE [FILE]\n\n"
	           "Decrypts a message sealed to you (the sodium form): FILE (default stdin) is\n"
	           "the message as saved from your mail client (.eml), or the bare\n"
	           "message.sealpost attachment.  The original message is written to stdout\n"
	           "only after the whole copy has been verified: a wrong key, a tampered or\n"
	           "truncated copy writes nothing and exits 1.\n");
}

int
cmd_open(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "key", required_argument, NULL, 'k' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct sp_sodium_keypair kp;
	const char *keyfile = NULL;
	char err[SP_ERRLEN];
	FILE *in = stdin;
	int c, rv;

	while ((c = getopt_long(argc, argv, "k:h", opts, NULL)) != -1) {
		switch (c) {
		case 'k':
			keyfile = optarg;
			break;
		case 'h':
			help(stdout);
			return EXIT_OK;
		default:
			help(stderr);
			return EXIT_USAGE;
		}
	}
	if (keyfile == NULL || argc - optind > 1) {
		help(stderr);
		return EXIT_USAGE;
	}
	if (sp_sodium_load_secret(keyfile, &kp, err, sizeof err) < 0) {
		fprintf(stderr, "sealpost: open: %s\n", err);
		return EXIT_RUNTIME;
	}
	if (optind < argc && (in = fopen(argv[optind], "rb")) == NULL) {
		fprintf(stderr, "sealpost: open: %s: %s\n", argv[optind], strerror(errno));
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
