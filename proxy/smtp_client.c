/* smtp_client.c - sealpost as a submission client of the upstream provider. */
#include "smtp_client.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>
#include <sodium.h>

#include "log.h"
#include "net.h"
#include "smtp_parse.h"
#include "tls.h"

/* RFC 5321 4.5.3.2.6: wait at least 10 minutes for the reply to the final dot. */
#define SMTP_CLIENT_FINAL_TIMEOUT_MS (10 * 60 * 1000)
/* Bytes of message handed to the connection at a time while dot-stuffing. */
#define SMTP_CLIENT_DATA_CHUNK 65536

static int64_t
deadline(const struct smtp_client *c)
{
	return sp_now_ms() + c->timeout_ms;
}

static void
fail_io(struct smtp_client *c, struct smtp_reply *fail, const char *enh, const char *step,
        const char *why)
{
	smtp_reply_set(fail, 451, enh, "upstream %s:%s: %s: %s", c->host, c->port, step, why);
	c->broken = true;
}

/* The upstream refused a step of the session setup: say which and what it said. */
static void
fail_reply(struct smtp_client *c, struct smtp_reply *fail, const char *step, const struct smtp_reply *r)
{
	char enh[16];

	smtp_reply_default_enh(r, enh);
	smtp_reply_set(fail, 451, SMTP_ENH_CONNECTION_TEMP, "upstream %s:%s refused %s: %d %s %s", c->host, c->port, step,
	               r->code, enh, r->text);
	c->broken = true;
}

static int
send_line(struct smtp_client *c, const char *line)
{
	return conn_write(&c->conn, line, strlen(line), deadline(c)) < 0 ||
	       conn_write(&c->conn, "\r\n", 2, deadline(c)) < 0 ? -1 : 0;
}

/* Send one command and read its reply; -1 on I/O failure (fail set). */
static int
command(struct smtp_client *c, const char *line, const char *step, struct smtp_reply *r,
        struct smtp_reply *fail)
{
	char err[SP_ERRLEN];

	if (send_line(c, line) < 0 || conn_flush(&c->conn, deadline(c)) < 0) {
		fail_io(c, fail, SMTP_ENH_CONNECTION_TEMP, step, conn_error(&c->conn));
		return -1;
	}
	if (smtp_reply_read(&c->conn, r, deadline(c), err, sizeof err) != SMTP_REPLY_OK) {
		fail_io(c, fail, SMTP_ENH_CONNECTION_TEMP, step, err);
		return -1;
	}
	return 0;
}

static void
parse_ehlo(struct smtp_client *c, const struct smtp_reply *r)
{
	size_t i;

	c->cap_starttls = c->cap_pipelining = c->cap_8bitmime = c->cap_smtputf8 = false;
	c->cap_enhanced = c->cap_auth_plain = c->cap_auth_login = false;
	c->cap_size = 0;
	for (i = 1; i < r->n_lines; i++) {
		const char *l = r->lines[i];
		if (sp_streq_nocase(l, "STARTTLS"))
			c->cap_starttls = true;
		else if (sp_streq_nocase(l, "PIPELINING"))
			c->cap_pipelining = true;
		else if (sp_streq_nocase(l, "8BITMIME"))
			c->cap_8bitmime = true;
		else if (sp_streq_nocase(l, "SMTPUTF8"))
			c->cap_smtputf8 = true;
		else if (sp_streq_nocase(l, "ENHANCEDSTATUSCODES"))
			c->cap_enhanced = true;
		else if (sp_has_prefix_nocase(l, "SIZE") && (l[4] == ' ' || l[4] == '\0'))
			c->cap_size = l[4] ? strtoull(l + 5, NULL, 10) : 0;
		else if (sp_has_prefix_nocase(l, "AUTH ") || sp_has_prefix_nocase(l, "AUTH=")) {
			char **mechs = g_strsplit_set(l + 5, " ", -1);
			for (char **m = mechs; *m; m++) {
				if (sp_streq_nocase(*m, "PLAIN"))
					c->cap_auth_plain = true;
				else if (sp_streq_nocase(*m, "LOGIN"))
					c->cap_auth_login = true;
			}
			g_strfreev(mechs);
		}
	}
}

