/* queue_runner.c - retries with backoff until [queue] lifetime, then a DSN. */
#include "queue_runner.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "log.h"

struct queue_runner {
	pthread_t tid;
	struct queue *q;
	struct relay *relay;
	const struct sp_config *cfg;
	atomic_bool stop;
};

static void
bounce(struct relay *relay, const struct relay_creds *creds, const struct queue_entry *e,
       const struct sp_dsn_rcpt *d, size_t n)
{
	/* Never a DSN about a DSN. */
	if (strcmp(e->form, "dsn") == 0 || e->mail_from[0] == '\0') {
		size_t i;
		for (i = 0; i < n; i++)
			sp_log_error("%s: queued DSN to <%s> given up: %s", e->txn, d[i].addr, d[i].diagnostic);
		return;
	}
	relay_send_dsn(relay, creds, e->mail_from, e->txn, "", e->created, d, n);
}

/* One attempt at one locked entry. */
static void
deliver_entry(struct queue *q, struct relay *relay, const struct sp_config *cfg, struct queue_entry *e,
              struct queue_pass *pass)
{
	struct relay_creds creds = { NULL, NULL };
	struct relay_outcome *out = NULL;
	struct sp_dsn_rcpt *d = NULL;
	struct sp_blob body = { .fd = -1 };
	char err[SP_ERRLEN], *pw = NULL;
	size_t i, keep = 0, nd = 0;
	int64_t now = sp_time();
	bool expired;

	if (e->user[0]) {
		/* AUTH passthrough: only the user's own credentials relay it. */
		pw = relay_lookup_creds(relay, e->user);
		if (pw == NULL) {
			if (now < e->created + cfg->queue.lifetime) {
				sp_log_info("queue %s: waiting for %s to log in again (passthrough credentials "
				            "are only kept in memory)", e->id, e->user);
				pass->skipped++;
				return;
			}
		} else {
			creds.user = e->user;
			creds.pass = pw;
		}
	}
	if (queue_open_data(q, e->id, &body.fd, &body.len, err, sizeof err) < 0) {
		sp_log_error("queue %s: %s", e->id, err);
		goto out;
	}
	pass->tried++;
	out = sp_xcalloc(e->n_rcpts, sizeof *out);
	d = sp_xcalloc(e->n_rcpts, sizeof *d);
	if (e->user[0] && pw == NULL) {
		for (i = 0; i < e->n_rcpts; i++) {
			out[i].status = RELAY_TEMPFAIL;
			snprintf(out[i].text, sizeof out[i].text,
			         "451 " SMTP_ENH_SECURITY_TEMP " no credentials for %s since a restart", e->user);
		}
	} else {
		relay_send(relay, creds.user ? &creds : NULL, e->mail_from, (const char *const *)e->rcpts,
		           e->n_rcpts, &body, e->eightbit, e->smtputf8, out);
	}
	expired = now >= e->created + cfg->queue.lifetime;
	for (i = 0; i < e->n_rcpts; i++) {
		enum relay_status st = out[i].status;
		if (st == RELAY_SENT) {
			sp_log_info("queue %s: %s: <%s> sent: %s", e->id, e->txn, e->rcpts[i], out[i].text);
			pass->delivered++;
			free(e->rcpts[i]);
			continue;
		}
		if (st != RELAY_FAILED && !expired) {
			e->rcpts[keep++] = e->rcpts[i];
			sp_strlcpy(e->last_error, out[i].text, sizeof e->last_error);
			continue;
		}
		/* Refused for good, or out of time: the sender hears about it. */
		d[nd].delayed = st != RELAY_FAILED;
		if (d[nd].delayed)
			sp_log_warn("queue %s: %s: <%s> given up after %llds: %s", e->id, e->txn, e->rcpts[i],
			            (long long)cfg->queue.lifetime, out[i].text);
		else
			sp_log_warn("queue %s: %s: <%s> refused: %s", e->id, e->txn, e->rcpts[i], out[i].text);
		d[nd].addr = e->rcpts[i];
		d[nd].form = e->form;
		d[nd].diagnostic = out[i].text;
		sp_strlcpy(d[nd].status, d[nd].delayed ? SMTP_ENH_EXPIRED_TEMP : out[i].enh[0] ? out[i].enh : SMTP_ENH_FAIL,
		           sizeof d[nd].status);
		nd++;
		pass->bounced++;
	}
	if (nd)
		bounce(relay, creds.user ? &creds : NULL, e, d, nd);
	for (i = 0; i < nd; i++)
		free((char *)d[i].addr);
	e->n_rcpts = keep;
	if (keep == 0) {
		if (queue_remove(q, e->id, err, sizeof err) < 0)
			sp_log_error("queue %s: %s", e->id, err);
	} else {
		e->attempts++;
		e->next_attempt = now + queue_backoff(e->attempts, cfg->queue.min_backoff, cfg->queue.max_backoff);
		pass->deferred++;
		if (queue_update(q, e, err, sizeof err) < 0)
			sp_log_error("queue %s: %s", e->id, err);
		else
			sp_log_info("queue %s: %s: %zu recipient(s) deferred, next try in %llds: %s", e->id, e->txn,
			            keep, (long long)(e->next_attempt - now), e->last_error);
	}
out:
	free(out);
	free(d);
	if (body.fd >= 0)
		close(body.fd);
	if (pw)
		sodium_free(pw);
}

