/* queue_runner.h - retries queued copies: a thread in `sealpost run`, and
 * one pass on demand for `sealpost queue flush`. */
#ifndef SP_QUEUE_RUNNER_H
#define SP_QUEUE_RUNNER_H

#include <stdbool.h>

#include "config.h"
#include "queue.h"
#include "relay.h"

/* The runner looks at the queue at least this often even when nobody kicks it. */
#define QUEUE_RUNNER_SCAN_MS 30000

struct queue_runner;

/* Returns 0 with *out, or -1 with err set. */
int queue_runner_start(struct queue *q, struct relay *relay, const struct sp_config *cfg,
                       struct queue_runner **out, char *err, size_t errsz);
void queue_runner_stop(struct queue_runner *qr);

struct queue_pass {
	unsigned tried, delivered, deferred, bounced, skipped;
	int64_t next_due;        /* earliest next attempt among what is left, 0 = none */
};

/* Try every entry that is due (every entry when force).  Entries another
 * process is delivering right now are skipped. */
void queue_run_once(struct queue *q, struct relay *relay, const struct sp_config *cfg, bool force,
                    struct queue_pass *pass);

#endif