static int
ehlo(struct smtp_client *c, const char *helo, struct smtp_reply *fail)
{
	struct smtp_reply r = { 0 };
	char line[300];
	int rv = -1;

	snprintf(line, sizeof line, "EHLO %s", helo);
	if (command(c, line, "EHLO", &r, fail) < 0)
		goto out;
	if (r.code != 250) {
		fail_reply(c, fail, "EHLO", &r);
		goto out;
	}
	parse_ehlo(c, &r);
	rv = 0;
out:
	smtp_reply_clear(&r);
	return rv;
}

static char *
b64(const void *p, size_t n)
{
	size_t sz = sodium_base64_encoded_len(n, sodium_base64_VARIANT_ORIGINAL);
	char *out = sodium_malloc(sz);

	if (out == NULL)
		abort();
	sodium_bin2base64(out, sz, p, n, sodium_base64_VARIANT_ORIGINAL);
	return out;
}

int
smtp_client_auth(struct smtp_client *c, const char *user, const char *pass, struct smtp_reply *fail)
{
	struct smtp_reply r = { 0 };
	char *enc = NULL, *raw = NULL, *line = NULL;
	size_t ul = strlen(user), pl = strlen(pass), n;
	int rv = -1;

	if (!c->cap_auth_plain && !c->cap_auth_login) {
		smtp_reply_set(fail, 451, SMTP_ENH_SECURITY_TEMP, "upstream %s:%s offers no AUTH PLAIN or LOGIN", c->host,
		               c->port);
		return -1;
	}
	if (c->cap_auth_plain) {
		/* RFC 4616: authzid NUL authcid NUL passwd */
		n = ul + pl + 2;
		raw = sodium_malloc(n);
		if (raw == NULL)
			abort();
		raw[0] = '\0';
		memcpy(raw + 1, user, ul);
		raw[1 + ul] = '\0';
		memcpy(raw + 2 + ul, pass, pl);
		enc = b64(raw, n);
		line = sodium_malloc(strlen(enc) + 16);
		if (line == NULL)
			abort();
		sprintf(line, "AUTH PLAIN %s", enc);
		if (command(c, line, "AUTH", &r, fail) < 0)
			goto out;
	} else {
		if (command(c, "AUTH LOGIN", "AUTH", &r, fail) < 0)
			goto out;
		if (r.code == 334) {
			enc = b64(user, ul);
			if (command(c, enc, "AUTH", &r, fail) < 0)
				goto out;
			sodium_free(enc);
			enc = NULL;
		}
		if (r.code == 334) {
			enc = b64(pass, pl);
			if (command(c, enc, "AUTH", &r, fail) < 0)
				goto out;
		}
	}
	if (r.code != 235) {
		char enh[16];
		smtp_reply_default_enh(&r, enh);
		if (r.code / 100 == 5)
			smtp_reply_set(fail, 535, SMTP_ENH_BAD_CREDENTIALS, "upstream %s:%s rejected the credentials: %d %s %s",
			               c->host, c->port, r.code, enh, r.text);
		else
			smtp_reply_set(fail, 454, SMTP_ENH_SECURITY_TEMP, "upstream %s:%s: temporary authentication failure: %d %s %s",
			               c->host, c->port, r.code, enh, r.text);
		goto out;
	}
	c->authenticated = true;
	rv = 0;
out:
	if (raw)
		sodium_free(raw);
	if (enc)
		sodium_free(enc);
	if (line)
		sodium_free(line);
	smtp_reply_clear(&r);
	return rv;
}

/* Implicit TLS when configured, then the 220 greeting. */
static int
greet(struct smtp_client *c, const struct smtp_client_opts *o, struct smtp_reply *fail)
{
	struct smtp_reply r = { 0 };
	char err[SP_ERRLEN];
	int rv = -1;

	if (o->tls == SP_UPSTREAM_TLS) {
		if (conn_starttls_client(&c->conn, o->tls_ctx, o->host, deadline(c)) < 0) {
			fail_io(c, fail, SMTP_ENH_CRYPTO_TEMP, "TLS", conn_error(&c->conn));
			goto out;
		}
	}
	if (smtp_reply_read(&c->conn, &r, deadline(c), err, sizeof err) != SMTP_REPLY_OK) {
		fail_io(c, fail, SMTP_ENH_CONNECTION_TEMP, "greeting", err);
		goto out;
	}
	if (r.code != 220) {
		fail_reply(c, fail, "the connection", &r);
		goto out;
	}
	rv = 0;
out:
	smtp_reply_clear(&r);
	return rv;
}

/* STARTTLS after the first EHLO, and EHLO again inside TLS.  An upstream
 * that does not offer it is a failure, never a reason to send in clear. */
