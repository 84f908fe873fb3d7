/* main.c - `sealpost COMMAND ...` */
#include <locale.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "cli.h"
#include "log.h"
#include "mime_message.h"
#include "pgp.h"
#include "sealpost-config.h"

struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
};

static const struct command commands[] = {
	{ "run", cmd_run, "run the proxy (and the embedded link viewer)" },
	{ "check", cmd_check, "validate the config, test the upstream, show what recipients would get" },
	{ "keygen", cmd_keygen, "make a sodium key pair; print the public line" },
	{ "open", cmd_open, "decrypt a sodium message to the original MIME message" },
	{ "queue", cmd_queue, "list, flush or delete queued copies" },
	{ "linkserver", cmd_linkserver, "run only the link viewer (for a public host)" },
	{ "revoke", cmd_revoke, "delete a link message at once" },
	{ "outbox", cmd_outbox, "print the address (with its token) of the outbox page" },
	{ "keys", cmd_keys, "list, refresh or forget the keys sealpost discovered (WKD, keyserver)" },
	{ "passwd", cmd_passwd, "hash a password for [proxy] users_file" },
};

static void
usage(FILE *f)
{
	size_t i;

	fprintf(f, "usage: sealpost [--version] [--help] COMMAND [ARGS]\n\n"
	           "sealpost is an end-to-end-encrypting SMTP submission proxy: point your mail\n"
	           "client at it, and every message is encrypted per recipient before it is\n"
	           "relayed over verified TLS to your provider.\n\ncommands:\n");
	for (i = 0; i < sizeof commands / sizeof commands[0]; i++)
		fprintf(f, "  %-11s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\n`sealpost COMMAND --help` describes each; see sealpost(8), sealpost.conf(5).\n");
}

int
main(int argc, char **argv)
{
	size_t i;

	/* A fixed mmap threshold: big buffers (messages) go back to the system
	 * when freed instead of raising glibc's dynamic threshold and staying in
	 * the heap - peak RSS stays near one message per session, and freed
	 * plaintext does not linger in the process. */
	mallopt(M_MMAP_THRESHOLD, 256 * 1024);
	setlocale(LC_CTYPE, "C.UTF-8");
	signal(SIGPIPE, SIG_IGN);
	sp_log_init(SP_LOG_INFO);
	if (sodium_init() < 0) {
		fprintf(stderr, "sealpost: libsodium failed to initialise\n");
		return EXIT_RUNTIME;
	}
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return EXIT_OK;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("sealpost %s\n", SEALPOST_VERSION);
		return EXIT_OK;
	}
	sp_mime_global_init();
	{
		char err[SP_ERRLEN];
		if (sp_pgp_global_init(err, sizeof err) < 0) {
			fprintf(stderr, "sealpost: %s\n", err);
			return EXIT_RUNTIME;
		}
	}
	for (i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "sealpost: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return EXIT_USAGE;
}
