/* smtp_server.h - one SMTP submission session with a mail client
 * (RFC 5321, RFC 6409, STARTTLS RFC 3207, AUTH RFC 4954, PIPELINING RFC 2920,
 * ENHANCEDSTATUSCODES RFC 3463, SIZE, 8BITMIME, SMTPUTF8).
 */
#ifndef SP_SMTP_SERVER_H
#define SP_SMTP_SERVER_H

#include <stdbool.h>

#include <openssl/ssl.h>

#include "config.h"
#include "link_store.h"
#include "relay.h"
#include "smtp_auth.h"

/* RFC 5321 4.5.3.1.4: a command line is at most 512 octets with its CRLF. */
#define SMTP_CMD_LINE_MAX 512
/* RFC 5321 4.5.3.1.6: a text line is at most 1000 octets with its CRLF. */
#define SMTP_TEXT_LINE_MAX 1000
/* Hang up after this many errors in one session (Postfix smtpd_hard_error_limit
 * is 20): a client that keeps getting it wrong is broken or probing. */
#define SMTP_MAX_ERRORS 20
/* Failed AUTH attempts per session before hanging up. */
#define SMTP_MAX_AUTH_FAILURES 3
/* Pause after a failed AUTH, to slow down guessing. */
#define SMTP_AUTH_FAILURE_DELAY_MS 1000
/* The whole DATA phase must finish within this, however slowly bytes arrive:
 * a client trickling one byte per minute cannot hold a session forever. */
#define SMTP_DATA_TOTAL_TIMEOUT_S 3600
/* A session lasts at most this long, whatever it does. */
#define SMTP_SESSION_MAX_S (4 * 3600)

/* Shared by every session; read-only once the server runs. */
struct smtp_server_ctx {
	const struct sp_config *cfg;
	SSL_CTX *tls;                 /* STARTTLS / implicit TLS towards the client */
	struct sp_users *users;       /* auth = users */
	struct relay *relay;
	struct link_store *store;     /* link mode with a local store, or NULL */
	const char *hostname;         /* in the greeting and EHLO */
};

/* Run one session on an accepted socket until it ends; closes fd. */
void smtp_session_run(struct smtp_server_ctx *ctx, int fd, bool implicit_tls);

#endif
