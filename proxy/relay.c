/* relay.c - copies upstream, one reply for the client. */
#include "relay.h"

#include <errno.h>
#include <fcntl.h>
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

struct relay {
	const struct sp_config *cfg;
	SSL_CTX *tls;
	char *password;           /* sodium_malloc'd, or NULL */
};

static char *
secret_from(const char *p, size_t n)
{
	char *s;

	while (n && (p[n - 1] == '\n' || p[n - 1] == '\r'))
		n--;
	s = sodium_malloc(n + 1);
	if (s == NULL)
		abort();
	memcpy(s, p, n);
	s[n] = '\0';
	return s;
}

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
	r->password = secret_from(data, strcspn(data, "\r\n"));
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
	r->password = secret_from(buf, (size_t)k);
	sodium_memzero(buf, sizeof buf);
	if (r->password[0] == '\0') {
		sp_seterr(err, errsz, "[upstream] password_command printed no password");
		return -1;
	}
	return 0;
}

struct relay *
relay_new(const struct sp_config *cfg, char *err, size_t errsz)
{
	struct relay *r = sp_xcalloc(1, sizeof *r);

	r->cfg = cfg;
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
	if (r == NULL)
		return;
	if (r->tls)
		SSL_CTX_free(r->tls);
	if (r->password)
		sodium_free(r->password);
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

static void
set_outcome(struct relay_outcome *o, const struct smtp_reply *rep)
{
	char enh[16];

	smtp_reply_default_enh(rep, enh);
	o->code = rep->code;
	snprintf(o->text, sizeof o->text, "%d %s %.360s", rep->code, enh, rep->text);
}

void
relay_deliver(struct relay *r, const struct relay_creds *creds, const struct sp_envelope *env,
              const struct sp_copies *copies, struct relay_result *res)
{
	struct smtp_client *c = NULL;
	struct smtp_reply first_temp = { 0 }, first_perm = { 0 };
	size_t i, j;

	memset(res, 0, sizeof *res);
	res->outcomes = sp_xcalloc(env->n_rcpts ? env->n_rcpts : 1, sizeof *res->outcomes);
	/* One upstream session carries every copy of the message. */
	for (i = 0; i < copies->n; i++) {
		const struct sp_copy *cp = &copies->v[i];
		const char **rcpts = sp_xcalloc(cp->n_rcpts, sizeof *rcpts);
		struct smtp_txn t = { 0 };

		for (j = 0; j < cp->n_rcpts; j++)
			rcpts[j] = env->rcpts[cp->rcpts[j]].addr;
		t.mail_from = env->mail_from;
		t.eightbit = cp->eightbit;
		t.smtputf8 = cp->smtputf8;
		t.rcpts = rcpts;
		t.n_rcpts = cp->n_rcpts;
		t.data = cp->data.data;
		t.len = cp->data.len;
		t.rcpt_replies = sp_xcalloc(cp->n_rcpts, sizeof *t.rcpt_replies);
		if (c && c->broken) {
			smtp_client_close(c);
			c = NULL;
		}
		if (c == NULL && relay_open(r, creds, &c, &t.final) < 0) {
			c = NULL;
			if (t.final.code == 535)
				/* Wrong credentials are for the user to fix; meanwhile the
				 * client keeps the message (4xx), it is not bounced. */
				smtp_reply_set(&t.final, 451, "4.7.8", "%s (%s)", t.final.text,
				               creds && creds->user ? "the credentials given at AUTH"
				                                    : "[upstream] username/password");
		} else if (smtp_client_send(c, &t) < 0) {
			/* Connection lost mid-transaction: t.final says why (451). */
		}
		for (j = 0; j < cp->n_rcpts; j++) {
			struct relay_outcome *o = &res->outcomes[cp->rcpts[j]];
			const struct smtp_reply *rr = &t.rcpt_replies[j];
			const struct smtp_reply *eff;
			/* Accepted only when both its RCPT and the end of data were 2xx. */
			if (rr->code / 100 == 2 && t.final.code / 100 == 2)
				eff = &t.final;
			else if (rr->code && rr->code / 100 != 2)
				eff = rr;
			else
				eff = &t.final;
			set_outcome(o, eff);
			if (eff->code / 100 == 2) {
				res->n_sent++;
			} else {
				res->n_failed++;
				if (eff->code / 100 == 4 && first_temp.code == 0)
					smtp_reply_set(&first_temp, eff->code, eff->enh, "%s", eff->text);
				if (eff->code / 100 == 5 && first_perm.code == 0)
					smtp_reply_set(&first_perm, eff->code, eff->enh, "%s", eff->text);
			}
		}
		for (j = 0; j < cp->n_rcpts; j++)
			smtp_reply_clear(&t.rcpt_replies[j]);
		free(t.rcpt_replies);
		smtp_reply_clear(&t.final);
		free(rcpts);
	}
	smtp_client_close(c);

	if (res->n_failed == 0) {
		smtp_reply_set(&res->reply, 250, "2.0.0", "Ok: %s sent upstream (%zu %s)", env->id,
		               copies->n, copies->n == 1 ? "copy" : "copies");
	} else {
		const struct smtp_reply *f = first_temp.code ? &first_temp : &first_perm;
		char enh[16];
		smtp_reply_default_enh(f, enh);
		if (res->n_sent)
			smtp_reply_set(&res->reply, f->code, enh,
			               "upstream refused %zu of %zu recipients (%zu accepted): %s",
			               res->n_failed, res->n_failed + res->n_sent, res->n_sent, f->text);
		else
			smtp_reply_set(&res->reply, f->code, enh, "%s", f->text);
	}
	smtp_reply_clear(&first_temp);
	smtp_reply_clear(&first_perm);
}

void
relay_result_free(struct relay_result *res)
{
	smtp_reply_clear(&res->reply);
	free(res->outcomes);
	memset(res, 0, sizeof *res);
}
