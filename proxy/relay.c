/* relay.c - copies upstream, the queue for what cannot go now, one reply. */
#include "relay.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>

#include "log.h"
#include "tls.h"

/* A password file or command output longer than this is not a password. */
#define RELAY_PASSWORD_MAX 4096
/* password_command gets this long to answer (it may ask gpg-agent for a PIN). */
#define RELAY_PASSWORD_COMMAND_TIMEOUT_S 60

struct pooled {
	struct smtp_client *c;
	char *user;               /* NULL: configured credentials */
	int64_t since;
};

struct remembered {
	char *user;
	char *pass;               /* sodium_malloc'd */
};

struct relay {
	const struct sp_config *cfg;
	struct queue *queue;
	SSL_CTX *tls;
	char *password;           /* sodium_malloc'd, or NULL */
	pthread_mutex_t lock;     /* pool and creds */
	struct pooled pool[RELAY_POOL_MAX];
	size_t n_pool;
	struct remembered creds[RELAY_CREDS_MAX];
	size_t n_creds;
};

static int
load_password_file(struct relay *r, const char *path, char *err, size_t errsz)
{
	struct stat st;
	char *data = NULL;
	size_t len;

	if (stat(path, &st) == 0 && (st.st_mode & 077))
		sp_log_warn("%s: the upstream password file is readable by others (mode %03o); "
		            "chmod 600 it", path, (unsigned)(st.st_mode & 0777));
	if (sp_read_file(path, RELAY_PASSWORD_MAX, &data, &len, err, errsz) < 0)
		return -1;
	/* The first line is the password. */
	r->password = sp_secret_dup(data, strcspn(data, "\r\n"));
	sodium_memzero(data, len);
	free(data);
	return 0;
}

