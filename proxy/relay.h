/* relay.h - send the copies of one message upstream and decide the one reply
 * the client gets.
 *
 * The client gets 250 only when every copy was accepted by the upstream for
 * every one of its recipients.  Otherwise it gets the upstream's own failure: a
 * 4xx when any failure was temporary (the client retries), the upstream's 5xx
 * when all failures were permanent.
 */
#ifndef SP_RELAY_H
#define SP_RELAY_H

#include "config.h"
#include "message.h"
#include "smtp_client.h"
#include "smtp_reply.h"

struct relay;

/* Reads [upstream] password_file / runs password_command once (the secret is
 * kept in locked memory), and builds the TLS context. */
struct relay *relay_new(const struct sp_config *cfg, char *err, size_t errsz);
void relay_free(struct relay *r);

/* Credentials for one session: NULL user = the configured ones. */
struct relay_creds {
	const char *user;
	const char *pass;
};

/* Open an upstream session (for `check`, and for AUTH passthrough). */
int relay_open(struct relay *r, const struct relay_creds *creds, struct smtp_client **out,
               struct smtp_reply *fail);

/* What happened to one recipient. */
struct relay_outcome {
	int code;                 /* the upstream's reply for this recipient */
	char text[400];           /* "250 2.0.0 Ok: queued as X" or the failure */
};

struct relay_result {
	struct smtp_reply reply;          /* for the client */
	struct relay_outcome *outcomes;   /* env->n_rcpts of them */
	size_t n_sent;                    /* recipients accepted upstream */
	size_t n_failed;
};

void relay_deliver(struct relay *r, const struct relay_creds *creds, const struct sp_envelope *env,
                   const struct sp_copies *copies, struct relay_result *res);
void relay_result_free(struct relay_result *res);

#endif
