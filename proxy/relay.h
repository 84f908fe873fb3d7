/* relay.h - send the copies of one message upstream and decide the one reply
 * the client gets (docs/architecture.md, "Delivery semantics").
 *
 * Every copy is tried at once.  The client gets 250 only when every copy was
 * accepted by the upstream or written durably to the queue; copies that failed
 * temporarily are queued (only encrypted copies and DSNs are ever queued: an
 * unencrypted copy that fails makes the client try again instead).  Recipients
 * the upstream refused permanently get the sender a DSN - unless every copy
 * was refused, then the client gets the upstream's own 5xx.  Upstream
 * connections are kept in a small pool and reused across messages.
 */
#ifndef SP_RELAY_H
#define SP_RELAY_H

#include "config.h"
#include "dsn.h"
#include "message.h"
#include "queue.h"
#include "smtp_client.h"
#include "smtp_reply.h"

/* Idle upstream connections kept for reuse, and for how long: well under the
 * 5 minutes a server may wait before dropping an idle client (RFC 5321
 * 4.5.3.2.7), so a pooled connection is rarely found dead. */
#define RELAY_POOL_MAX 8
#define RELAY_POOL_IDLE_MS 30000
/* Transactions on one upstream connection before it is renewed. */
#define RELAY_POOL_MAX_TXNS 100
/* Passthrough credentials remembered for retrying queued copies. */
#define RELAY_CREDS_MAX 64

struct relay;

/* Reads [upstream] password_file / runs password_command once (the secret is
 * kept in locked memory), and builds the TLS context.  queue may be NULL
 * (then temporary failures are not queued: `sealpost check`).  Returns the
 * relay, or NULL with err set. */
struct relay *relay_new(const struct sp_config *cfg, struct queue *queue, char *err, size_t errsz);
void relay_free(struct relay *r);

/* Credentials for one session: NULL user = the configured ones. */
struct relay_creds {
	const char *user;
	const char *pass;
};

/* A fresh upstream session (for `check`, and to check AUTH passthrough).
 * Returns as smtp_client_open: 0, or -1 with fail set. */
int relay_open(struct relay *r, const struct relay_creds *creds, struct smtp_client **out,
               struct smtp_reply *fail);
/* Passthrough: keep the credentials (in locked memory, for the life of the
 * process) so queued copies of this user can be retried. */
void relay_remember_creds(struct relay *r, const char *user, const char *pass);
/* Returns the remembered password of user in a sodium_malloc'd string, or
 * NULL when there is none. */
char *relay_lookup_creds(struct relay *r, const char *user);

enum relay_status { RELAY_SENT, RELAY_QUEUED, RELAY_FAILED, RELAY_TEMPFAIL };

/* What happened to one recipient. */
struct relay_outcome {
	enum relay_status status;
	int code;                 /* the upstream's reply for this recipient */
	char enh[16];
	char text[400];           /* "250 2.0.0 Ok: queued as X" or the failure */
};

struct relay_result {
	struct smtp_reply reply;          /* for the client */
	struct relay_outcome *outcomes;   /* env->n_rcpts of them */
	size_t n_sent, n_queued, n_failed;
};

void relay_deliver(struct relay *r, const struct relay_creds *creds, const struct sp_envelope *env,
                   const struct sp_copies *copies, struct relay_result *res);
void relay_result_free(struct relay_result *res);

/* One transaction for one copy; outcomes[i] for rcpts[i] (SENT, FAILED or
 * TEMPFAIL).  Used by relay_deliver and the queue runner. */
void relay_send(struct relay *r, const struct relay_creds *creds, const char *from,
                const char *const *rcpts, size_t n, const struct sp_blob *body, bool eightbit,
                bool smtputf8, struct relay_outcome *outcomes);

/* Tell sender that these recipients failed; queued when the upstream cannot
 * take it now.  Never for a null sender (no DSN about a DSN). */
void relay_send_dsn(struct relay *r, const struct relay_creds *creds, const char *sender, const char *txn,
                    const char *msgid, int64_t arrival, const struct sp_dsn_rcpt *rcpts, size_t n);

#endif
