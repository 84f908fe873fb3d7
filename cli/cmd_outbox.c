/* cmd_outbox.c - `sealpost outbox`: print the address of the outbox page. */
#include <stdio.h>
#include <stdlib.h>

#include <sodium.h>

#include "cli.h"
#include "log.h"
#include "web_outbox.h"

static const char usage[] =
	"usage: sealpost outbox [-c FILE]\n\n"
	"Prints the address of the outbox page: the recent link messages with their\n"
	"links and generated passwords.  It is served on [linkserver] outbox_listen\n"
	"(loopback only) and only at this address, which carries a secret token from\n"
	"the state directory: open it in a browser on this computer and do not share\n"
	"it.  The token is made when sealpost starts with [linkserver] outbox = yes;\n"
	"run this as the user sealpost runs as.  Exit status 0, or 1 when the outbox\n"
	"is off or has no token yet.\n";

int
cmd_outbox(int argc, char **argv)
{
	static const struct cli_command cmd = { .usage = usage, .config = true };
	char token[WEB_OUTBOX_TOKEN_HEXLEN + 1], err[SP_ERRLEN];
	const char *cfgpath = NULL;
	struct sp_config cfg;
	char *url;
	int first, rv;

	if ((rv = cli_parse_args(&cmd, argc, argv, &cfgpath, &first)) != CLI_CONTINUE)
		return rv;
	if ((rv = cli_load_config(cfgpath, false, &cfg)) != 0)
		return rv;
	rv = EXIT_RUNTIME;
	if (!cfg.linkserver.outbox) {
		fprintf(stderr, "sealpost: outbox: the outbox is off ([linkserver] outbox = no in %s)\n",
		        cfg.path);
		goto out;
	}
	if (web_outbox_token(cfg.state_dir, false, token, err, sizeof err) < 0) {
		fprintf(stderr, "sealpost: outbox: %s\n", err);
		goto out;
	}
	url = web_outbox_url(&cfg.linkserver.outbox_listen, token);
	printf("%s\n", url);
	sp_free_secret(url);
	rv = EXIT_OK;
out:
	sodium_memzero(token, sizeof token);
	sp_config_free(&cfg);
	return rv;
}
