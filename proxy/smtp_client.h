/* smtp_client.h - the upstream side: sealpost as a submission client of the
 * user's provider.  Verified TLS (STARTTLS or implicit), AUTH PLAIN/LOGIN,
 * strict reply parsing, pipelined transactions, dot-stuffing on output.
 * A missing STARTTLS or a bad certificate is a failure, never a fallback.
 */
#ifndef SP_SMTP_CLIENT_H
#define SP_SMTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "conn.h"
#include "message.h"
#include "smtp_reply.h"

struct smtp_client_opts {
	const char *host;
	const char *port;
	enum sp_upstream_tls tls;
	SSL_CTX *tls_ctx;
	const char *helo;
	const char *username;      /* NULL or "": no AUTH */
	const char *password;
	int64_t timeout_ms;        /* per command/reply */
};

struct smtp_client {
	struct conn conn;
	char host[256];
	char port[8];
	int64_t timeout_ms;
	/* EHLO capabilities (after TLS) */
	bool cap_starttls, cap_pipelining, cap_8bitmime, cap_smtputf8, cap_enhanced;
	bool cap_auth_plain, cap_auth_login;
	uint64_t cap_size;         /* 0: not advertised */
	char tls_info[96];         /* "TLSv1.3 TLS_AES_256_GCM_SHA384" */
	char peer_cert[512];       /* subject, issuer, expiry */
	bool authenticated;
	unsigned transactions;
	bool broken;               /* the connection cannot be reused */
};

/* Connect, greet, EHLO, STARTTLS (or implicit TLS), EHLO, AUTH.  Returns 0
 * with *out, or -1 with *out NULL and fail holding the reply to give the
 * client: the upstream's own 4xx/5xx where it sent one, else a 451 4.x.x
 * naming the step and reason.  A reply, not an err line: it is relayed with
 * its code (docs/architecture.md "Conventions"). */
int smtp_client_open(const struct smtp_client_opts *o, struct smtp_client **out, struct smtp_reply *fail);

/* Authenticate with these credentials (auth = passthrough checks a client's
 * credentials this way).  Returns 0, or -1 with fail set (535 5.7.8 when the
 * upstream refused the credentials). */
int smtp_client_auth(struct smtp_client *c, const char *user, const char *pass, struct smtp_reply *fail);

struct smtp_txn {
	const char *mail_from;
	bool eightbit;
	bool smtputf8;
	const char *const *rcpts;
	size_t n_rcpts;
	const struct sp_blob *body;  /* CRLF lines, not dot-stuffed */
	/* results */
	struct smtp_reply *rcpt_replies;   /* n_rcpts of them, filled by smtp_client_send */
	struct smtp_reply final;           /* the reply to MAIL (if it failed), DATA or end of data */
	size_t n_accepted;
};

/* One transaction (MAIL, RCPT..., DATA, body).  Returns 0 when the upstream
 * answered every step (t->final says how it ended: 250 = accepted for the
 * accepted recipients), -1 when the connection failed (t->final is a 451 4.4.2
 * naming why; the connection is then unusable). */
int smtp_client_send(struct smtp_client *c, struct smtp_txn *t);

/* RSET, to reuse the connection after a failed transaction.  Returns 0 when
 * the upstream answered 250, else -1 (the connection is then not reused). */
int smtp_client_rset(struct smtp_client *c);
/* QUIT (best effort) and free. */
void smtp_client_close(struct smtp_client *c);

#endif
