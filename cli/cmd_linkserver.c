/* cmd_linkserver.c - `sealpost linkserver`: the link viewer alone, for a public host. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "link_store.h"
#include "log.h"
#include "web_outbox.h"
#include "web_server.h"

static const char usage[] =
	"usage: sealpost linkserver [-c FILE]\n\n"
	"Runs only the link viewer: [linkserver] listen serves the links of the store\n"
	"[link] store, and, when [link] upload_token_file is set, accepts encrypted\n"
	"uploads from a proxy elsewhere at POST /api/v1/links.  Usually behind a TLS\n"
	"reverse proxy (docs/viewer.md).  Stops on SIGINT or SIGTERM.\n";

int
cmd_linkserver(int argc, char **argv)
{
	static const struct cli_command cmd = { .usage = usage, .config = true };
	struct sp_config cfg;
	struct link_store *store = NULL;
	struct web_server *ws = NULL;
	const char *cfgpath = NULL;
	char err[SP_ERRLEN];
	sigset_t sigs;
	int first, sig = 0, rv;

	if ((rv = cli_parse_args(&cmd, argc, argv, &cfgpath, &first)) != CLI_CONTINUE)
		return rv;
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