static int
run_password_command(struct relay *r, const char *cmd, char *err, size_t errsz)
{
	char buf[RELAY_PASSWORD_MAX];
	size_t n = 0;
	ssize_t k;
	int pfd[2], status;
	pid_t pid;

	if (pipe2(pfd, O_CLOEXEC) < 0) {
		sp_seterr(err, errsz, "[upstream] password_command: pipe: %s", strerror(errno));
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		sp_seterr(err, errsz, "[upstream] password_command: fork: %s", strerror(errno));
		close(pfd[0]);
		close(pfd[1]);
		return -1;
	}
	if (pid == 0) {
		dup2(pfd[1], STDOUT_FILENO);
		alarm(RELAY_PASSWORD_COMMAND_TIMEOUT_S);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	while (n < sizeof buf && (k = read(pfd[0], buf + n, sizeof buf - n)) != 0) {
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			break;
		n += (size_t)k;
	}
	close(pfd[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		sodium_memzero(buf, sizeof buf);
		sp_seterr(err, errsz, "[upstream] password_command failed (%s %d)",
		          WIFEXITED(status) ? "exit status" : "signal",
		          WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
		return -1;
	}
	/* The first line of its output is the password. */
	for (k = 0; k < (ssize_t)n && buf[k] != '\n' && buf[k] != '\r'; k++)
		;
	r->password = sp_secret_dup(buf, (size_t)k);
	sodium_memzero(buf, sizeof buf);
	if (r->password[0] == '\0') {
		sp_seterr(err, errsz, "[upstream] password_command printed no password");
		return -1;
	}
	return 0;
}

struct relay *
relay_new(const struct sp_config *cfg, struct queue *queue, char *err, size_t errsz)
{
	struct relay *r = sp_xcalloc(1, sizeof *r);

	r->cfg = cfg;
	r->queue = queue;
	pthread_mutex_init(&r->lock, NULL);
	r->tls = tls_client_ctx(cfg->upstream.ca_file, err, errsz);
	if (r->tls == NULL)
		goto fail;
	if (cfg->upstream.password_file[0] && load_password_file(r, cfg->upstream.password_file, err, errsz) < 0)
		goto fail;
	if (cfg->upstream.password_command[0] &&
	    run_password_command(r, cfg->upstream.password_command, err, errsz) < 0)
		goto fail;
	return r;
fail:
	relay_free(r);
	return NULL;
}

void
relay_free(struct relay *r)
{
	size_t i;

	if (r == NULL)
		return;
	for (i = 0; i < r->n_pool; i++) {
		smtp_client_close(r->pool[i].c);
		free(r->pool[i].user);
	}
	for (i = 0; i < r->n_creds; i++) {
		free(r->creds[i].user);
		sodium_free(r->creds[i].pass);
	}
	if (r->tls)
		SSL_CTX_free(r->tls);
	if (r->password)
		sodium_free(r->password);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

int
relay_open(struct relay *r, const struct relay_creds *creds, struct smtp_client **out,
           struct smtp_reply *fail)
{
	const struct sp_config *cfg = r->cfg;
	struct smtp_client_opts o = {
		.host = cfg->upstream.host,
		.port = cfg->upstream.port,
		.tls = cfg->upstream.tls,
		.tls_ctx = r->tls,
		.helo = cfg->upstream.helo,
		.username = cfg->upstream.username,
		.password = r->password ? r->password : "",
		.timeout_ms = cfg->upstream.timeout * 1000,
	};

	if (creds && creds->user) {
		o.username = creds->user;
		o.password = creds->pass;
	}
	return smtp_client_open(&o, out, fail);
}

void
relay_remember_creds(struct relay *r, const char *user, const char *pass)
{
	size_t i;

	pthread_mutex_lock(&r->lock);
	for (i = 0; i < r->n_creds && strcmp(r->creds[i].user, user) != 0; i++)
		;
	if (i == r->n_creds) {
		if (r->n_creds == RELAY_CREDS_MAX) {
			/* Forget the oldest. */
			free(r->creds[0].user);
			sodium_free(r->creds[0].pass);
			memmove(&r->creds[0], &r->creds[1], (RELAY_CREDS_MAX - 1) * sizeof r->creds[0]);
			r->n_creds--;
			i = r->n_creds;
		}
		r->creds[i].user = sp_xstrdup(user);
		r->n_creds++;
	} else {
		sodium_free(r->creds[i].pass);
	}
	r->creds[i].pass = sp_secret_dup(pass, strlen(pass));
	pthread_mutex_unlock(&r->lock);
}

char *
relay_lookup_creds(struct relay *r, const char *user)
{
	char *p = NULL;
	size_t i;

	pthread_mutex_lock(&r->lock);
	for (i = 0; i < r->n_creds; i++)
		if (strcmp(r->creds[i].user, user) == 0)
			p = sp_secret_dup(r->creds[i].pass, strlen(r->creds[i].pass));
	pthread_mutex_unlock(&r->lock);
	return p;
}

/* ---- the connection pool ---- */

static bool
same_user(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

/* An idle connection is usable if the server has not said anything (a 421 or
 * a close would make it readable). */
static bool
still_alive(struct smtp_client *c)
{
	struct pollfd pfd = { .fd = c->conn.fd, .events = POLLIN };

	return !c->broken && c->conn.fd >= 0 && poll(&pfd, 1, 0) == 0;
}

static struct smtp_client *
acquire(struct relay *r, const struct relay_creds *creds, struct smtp_reply *fail)
{
	const char *user = creds ? creds->user : NULL;
	struct smtp_client *c = NULL, *stale[RELAY_POOL_MAX];
	size_t i, n_stale = 0;
	int64_t now = sp_now_ms();

	pthread_mutex_lock(&r->lock);
	for (i = 0; i < r->n_pool;) {
		struct pooled *p = &r->pool[i];
		bool expired = now - p->since > RELAY_POOL_IDLE_MS;
		if (expired || (c == NULL && same_user(p->user, user))) {
			if (expired)
				stale[n_stale++] = p->c;
			else
				c = p->c;
			free(p->user);
			memmove(p, p + 1, (r->n_pool - i - 1) * sizeof *p);
			r->n_pool--;
			continue;
		}
		i++;
	}
	pthread_mutex_unlock(&r->lock);
	for (i = 0; i < n_stale; i++)
		smtp_client_close(stale[i]);
	if (c && !still_alive(c)) {
		c->broken = true;
		smtp_client_close(c);
		c = NULL;
	}
	if (c)
		return c;
	if (relay_open(r, creds, &c, fail) < 0)
		return NULL;
	return c;
}

static void
release(struct relay *r, const struct relay_creds *creds, struct smtp_client *c)
{
	struct smtp_client *evict = NULL;

	if (c == NULL)
		return;
	if (c->broken || c->transactions >= RELAY_POOL_MAX_TXNS) {
		smtp_client_close(c);
		return;
	}
	pthread_mutex_lock(&r->lock);
	if (r->n_pool == RELAY_POOL_MAX) {
		evict = r->pool[0].c;
		free(r->pool[0].user);
		memmove(&r->pool[0], &r->pool[1], (RELAY_POOL_MAX - 1) * sizeof r->pool[0]);
		r->n_pool--;
	}
	r->pool[r->n_pool].c = c;
	r->pool[r->n_pool].user = creds && creds->user ? sp_xstrdup(creds->user) : NULL;
	r->pool[r->n_pool].since = sp_now_ms();
	r->n_pool++;
	pthread_mutex_unlock(&r->lock);
	smtp_client_close(evict);
}

/* ---- one copy ---- */

static void
set_outcome(struct relay_outcome *o, const struct smtp_reply *rep)
{
	smtp_reply_default_enh(rep, o->enh);
	o->code = rep->code;
	o->status = rep->code / 100 == 2 ? RELAY_SENT : rep->code / 100 == 4 ? RELAY_TEMPFAIL : RELAY_FAILED;
	snprintf(o->text, sizeof o->text, "%d %s %.360s", rep->code, o->enh, rep->text);
}

void
relay_send(struct relay *r, const struct relay_creds *creds, const char *from,
           const char *const *rcpts, size_t n, const struct sp_blob *body, bool eightbit,
           bool smtputf8, struct relay_outcome *outcomes)
{
	struct smtp_txn t = { 0 };
	struct smtp_client *c;
	size_t j;
	int attempt;

	t.mail_from = from;
	t.eightbit = eightbit;
	t.smtputf8 = smtputf8;
	t.rcpts = rcpts;
	t.n_rcpts = n;
	t.body = body;
	t.rcpt_replies = sp_xcalloc(n ? n : 1, sizeof *t.rcpt_replies);
	/* A pooled connection the server dropped a moment ago fails at once;
	 * one more try on a fresh connection is not a retry of the message. */
	for (attempt = 0; attempt < 2; attempt++) {
		bool fresh;
		c = acquire(r, creds, &t.final);
		if (c == NULL)
			break;
		fresh = c->transactions == 0;
		if (smtp_client_send(c, &t) == 0 || fresh || t.n_accepted) {
			release(r, creds, c);
			break;
		}
		release(r, creds, c);
	}
	for (j = 0; j < n; j++) {
		const struct smtp_reply *rr = &t.rcpt_replies[j];
		/* Accepted only when both its RCPT and the end of data were 2xx. */
		if (rr->code / 100 == 2 || rr->code == 0)
			set_outcome(&outcomes[j], &t.final);
		else
			set_outcome(&outcomes[j], rr);
		smtp_reply_clear(&t.rcpt_replies[j]);
	}
	/* Wrong credentials are for the user to fix; meanwhile nothing bounces. */
	for (j = 0; j < n; j++) {
		if (outcomes[j].code == 535) {
			outcomes[j].status = RELAY_TEMPFAIL;
			sp_strlcpy(outcomes[j].enh, SMTP_ENH_BAD_CREDENTIALS_TEMP, sizeof outcomes[j].enh);
			outcomes[j].code = 451;
		}
	}
	free(t.rcpt_replies);
	smtp_reply_clear(&t.final);
}

/* ---- queue entries ---- */

/* The envelope of a queue entry for a copy the upstream deferred just now:
 * created now, tried once, next try min_backoff from now, relayed with the
 * credentials of creds' user.  The strings and rcpts are borrowed: they must
 * live until queue_add(), which writes them out. */
static void
deferred_entry(struct queue_entry *e, const struct relay *r, const struct relay_creds *creds,
               const char *txn, const char *form, const char *mail_from, char **rcpts, size_t n_rcpts,
               const char *last_error)
{
	memset(e, 0, sizeof *e);
	e->created = sp_time();
	e->next_attempt = e->created + r->cfg->queue.min_backoff;
	e->attempts = 1;
	sp_strlcpy(e->form, form, sizeof e->form);
	e->mail_from = (char *)mail_from;
	e->user = (char *)(creds && creds->user ? creds->user : "");
	sp_strlcpy(e->txn, txn, sizeof e->txn);
	e->rcpts = rcpts;
	e->n_rcpts = n_rcpts;
	sp_strlcpy(e->last_error, last_error, sizeof e->last_error);
}

/* ---- DSN ---- */

void
relay_send_dsn(struct relay *r, const struct relay_creds *creds, const char *sender, const char *txn,
               const char *msgid, int64_t arrival, const struct sp_dsn_rcpt *rcpts, size_t n)
{
	struct relay_outcome o;
	struct sp_buf dsn;
	struct sp_span span = { 0 };
	struct sp_blob body = { .spans = &span, .n_spans = 1, .fd = -1 };
	char err[SP_ERRLEN];
	const char *to[1] = { sender };

	if (sender == NULL || sender[0] == '\0' || n == 0)
		return;
	sp_buf_init(&dsn, 0);
	body.len = 0;
	if (sp_dsn_build(sender, msgid ? msgid : "", arrival, rcpts, n, &dsn, err, sizeof err) < 0) {
		sp_log_error("%s: cannot build a DSN for <%s>: %s", txn, sender, err);
		goto out;
	}
	/* RFC 3464: the null sender; a submission server that refuses it gets
	 * the user's own address (a DSN never causes another DSN here). */
	span.p = dsn.data;
	span.n = dsn.len;
	body.len = dsn.len;
	relay_send(r, creds, "", to, 1, &body, false, false, &o);
	if (o.status == RELAY_FAILED)
		relay_send(r, creds, sender, to, 1, &body, false, false, &o);
	if (o.status == RELAY_SENT) {
		sp_log_info("%s: DSN to <%s> sent (%zu failed recipient%s)", txn, sender, n, n == 1 ? "" : "s");
	} else if (o.status == RELAY_TEMPFAIL && r->queue) {
		struct queue_entry e;
		char *rc[1] = { (char *)sender };
		deferred_entry(&e, r, creds, txn, "dsn", "", rc, 1, o.text);
		e.attempts = 0; /* a queued DSN has always started its backoff at 0 */
		if (queue_add(r->queue, &e, &body, err, sizeof err) == 0)
			sp_log_info("%s: DSN to <%s> queued as %s: %s", txn, sender, e.id, o.text);
		else
			sp_log_error("%s: DSN to <%s> lost: %s; and cannot queue it: %s", txn, sender, o.text, err);
	} else {
		sp_log_error("%s: DSN to <%s> refused: %s", txn, sender, o.text);
	}
out:
	sp_buf_free(&dsn);
}

/* ---- one message ---- */

/* Queue cp's deferred recipients (none: nothing to do).  Returns 0, or -1 with
 * err set. */
static int
queue_copy(struct relay *r, const struct relay_creds *creds, const struct sp_envelope *env,
           const struct sp_copy *cp, struct relay_result *res, char added[][33], size_t *n_added,
           char *err, size_t errsz)
{
	struct queue_entry e;
	char **rc = sp_xcalloc(cp->n_rcpts, sizeof *rc);
	char last[400] = "";
	size_t j, n = 0;
	int rv = -1;

	for (j = 0; j < cp->n_rcpts; j++) {
		struct relay_outcome *o = &res->outcomes[cp->rcpts[j]];
		if (o->status != RELAY_TEMPFAIL)
			continue;
		rc[n++] = env->rcpts[cp->rcpts[j]].addr;
		if (last[0] == '\0')
			sp_strlcpy(last, o->text, sizeof last);
	}
	if (n == 0) {
		rv = 0;
		goto out;
	}
	if (r->queue == NULL) {
		sp_seterr(err, errsz, "no queue");
		goto out;
	}
	deferred_entry(&e, r, creds, env->id, sp_form_name(cp->form), env->mail_from, rc, n, last);
	if (env->arrival)
		e.created = env->arrival;
	e.eightbit = cp->eightbit;
	e.smtputf8 = cp->smtputf8;
	{
		struct sp_blob b;
		struct sp_span one;
		sp_copy_blob(cp, &b, &one);
		if (queue_add(r->queue, &e, &b, err, errsz) < 0)
			goto out;
		sp_strlcpy(added[(*n_added)++], e.id, 33);
	}
	for (j = 0; j < cp->n_rcpts; j++) {
		struct relay_outcome *o = &res->outcomes[cp->rcpts[j]];
		if (o->status == RELAY_TEMPFAIL) {
			char was[400];
			sp_strlcpy(was, o->text, sizeof was);
			o->status = RELAY_QUEUED;
			snprintf(o->text, sizeof o->text, "queued as %s after %.340s", e.id, was);
		}
	}
	rv = 0;
out:
	free(rc);
	return rv;
}

/* A receipt for the sender: tried now, queued if the upstream cannot take
 * it; its fate never changes the client's reply. */
static void
send_receipt(struct relay *r, const struct relay_creds *creds, const struct sp_envelope *env,
             const struct sp_copy *cp)
{
	const char *to[1] = { cp->to_sender };
	struct relay_outcome o;
	struct sp_blob b;
	struct sp_span one;
	char err[SP_ERRLEN];

	sp_copy_blob(cp, &b, &one);
	relay_send(r, creds, env->mail_from, to, 1, &b, cp->eightbit, cp->smtputf8, &o);
	if (o.status == RELAY_SENT) {
		sp_log_info("%s: delivery report to <%s> sent (encrypted to the sender's key)", env->id, cp->to_sender);
	} else if (o.status == RELAY_TEMPFAIL && r->queue) {
		struct queue_entry e;
		char *rc[1] = { cp->to_sender };
		deferred_entry(&e, r, creds, env->id, "receipt", env->mail_from, rc, 1, o.text);
		if (queue_add(r->queue, &e, &b, err, sizeof err) == 0)
			sp_log_info("%s: delivery report queued as %s: %s", env->id, e.id, o.text);
		else
			sp_log_error("%s: delivery report lost: %s; cannot queue it: %s", env->id, o.text, err);
	} else {
		sp_log_error("%s: delivery report to <%s> refused: %s", env->id, cp->to_sender, o.text);
	}
}

/* An outcome's text without its leading "550 5.1.1 ": the reply puts its
 * own code in front. */
static const char *
outcome_reason(const struct relay_outcome *o)
{
	const char *text = o->text;

	if (strlen(text) > 4 && text[3] == ' ')
		text += 4;
	if (strncmp(text, o->enh, strlen(o->enh)) == 0 && text[strlen(o->enh)] == ' ')
		text += strlen(o->enh) + 1;
	return text;
}

static const struct relay_outcome *
first_with(const struct relay_result *res, size_t n, enum relay_status st)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (res->outcomes[i].status == st)
			return &res->outcomes[i];
	return NULL;
}

/* Send every copy but the sender's receipts, the unencrypted ones first:
 * they cannot be queued, so if one of them cannot go now the client retries
 * before anything else went out - the copies after it are not attempted.
 * Fills res->outcomes; returns true when an unencrypted copy was deferred. */
static bool
send_copies(struct relay *r, const struct relay_creds *creds, const struct sp_envelope *env,
            const struct sp_copies *copies, struct relay_result *res)
{
	size_t *order = sp_xcalloc(copies->n + 1, sizeof *order);
	size_t i, j, k = 0, n_order;
	bool abort_plain = false;

	for (i = 0; i < copies->n; i++)
		if (copies->v[i].form == SP_FORM_PLAIN && !copies->v[i].to_sender)
			order[k++] = i;
	for (i = 0; i < copies->n; i++)
		if (copies->v[i].form != SP_FORM_PLAIN && !copies->v[i].to_sender)
			order[k++] = i;
	n_order = k;

	for (k = 0; k < n_order; k++) {
		const struct sp_copy *cp = &copies->v[order[k]];
		const char **rcpts = sp_xcalloc(cp->n_rcpts, sizeof *rcpts);
		struct relay_outcome *out = sp_xcalloc(cp->n_rcpts, sizeof *out);

		for (j = 0; j < cp->n_rcpts; j++)
			rcpts[j] = env->rcpts[cp->rcpts[j]].addr;
		if (abort_plain) {
			for (j = 0; j < cp->n_rcpts; j++) {
				out[j].status = RELAY_TEMPFAIL;
				out[j].code = 451;
				sp_strlcpy(out[j].enh, SMTP_ENH_SYSTEM_TEMP, sizeof out[j].enh);
				snprintf(out[j].text, sizeof out[j].text, "451 " SMTP_ENH_SYSTEM_TEMP " not attempted");
			}
		} else {
			struct sp_blob b;
			struct sp_span one;
			sp_copy_blob(cp, &b, &one);
			relay_send(r, creds, env->mail_from, rcpts, cp->n_rcpts, &b, cp->eightbit, cp->smtputf8, out);
		}
		for (j = 0; j < cp->n_rcpts; j++) {
			res->outcomes[cp->rcpts[j]] = out[j];
			if (cp->form == SP_FORM_PLAIN && out[j].status == RELAY_TEMPFAIL)
				abort_plain = true;
		}
		free(out);
		free(rcpts);
	}
	free(order);
	return abort_plain;
}

/* Queue the deferred recipients of every encrypted copy, all or nothing: if
 * one copy cannot be queued, the client will send the whole message again,
 * so what was queued of it is taken back (before the runner's first retry,
 * which is min_backoff away).  Returns 0, or -1 with res->reply set. */
static int
queue_deferred(struct relay *r, const struct relay_creds *creds, const struct sp_envelope *env,
               const struct sp_copies *copies, struct relay_result *res)
{
	char (*added)[33] = sp_xcalloc(copies->n + 1, sizeof *added);
	char qerr[SP_ERRLEN] = "";
	size_t k, n_added = 0;
	int rv = 0;

	for (k = 0; k < copies->n && rv == 0; k++)
		if (!copies->v[k].to_sender)
			rv = queue_copy(r, creds, env, &copies->v[k], res, added, &n_added, qerr, sizeof qerr);
	if (rv < 0) {
		for (k = 0; k < n_added; k++) {
			char err[SP_ERRLEN];
			struct queue_entry e;
			int lockfd;
			if (queue_lock(r->queue, added[k], &e, &lockfd) == 0) {
				if (queue_remove(r->queue, added[k], err, sizeof err) < 0)
					sp_log_error("%s: cannot take back queue entry %s: %s", env->id, added[k], err);
				queue_unlock(lockfd);
				queue_entry_clear(&e);
			}
		}
		sp_log_error("%s: cannot queue: %s", env->id, qerr);
		smtp_reply_set(&res->reply, 451, SMTP_ENH_SYSTEM_TEMP, "upstream unavailable and the queue cannot be "
		               "written (%s); try again later", qerr);
	}
	free(added);
	return rv;
}

/* One DSN to the sender for the recipients the upstream refused. */
static void
report_refused(struct relay *r, const struct relay_creds *creds, const struct sp_envelope *env,
               const struct relay_result *res)
{
	struct sp_dsn_rcpt *d = sp_xcalloc(res->n_failed, sizeof *d);
	size_t i, n = 0;

	for (i = 0; i < env->n_rcpts; i++) {
		if (res->outcomes[i].status != RELAY_FAILED)
			continue;
		d[n].addr = env->rcpts[i].addr;
		d[n].form = sp_form_name(env->rcpts[i].form);
		d[n].diagnostic = res->outcomes[i].text;
		sp_strlcpy(d[n].status, res->outcomes[i].enh, sizeof d[n].status);
		n++;
	}
	relay_send_dsn(r, creds, env->mail_from, env->id, env->message_id, env->arrival, d, n);
	free(d);
}

void
relay_deliver(struct relay *r, const struct relay_creds *creds, const struct sp_envelope *env,
              const struct sp_copies *copies, struct relay_result *res)
{
	char extra[200] = "";
	size_t i, k;

	memset(res, 0, sizeof *res);
	res->outcomes = sp_xcalloc(env->n_rcpts ? env->n_rcpts : 1, sizeof *res->outcomes);
	if (send_copies(r, creds, env, copies, res)) {
		const struct relay_outcome *t = first_with(res, env->n_rcpts, RELAY_TEMPFAIL);
		smtp_reply_set(&res->reply, 451, t->enh, "%s (an unencrypted copy is never queued; "
		               "try again later)", outcome_reason(t));
		return;
	}
	if (queue_deferred(r, creds, env, copies, res) < 0)
		return;
	for (i = 0; i < env->n_rcpts; i++) {
		switch (res->outcomes[i].status) {
		case RELAY_SENT: res->n_sent++; break;
		case RELAY_QUEUED: res->n_queued++; break;
		default: res->n_failed++; break;
		}
	}
	if (res->n_failed && res->n_sent == 0 && res->n_queued == 0) {
		/* Every recipient refused: the upstream's own answer, no DSN. */
		const struct relay_outcome *f = first_with(res, env->n_rcpts, RELAY_FAILED);
		smtp_reply_set(&res->reply, f->code, f->enh, "%s", outcome_reason(f));
		return;
	}
	if (res->n_failed)
		report_refused(r, creds, env, res);
	if (res->n_queued)
		snprintf(extra + strlen(extra), sizeof extra - strlen(extra), ", %zu queued for retry",
		         res->n_queued);
	if (res->n_failed)
		snprintf(extra + strlen(extra), sizeof extra - strlen(extra),
		         ", %zu refused (a delivery report follows)", res->n_failed);
	smtp_reply_set(&res->reply, 250, SMTP_ENH_OK, "Ok: %s: %zu of %zu recipients sent upstream%s", env->id,
	               res->n_sent, env->n_rcpts, extra);
	/* The message is accepted: now the sender's own receipt. */
	for (k = 0; k < copies->n; k++)
		if (copies->v[k].to_sender)
			send_receipt(r, creds, env, &copies->v[k]);
}

void
relay_result_free(struct relay_result *res)
{
	smtp_reply_clear(&res->reply);
	free(res->outcomes);
	memset(res, 0, sizeof *res);
}
