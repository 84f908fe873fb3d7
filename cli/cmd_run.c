/* cmd_run.c - `sealpost run`: the proxy. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "discovery.h"
#include "log.h"
#include "policy.h"
#include "server.h"
#include "sodium_keys.h"

static struct server *running;

static void
on_signal(int sig)
{
	if (sig == SIGHUP) {
		/* Nothing is reloaded: say so, and keep running. */
		static const char msg[] = "sealpost: SIGHUP ignored (restart to reload the config)\n";
		ssize_t r = write(STDERR_FILENO, msg, sizeof msg - 1);
		(void)r;
		return;
	}
	if (running)
		server_stop(running);
}

static const char usage[] =
	"usage: sealpost run [-c FILE] [-v]\n\n"
	"Runs the proxy: mail clients submit on [proxy] listen, each message is\n"
	"encrypted per recipient and relayed to [upstream].  Stops on SIGTERM/SIGINT.\n\n"
	"  -c, --config FILE  config file (default: $XDG_CONFIG_HOME/sealpost/sealpost.conf,\n"
	"                     then /etc/sealpost/sealpost.conf)\n"
	"  -v, --verbose      log the SMTP transcript (AUTH payloads and message\n"
	"                     bodies are never logged)\n";

int
cmd_run(int argc, char **argv)
{
	bool verbose = false;
	const struct cli_option opts[] = {
		{ .name = "verbose", .letter = 'v', .flag = &verbose },
		{ 0 },
	};
	const struct cli_command cmd = { .usage = usage, .config = true, .options = opts };
	struct sp_config cfg;
	struct sp_discovery *disc = NULL;
	struct server srv;
	struct sigaction sa;
	const char *cfgpath = NULL;
	char err[SP_ERRLEN];
	int first, rv;

	if ((rv = cli_parse_args(&cmd, argc, argv, &cfgpath, &first)) != CLI_CONTINUE)
		return rv;
	if ((rv = cli_load_config(cfgpath, true, &cfg)) != 0)
		return rv;
	sp_log_init(verbose ? SP_LOG_DEBUG : cfg.log.level);
	sp_log_info("sealpost starting with %s", cfg.path);
	{
		/* A malformed recipients file is a config error, found now. */
		struct sp_sodium_recipients *r = NULL;
		if (sp_policy_load_sodium(&cfg, &r, err, sizeof err) < 0) {
			fprintf(stderr, "sealpost: %s\n", err);
			sp_config_free(&cfg);
			return EXIT_USAGE;
		}
		if (r)
			sp_log_info("%zu sodium recipient(s) in %s", sp_sodium_recipients_count(r),
			            cfg.sodium.recipients);
		sp_sodium_recipients_free(r);
	}
	if (server_init(&srv, &cfg, err, sizeof err) < 0) {
		sp_log_error("%s", err);
		server_free(&srv);
		sp_config_free(&cfg);
		return EXIT_RUNTIME;
	}
	if (server_drop_privileges(&cfg, err, sizeof err) < 0) {
		sp_log_error("%s", err);
		server_free(&srv);
		sp_config_free(&cfg);
		return EXIT_RUNTIME;
	}
	/* After the privilege drop: its files belong to the service's user. */
	if (cfg.discovery.wkd || cfg.discovery.keyserver[0]) {
		if ((disc = sp_discovery_open(&cfg, err, sizeof err)) == NULL) {
			sp_log_error("key discovery: %s", err);
			server_free(&srv);
			sp_config_free(&cfg);
			return EXIT_RUNTIME;
		}
		sp_policy_set_discovery(sp_discovery_hook(disc));
		if (sp_discovery_start_refresher(disc, err, sizeof err) < 0) {
			sp_log_error("key discovery: %s", err);
			sp_policy_set_discovery(NULL);
			sp_discovery_close(disc);
			server_free(&srv);
			sp_config_free(&cfg);
			return EXIT_RUNTIME;
		}
	}
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	running = &srv;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	rv = server_run(&srv);
	running = NULL;
	sp_discovery_stop_refresher(disc);
	if (rv != 0)
		sp_log_warn("sessions still running after %ds; exiting anyway (their clients "
		            "got no 250 and will retry)", SERVER_SHUTDOWN_GRACE_S);
	sp_log_info("stopped");
	server_free(&srv);
	if (rv == 0) {
		sp_policy_set_discovery(NULL);
		sp_discovery_close(disc);
		sp_config_free(&cfg);
	}
	return EXIT_OK;
}
