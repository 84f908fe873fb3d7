/* cmd_check.c - `sealpost check`: config, upstream, and what each recipient gets. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "log.h"
#include "policy.h"
#include "relay.h"
#include "smtp_client.h"
#include "sodium_keys.h"

static void
help(FILE *f)
{
	fprintf(f, "usage: sealpost check [-c FILE] [--rcpt ADDR...]\n\n"
	           "Validates the config, connects to the upstream (TLS, certificate, AUTH) and\n"
	           "reports each step; for each --rcpt address, prints the form it would get and\n"
	           "why.  Exit status 1 on any problem, 2 on a config error.\n");
}

int
cmd_check(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "rcpt", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct sp_config cfg;
	struct relay *relay = NULL;
	struct smtp_client *client = NULL;
	struct smtp_reply fail = { 0 };
	struct sp_policy *policy = NULL;
	const char *cfgpath = NULL;
	char **rcpts = sp_xcalloc((size_t)argc + 1, sizeof *rcpts);
	size_t n_rcpts = 0, i;
	char err[SP_ERRLEN];
	int c, rv, problems = 0;

	while ((c = getopt_long(argc, argv, "c:r:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			cfgpath = optarg;
			break;
		case 'r':
			rcpts[n_rcpts++] = optarg;
			break;
		case 'h':
			help(stdout);
			free(rcpts);
			return EXIT_OK;
		default:
			help(stderr);
			free(rcpts);
			return EXIT_USAGE;
		}
	}
	/* `--rcpt a@x b@y`: further addresses after the first. */
	for (; optind < argc; optind++)
		rcpts[n_rcpts++] = argv[optind];
	if ((rv = cli_load_config(cfgpath, true, &cfg)) != 0) {
		free(rcpts);
		return rv;
	}
	sp_log_init(SP_LOG_ERROR);
	{
		struct sp_sodium_recipients *r = NULL;
		if (sp_policy_load_sodium(&cfg, &r, err, sizeof err) < 0) {
			fprintf(stderr, "sealpost: %s\n", err);
			sp_config_free(&cfg);
			free(rcpts);
			return EXIT_USAGE;
		}
		printf("config      %s: ok\n", cfg.path);
		if (r)
			printf("sodium      %zu recipient(s) in %s\n", sp_sodium_recipients_count(r),
			       cfg.sodium.recipients);
		sp_sodium_recipients_free(r);
	}
	for (i = 0; i < cfg.proxy.n_listen; i++)
		printf("listen      %s:%s (%s, auth %s)\n", cfg.proxy.listen[i].host, cfg.proxy.listen[i].port,
		       cfg.proxy.listen[i].implicit_tls ? "implicit TLS" : "STARTTLS offered",
		       sp_auth_mode_name(cfg.proxy.auth));
	printf("upstream    %s:%s, tls %s\n", cfg.upstream.host, cfg.upstream.port,
	       sp_upstream_tls_name(cfg.upstream.tls));
	relay = relay_new(&cfg, NULL, err, sizeof err);
	if (relay == NULL) {
		printf("upstream    FAILED: %s\n", err);
		problems++;
	} else if (relay_open(relay, NULL, &client, &fail) < 0) {
		printf("upstream    FAILED: %d %s %s\n", fail.code, fail.enh, fail.text);
		problems++;
	} else {
		printf("connect     ok\n");
		if (client->tls_info[0]) {
			printf("tls         %s\n", client->tls_info);
			printf("certificate verified: %s\n", client->peer_cert);
		} else {
			printf("tls         none (loopback upstream, [upstream] tls = none)\n");
		}
		if (cfg.upstream.username[0])
			printf("auth        ok as %s\n", cfg.upstream.username);
		else
			printf("auth        not configured ([upstream] username)\n");
		printf("extensions  %s%s%s%s\n", client->cap_pipelining ? "PIPELINING " : "",
		       client->cap_8bitmime ? "8BITMIME " : "", client->cap_smtputf8 ? "SMTPUTF8 " : "",
		       client->cap_size ? "SIZE" : "");
		smtp_client_close(client);
	}
	if (n_rcpts) {
		policy = sp_policy_new(&cfg, err, sizeof err);
		if (policy == NULL) {
			printf("policy      FAILED: %s\n", err);
			problems++;
		}
	}
	for (i = 0; policy && i < n_rcpts; i++) {
		struct sp_decision d;
		switch (sp_policy_decide(policy, rcpts[i], &d)) {
		case SP_POLICY_OK:
			printf("rcpt        %s: %s%s%s%s%s\n", rcpts[i], sp_form_name(d.form),
			       d.detail[0] ? " " : "", d.detail, d.reason[0] ? " - " : "", d.reason);
			if (d.form == SP_FORM_PLAIN)
				printf("            WARNING: this recipient would get the message unencrypted\n");
			break;
		case SP_POLICY_REFUSE:
			printf("rcpt        %s: REFUSED: %s\n", rcpts[i], d.reason);
			problems++;
			break;
		default:
			printf("rcpt        %s: FAILED: %s\n", rcpts[i], d.reason);
			problems++;
			break;
		}
	}
	printf("%s\n", problems ? "check FAILED" : "check ok");
	sp_policy_free(policy);
	smtp_reply_clear(&fail);
	relay_free(relay);
	sp_config_free(&cfg);
	free(rcpts);
	return problems ? EXIT_RUNTIME : EXIT_OK;
}
