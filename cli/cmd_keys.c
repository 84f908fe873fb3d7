/* cmd_keys.c - `sealpost keys [list | refresh ADDR | forget ADDR]`: the keys
 * sealpost discovered (WKD, keyserver) and where each came from. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "discovery.h"
#include "log.h"
#include "pgp.h"

static const char usage[] =
	"usage: sealpost keys [-c FILE] [list | refresh ADDR... | forget ADDR...]\n\n"
	"The OpenPGP keys sealpost discovered by itself ([discovery]: WKD, keyserver),\n"
	"kept in its own keyring under the state directory, never in yours.\n\n"
	"  list            address, state, fingerprint, source and URL, first seen, last lookup\n"
	"  refresh ADDR    look ADDR up again now (ignoring the caches)\n"
	"  forget ADDR     drop what is known about ADDR (its key, a \"no key\" or a key\n"
	"                  change); the next message looks it up afresh and accepts\n"
	"                  the key it finds\n"
	"Exit status 0 ok, 1 a lookup found no usable key or failed, 2 usage.\n";

static void
when(int64_t t, char *out, size_t outsz)
{
	struct tm tm;
	time_t tt = (time_t)t;

	if (t == 0 || gmtime_r(&tt, &tm) == NULL || strftime(out, outsz, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, outsz, "-");
}

static int
print_row(void *arg, const struct sp_discovered *row)
{
	char first[32], last[32];
	unsigned *n = arg;

	when(row->first_seen, first, sizeof first);
	when(row->fetched, last, sizeof last);
	(*n)++;
	if (strcmp(row->state, "none") == 0) {
		printf("%s  none  (no key found)  looked up %s\n", row->addr, last);
		return 0;
	}
	printf("%s  %s  %s  %s %s  since %s  looked up %s", row->addr, row->state, row->fpr, row->source, row->url,
	       first, last);
	if (strcmp(row->state, "changed") == 0)
		printf("  NOW SERVES %s (not used: `sealpost keys forget %s` accepts it)", row->new_fpr, row->addr);
	printf("\n");
	return 0;
}

int
cmd_keys(int argc, char **argv)
{
	static const struct cli_command cmd = { .usage = usage, .config = true, .max_operands = CLI_ANY };
	const char *cfgpath = NULL, *action = "list";
	struct sp_discovery *d = NULL;
	struct sp_config cfg;
	char err[SP_ERRLEN];
	int first, rv, i;

	if ((rv = cli_parse_args(&cmd, argc, argv, &cfgpath, &first)) != CLI_CONTINUE)
		return rv;
	if (first < argc)
		action = argv[first++];
	if (strcmp(action, "list") != 0 && strcmp(action, "refresh") != 0 && strcmp(action, "forget") != 0)
		return cli_usage_error(&cmd);
	if ((strcmp(action, "list") != 0) != (first < argc))
		return cli_usage_error(&cmd);
	if ((rv = cli_load_config(cfgpath, false, &cfg)) != 0)
		return rv;
	sp_log_init(strcmp(action, "refresh") == 0 ? SP_LOG_WARN : SP_LOG_ERROR);
	if ((d = sp_discovery_open(&cfg, err, sizeof err)) == NULL) {
		fprintf(stderr, "sealpost: keys: %s\n", err);
		sp_config_free(&cfg);
		return EXIT_RUNTIME;
	}
	rv = EXIT_OK;
	if (strcmp(action, "list") == 0) {
		unsigned n = 0;
		if (sp_discovery_list(d, print_row, &n, err, sizeof err) < 0) {
			fprintf(stderr, "sealpost: keys: %s\n", err);
			rv = EXIT_RUNTIME;
		} else if (n == 0) {
			printf("no discovered keys\n");
		}
	} else {
		for (i = first; i < argc; i++) {
			if (strcmp(action, "forget") == 0) {
				int r = sp_discovery_forget(d, argv[i], err, sizeof err);
				if (r < 0) {
					fprintf(stderr, "sealpost: keys forget: %s\n", err);
					rv = EXIT_RUNTIME;
				} else {
					printf("%s: %s\n", argv[i], r == 1 ? "nothing known" : "forgotten");
				}
			} else {
				struct sp_pgp_key_info info;
				char source[300];
				switch (sp_discovery_refresh(d, argv[i], &info, source, sizeof source, err, sizeof err)) {
				case SP_PGP_FOUND:
					printf("%s: key %s from %s\n", argv[i], info.fpr, source);
					break;
				case SP_PGP_NONE:
					printf("%s: no usable key: %s\n", argv[i], err);
					rv = EXIT_RUNTIME;
					break;
				default:
					fprintf(stderr, "sealpost: keys refresh: %s: %s\n", argv[i], err);
					rv = EXIT_RUNTIME;
					break;
				}
			}
		}
	}
	sp_pgp_pool_clear();
	sp_discovery_close(d);
	sp_config_free(&cfg);
	return rv;
}