void
queue_run_once(struct queue *q, struct relay *relay, const struct sp_config *cfg, bool force,
               struct queue_pass *pass)
{
	struct queue_entry *v = NULL;
	char err[SP_ERRLEN];
	size_t n = 0, i;
	int64_t now = sp_time();

	memset(pass, 0, sizeof *pass);
	if (queue_list(q, &v, &n, err, sizeof err) < 0) {
		sp_log_error("%s", err);
		return;
	}
	for (i = 0; i < n; i++) {
		struct queue_entry e;
		int lockfd;
		if (!force && v[i].next_attempt > now) {
			if (pass->next_due == 0 || v[i].next_attempt < pass->next_due)
				pass->next_due = v[i].next_attempt;
			continue;
		}
		if (queue_lock(q, v[i].id, &e, &lockfd) < 0)
			continue;
		deliver_entry(q, relay, cfg, &e, pass);
		if (e.n_rcpts && (pass->next_due == 0 || e.next_attempt < pass->next_due))
			pass->next_due = e.next_attempt;
		queue_unlock(lockfd);
		queue_entry_clear(&e);
	}
	queue_entries_free(v, n);
}

static void *
runner_main(void *arg)
{
	struct queue_runner *qr = arg;

	while (!atomic_load(&qr->stop)) {
		struct queue_pass pass;
		int64_t wait = QUEUE_RUNNER_SCAN_MS;
		queue_run_once(qr->q, qr->relay, qr->cfg, false, &pass);
		if (pass.next_due) {
			int64_t until = (pass.next_due - sp_time()) * 1000;
			if (until < wait)
				wait = until > 100 ? until : 100;
		}
		if (!atomic_load(&qr->stop))
			queue_wait(qr->q, wait);
	}
	return NULL;
}

int
queue_runner_start(struct queue *q, struct relay *relay, const struct sp_config *cfg,
                   struct queue_runner **out, char *err, size_t errsz)
{
	struct queue_runner *qr = sp_xcalloc(1, sizeof *qr);

	qr->q = q;
	qr->relay = relay;
	qr->cfg = cfg;
	if (pthread_create(&qr->tid, NULL, runner_main, qr) != 0) {
		sp_seterr(err, errsz, "cannot start the queue runner");
		free(qr);
		return -1;
	}
	*out = qr;
	return 0;
}

void
queue_runner_stop(struct queue_runner *qr)
{
	if (qr == NULL)
		return;
	atomic_store(&qr->stop, true);
	queue_kick(qr->q);
	pthread_join(qr->tid, NULL);
	free(qr);
}
