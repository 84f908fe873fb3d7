/* cmd_linkserver.c - `sealpost linkserver`: the link viewer alone, for a public host. */
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "link_store.h"
#include "log.h"
#include "web_outbox.h"
#include "web_server.h"

static void
help(FILE *f)
{
	fprintf(f, "usage: sealpost linkserver [-c FILE]\n\n"
	           "Runs only the link viewer: [linkserver] listen serves the links of the store\n"
	           "[link] store, and, when [link] upload_token_file is set, accepts encrypted\n"
	           "uploads from a proxy elsewhere at POST /api/v1/links.  Usually behind a TLS\n"
	           "reverse proxy (docs/viewer.md).  Stops on SIGINT or SIGTERM.\n");
}

int
cmd_linkserver(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct sp_config cfg;
	struct link_store *store = NULL;
	struct web_server *ws = NULL;
	const char *cfgpath = NULL;
	char err[SP_ERRLEN];
	sigset_t sigs;
	int c, sig = 0, rv;

	optind = 1;
	while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			cfgpath = optarg;
			break;
		case 'h':
			help(stdout);
			return EXIT_OK;
		default:
			help(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		help(stderr);
		return EXIT_USAGE;
	}
	if ((rv = cli_load_config(cfgpath, false, &cfg)) != 0)
		return rv;
	sp_log_init(cfg.log.level);
	rv = EXIT_RUNTIME;
	/* Block the stop signals before any thread starts, so every thread inherits
	 * the mask and only sigwait() below sees them. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	if (link_store_open(cfg.link.store, &store, err, sizeof err) != LINK_STORE_OK) {
		fprintf(stderr, "sealpost: %s\n", err);
		goto out;
	}
	if (web_server_start(&cfg, store, &ws, err, sizeof err) < 0) {
		fprintf(stderr, "sealpost: %s\n", err);
		goto out;
	}
	for (;;) {
		if (sigwait(&sigs, &sig) != 0)
			break;
		if (sig != SIGHUP)
			break;
		sp_log_info("viewer: SIGHUP ignored (restart to reload the config)");
	}
	sp_log_info("viewer: stopping (signal %d)", sig);
	rv = EXIT_OK;
out:
	web_server_stop(ws);
	link_store_close(store);
	web_outbox_clear();
	sp_config_free(&cfg);
	return rv;
}
