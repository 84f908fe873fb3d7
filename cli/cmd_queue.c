/* cmd_queue.c - `sealpost queue [list|flush|delete ID]`. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "log.h"
#include "queue.h"
#include "queue_runner.h"
#include "relay.h"

static const char usage[] =
	"usage: sealpost queue [-c FILE] [list | flush | delete ID...]\n\n"
	"The outbound queue holds encrypted copies the upstream could not take yet.\n"
	"  list       every entry: id, age, size, form, sender, recipients, next\n"
	"             attempt and the last error (default)\n"
	"  flush      try every entry now (entries the running proxy is delivering\n"
	"             at this moment are left to it)\n"
	"  delete ID  drop entries without sending them (no DSN)\n";

static void
print_time(int64_t t, char *out, size_t outsz)
{
	time_t tt = (time_t)t;
	struct tm tm;

	localtime_r(&tt, &tm);
	strftime(out, outsz, "%Y-%m-%d %H:%M:%S", &tm);
}

static int
do_list(struct queue *q)
{
	struct queue_entry *v;
	char err[SP_ERRLEN];
	size_t n, i, j;

	if (queue_list(q, &v, &n, err, sizeof err) < 0) {
		fprintf(stderr, "sealpost: queue: %s\n", err);
		return EXIT_RUNTIME;
	}
	if (n == 0)
		printf("queue %s is empty\n", queue_dir(q));
	for (i = 0; i < n; i++) {
		char created[32], next[32];
		print_time(v[i].created, created, sizeof created);
		print_time(v[i].next_attempt, next, sizeof next);
		printf("%s  %s  %zu bytes  %s  from <%s>  attempts %u, next %s\n", v[i].id, created, v[i].size,
		       v[i].form, v[i].mail_from, v[i].attempts, next);
		for (j = 0; j < v[i].n_rcpts; j++)
			printf("    to <%s>\n", v[i].rcpts[j]);
		if (v[i].last_error[0])
			printf("    last error: %s\n", v[i].last_error);
	}
	queue_entries_free(v, n);
	return EXIT_OK;
}

static int
do_flush(struct queue *q, const struct sp_config *cfg)
{
	struct queue_pass pass;
	struct relay *relay;
	char err[SP_ERRLEN];

	relay = relay_new(cfg, q, err, sizeof err);
	if (relay == NULL) {
		fprintf(stderr, "sealpost: queue flush: %s\n", err);
		return EXIT_RUNTIME;
	}
	queue_run_once(q, relay, cfg, true, &pass);
	relay_free(relay);
	printf("tried %u: %u recipient(s) delivered, %u deferred, %u refused (DSN sent), %u waiting for "
	       "their user to log in\n", pass.tried, pass.delivered, pass.deferred, pass.bounced, pass.skipped);
	return pass.deferred || pass.bounced ? EXIT_RUNTIME : EXIT_OK;
}

static int
do_delete(struct queue *q, char **ids, int n)
{
	int i, rv = EXIT_OK;

	for (i = 0; i < n; i++) {
		struct queue_entry e;
		char err[SP_ERRLEN];
		int lockfd;
		if (queue_lock(q, ids[i], &e, &lockfd) < 0) {
			fprintf(stderr, "sealpost: queue delete: %s: no such entry, or being delivered right now\n", ids[i]);
			rv = EXIT_RUNTIME;
			continue;
		}
		if (queue_remove(q, ids[i], err, sizeof err) < 0) {
			fprintf(stderr, "sealpost: queue delete: %s\n", err);
			rv = EXIT_RUNTIME;
		} else {
			printf("deleted %s (%zu recipient(s), from <%s>)\n", ids[i], e.n_rcpts, e.mail_from);
		}
		queue_unlock(lockfd);
		queue_entry_clear(&e);
	}
	return rv;
}

int
cmd_queue(int argc, char **argv)
{
	static const struct cli_command cmd = { .usage = usage, .config = true, .max_operands = CLI_ANY };
	const char *cfgpath = NULL, *action = "list";
	struct sp_config cfg;
	struct queue *q = NULL;
	char err[SP_ERRLEN];
	int first, rv;

	if ((rv = cli_parse_args(&cmd, argc, argv, &cfgpath, &first)) != CLI_CONTINUE)
		return rv;
	if (first < argc)
		action = argv[first++];
	if (strcmp(action, "list") != 0 && strcmp(action, "flush") != 0 && strcmp(action, "delete") != 0)
		return cli_usage_error(&cmd);
	if ((strcmp(action, "delete") == 0) != (first < argc))
		return cli_usage_error(&cmd);
	if ((rv = cli_load_config(cfgpath, strcmp(action, "flush") == 0, &cfg)) != 0)
		return rv;
	sp_log_init(strcmp(action, "flush") == 0 ? SP_LOG_INFO : SP_LOG_ERROR);
	if (queue_open(cfg.queue.dir, false, &q, err, sizeof err) < 0) {
		fprintf(stderr, "sealpost: %s\n", err);
		sp_config_free(&cfg);
		return EXIT_RUNTIME;
	}
	if (strcmp(action, "list") == 0)
		rv = do_list(q);
	else if (strcmp(action, "flush") == 0)
		rv = do_flush(q, &cfg);
	else
		rv = do_delete(q, argv + first, argc - first);
	queue_close(q);
	sp_config_free(&cfg);
	return rv;
}