static int
starttls(struct smtp_client *c, const struct smtp_client_opts *o, struct smtp_reply *fail)
{
	struct smtp_reply r = { 0 };
	int rv = -1;

	if (!c->cap_starttls) {
		smtp_reply_set(fail, 451, SMTP_ENH_NO_SECURITY_TEMP,
		               "upstream %s:%s does not offer STARTTLS; refusing to send in clear",
		               c->host, c->port);
		goto out;
	}
	if (command(c, "STARTTLS", "STARTTLS", &r, fail) < 0)
		goto out;
	if (r.code != 220) {
		fail_reply(c, fail, "STARTTLS", &r);
		goto out;
	}
	if (conn_starttls_client(&c->conn, o->tls_ctx, o->host, deadline(c)) < 0) {
		fail_io(c, fail, SMTP_ENH_CRYPTO_TEMP, "TLS", conn_error(&c->conn));
		goto out;
	}
	/* RFC 3207 4.2: forget everything learned before TLS. */
	if (ehlo(c, o->helo, fail) < 0)
		goto out;
	rv = 0;
out:
	smtp_reply_clear(&r);
	return rv;
}

int
smtp_client_open(const struct smtp_client_opts *o, struct smtp_client **out, struct smtp_reply *fail)
{
	struct smtp_client *c = sp_xcalloc(1, sizeof *c);
	char err[SP_ERRLEN];
	int fd;

	*out = NULL;
	sp_strlcpy(c->host, o->host, sizeof c->host);
	sp_strlcpy(c->port, o->port, sizeof c->port);
	c->timeout_ms = o->timeout_ms;
	fd = sp_net_connect(o->host, o->port, deadline(c), err, sizeof err);
	if (fd < 0) {
		smtp_reply_set(fail, 451, SMTP_ENH_NO_ANSWER_TEMP, "upstream %s", err);
		conn_init(&c->conn, -1);
		goto fail;
	}
	conn_init(&c->conn, fd);
	if (greet(c, o, fail) < 0 || ehlo(c, o->helo, fail) < 0)
		goto fail;
	if (o->tls == SP_UPSTREAM_STARTTLS && starttls(c, o, fail) < 0)
		goto fail;
	if (c->conn.ssl) {
		conn_tls_info(&c->conn, c->tls_info, sizeof c->tls_info);
		tls_peer_summary(c->conn.ssl, c->peer_cert, sizeof c->peer_cert);
	}
	if (o->username && *o->username && smtp_client_auth(c, o->username, o->password, fail) < 0)
		goto fail;
	*out = c;
	return 0;
fail:
	conn_close(&c->conn);
	free(c);
	return -1;
}

/* Stream the body through the dot-stuffer: never a second copy of it. */
static int
write_data(struct smtp_client *c, const struct sp_blob *body)
{
	struct smtp_dotstuff ds;
	struct sp_buf chunk;
	char *in = sp_xmalloc(SMTP_CLIENT_DATA_CHUNK);
	size_t off = 0;
	int rv = -1;

	sp_buf_init(&chunk, 0);
	smtp_dotstuff_init(&ds);
	while (body && off < body->len) {
		ssize_t n = sp_blob_read(body, off, in, SMTP_CLIENT_DATA_CHUNK);
		if (n <= 0) {
			sp_seterr(c->conn.err, sizeof c->conn.err, "reading the copy: %s",
			          n < 0 ? strerror(errno) : "short");
			goto out;
		}
		sp_buf_reset(&chunk);
		if (smtp_dotstuff_feed(&ds, in, (size_t)n, &chunk) < 0 ||
		    conn_write(&c->conn, chunk.data, chunk.len, deadline(c)) < 0)
			goto out;
		off += (size_t)n;
	}
	sp_buf_reset(&chunk);
	if (smtp_dotstuff_end(&ds, &chunk) < 0 || conn_write(&c->conn, chunk.data, chunk.len, deadline(c)) < 0 ||
	    conn_flush(&c->conn, deadline(c)) < 0)
		goto out;
	rv = 0;
out:
	/* The unencrypted form passes through here too. */
	sodium_memzero(in, SMTP_CLIENT_DATA_CHUNK);
	free(in);
	sp_buf_wipe(&chunk);
	return rv;
}

static int
read_reply(struct smtp_client *c, struct smtp_reply *r, int64_t dl, struct smtp_txn *t, const char *step)
{
	char err[SP_ERRLEN];

	if (smtp_reply_read(&c->conn, r, dl, err, sizeof err) != SMTP_REPLY_OK) {
		fail_io(c, &t->final, SMTP_ENH_CONNECTION_TEMP, step, err);
		return -1;
	}
	return 0;
}

static void
copy_reply(struct smtp_reply *dst, const struct smtp_reply *src)
{
	smtp_reply_set(dst, src->code, src->enh, "%s", src->text);
}

/* Where a step of a transaction leaves it (the value smtp_client_send
 * returns, except TXN_CONTINUE). */
enum txn_step {
	TXN_CONTINUE = 1,   /* go on with the next step */
	TXN_DONE = 0,       /* the upstream answered: t->final says how it ended */
	TXN_BROKEN = -1,    /* the connection failed: t->final names why */
};

/* Writing to the upstream failed. */
static enum txn_step
fail_send(struct smtp_client *c, struct smtp_txn *t)
{
	fail_io(c, &t->final, SMTP_ENH_CONNECTION_TEMP, "sending", conn_error(&c->conn));
	return TXN_BROKEN;
}

/* Every recipient was refused: the first refusal is the answer. */
static enum txn_step
refused_all(struct smtp_txn *t)
{
	size_t i;

	for (i = 0; i < t->n_rcpts; i++) {
		if (t->rcpt_replies[i].code / 100 != 2) {
			copy_reply(&t->final, &t->rcpt_replies[i]);
			break;
		}
	}
	return TXN_DONE;
}

/* A copy the upstream said it cannot take (SIZE, 8BITMIME, SMTPUTF8) is
 * refused here, before MAIL. */
static enum txn_step
check_capabilities(const struct smtp_client *c, struct smtp_txn *t)
{
	if (c->cap_size && t->body->len > c->cap_size) {
		smtp_reply_set(&t->final, 552, SMTP_ENH_TOO_BIG, "message size %zu exceeds the upstream's limit of %llu",
		               t->body->len, (unsigned long long)c->cap_size);
		return TXN_DONE;
	}
	if (t->eightbit && !c->cap_8bitmime) {
		smtp_reply_set(&t->final, 554, SMTP_ENH_NEED_CONVERSION,
		               "upstream %s does not accept 8-bit mail (no 8BITMIME)", c->host);
		return TXN_DONE;
	}
	if (t->smtputf8 && !c->cap_smtputf8) {
		smtp_reply_set(&t->final, 553, SMTP_ENH_NEED_SMTPUTF8,
		               "upstream %s does not accept UTF-8 addresses (no SMTPUTF8)", c->host);
		return TXN_DONE;
	}
	return TXN_CONTINUE;
}

/* MAIL FROM and RCPT TO.  Without PIPELINING each waits for its reply (the
 * reply to MAIL in *mail); with it they go out unanswered. */
static enum txn_step
send_envelope(struct smtp_client *c, struct smtp_txn *t, struct smtp_reply *mail)
{
	char line[SMTP_PATH_MAX + 128];
	size_t i;
	bool pipelined = c->cap_pipelining;

	snprintf(line, sizeof line, "MAIL FROM:<%s>", t->mail_from);
	if (c->cap_size)
		snprintf(line + strlen(line), sizeof line - strlen(line), " SIZE=%zu", t->body->len);
	if (t->eightbit)
		strcat(line, " BODY=8BITMIME");
	if (t->smtputf8)
		strcat(line, " SMTPUTF8");
	if (send_line(c, line) < 0)
		return fail_send(c, t);
	if (!pipelined) {
		if (conn_flush(&c->conn, deadline(c)) < 0)
			return fail_send(c, t);
		if (read_reply(c, mail, deadline(c), t, "MAIL") < 0)
			return TXN_BROKEN;
		if (mail->code != 250) {
			copy_reply(&t->final, mail);
			return TXN_DONE;
		}
	}
	for (i = 0; i < t->n_rcpts; i++) {
		snprintf(line, sizeof line, "RCPT TO:<%s>", t->rcpts[i]);
		if (send_line(c, line) < 0)
			return fail_send(c, t);
		if (!pipelined) {
			if (conn_flush(&c->conn, deadline(c)) < 0)
				return fail_send(c, t);
			if (read_reply(c, &t->rcpt_replies[i], deadline(c), t, "RCPT") < 0)
				return TXN_BROKEN;
			if (t->rcpt_replies[i].code / 100 == 2)
				t->n_accepted++;
		}
	}
	if (!pipelined && t->n_accepted == 0)
		return refused_all(t);
	return TXN_CONTINUE;
}

/* DATA, and its reply in *data; with PIPELINING first the replies to MAIL
 * (in *mail) and to each RCPT. */
static enum txn_step
send_data_command(struct smtp_client *c, struct smtp_txn *t, struct smtp_reply *mail, struct smtp_reply *data)
{
	size_t i;

	if (send_line(c, "DATA") < 0 || conn_flush(&c->conn, deadline(c)) < 0)
		return fail_send(c, t);
	if (c->cap_pipelining) {
		/* RFC 2920: replies come back in order; DATA ends the group. */
		if (read_reply(c, mail, deadline(c), t, "MAIL") < 0)
			return TXN_BROKEN;
		for (i = 0; i < t->n_rcpts; i++) {
			if (read_reply(c, &t->rcpt_replies[i], deadline(c), t, "RCPT") < 0)
				return TXN_BROKEN;
			if (mail->code == 250 && t->rcpt_replies[i].code / 100 == 2)
				t->n_accepted++;
		}
	}
	if (read_reply(c, data, deadline(c), t, "DATA") < 0)
		return TXN_BROKEN;
	return TXN_CONTINUE;
}

/* After the reply to DATA: the body and the final reply (t->final), or an
 * empty body where the upstream asks for one nobody will receive. */
static enum txn_step
send_body(struct smtp_client *c, struct smtp_txn *t, const struct smtp_reply *mail, struct smtp_reply *data)
{
	if (c->cap_pipelining && mail->code != 250) {
		copy_reply(&t->final, mail);
		if (data->code == 354 && write_data(c, NULL) < 0)
			return fail_send(c, t);
		if (data->code == 354 && read_reply(c, data, deadline(c), t, "end of data") < 0)
			return TXN_BROKEN;
		return TXN_DONE;
	}
	if (t->n_accepted == 0) {
		if (data->code == 354) {
			/* A server that accepted DATA without recipients gets an empty body. */
			if (write_data(c, NULL) < 0)
				return fail_send(c, t);
			if (read_reply(c, data, deadline(c), t, "end of data") < 0)
				return TXN_BROKEN;
		}
		return refused_all(t);
	}
	if (data->code != 354) {
		copy_reply(&t->final, data);
		return TXN_DONE;
	}
	if (write_data(c, t->body) < 0)
		return fail_send(c, t);
	if (read_reply(c, &t->final, sp_now_ms() + SMTP_CLIENT_FINAL_TIMEOUT_MS, t, "end of data") < 0)
		return TXN_BROKEN;
	return TXN_DONE;
}

int
smtp_client_send(struct smtp_client *c, struct smtp_txn *t)
{
	struct smtp_reply mail = { 0 }, data = { 0 };
	enum txn_step st;
	size_t i;

	t->n_accepted = 0;
	smtp_reply_clear(&t->final);
	for (i = 0; i < t->n_rcpts; i++)
		smtp_reply_clear(&t->rcpt_replies[i]);
	if ((st = check_capabilities(c, t)) != TXN_CONTINUE)
		return st;
	c->transactions++;
	if ((st = send_envelope(c, t, &mail)) == TXN_CONTINUE &&
	    (st = send_data_command(c, t, &mail, &data)) == TXN_CONTINUE)
		st = send_body(c, t, &mail, &data);
	if (st == TXN_DONE && t->final.code != 250 && !c->broken)
		smtp_client_rset(c);
	smtp_reply_clear(&mail);
	smtp_reply_clear(&data);
	return st;
}

int
smtp_client_rset(struct smtp_client *c)
{
	struct smtp_reply r = { 0 }, fail = { 0 };
	int rv = command(c, "RSET", "RSET", &r, &fail) == 0 && r.code == 250 ? 0 : -1;

	if (rv < 0)
		c->broken = true;
	smtp_reply_clear(&r);
	smtp_reply_clear(&fail);
	return rv;
}

void
smtp_client_close(struct smtp_client *c)
{
	if (c == NULL)
		return;
	if (!c->broken && c->conn.fd >= 0) {
		struct smtp_reply r = { 0 }, fail = { 0 };
		/* Best effort, short: the message is already accepted or refused. */
		c->timeout_ms = 2000;
		(void)command(c, "QUIT", "QUIT", &r, &fail);
		smtp_reply_clear(&r);
		smtp_reply_clear(&fail);
	}
	conn_close(&c->conn);
	free(c);
}
