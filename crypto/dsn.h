/* dsn.h - delivery status notifications (RFC 3464) for the sender.
 *
 * A DSN names each failed recipient, what form it was to get and why the
 * upstream refused it.  It never contains the message: no body, no subject,
 * no attachment names - only the Message-ID and Date of the original, so the
 * sender can find it in their Sent folder.
 */
#ifndef SP_DSN_H
#define SP_DSN_H

#include <stdint.h>

#include "util.h"

struct sp_dsn_rcpt {
	const char *addr;
	const char *form;          /* "openpgp", "sodium", ... */
	const char *diagnostic;    /* the upstream's reply, "550 5.1.1 ..." */
	char status[16];           /* "5.1.1" */
	bool delayed;              /* gave up after the queue lifetime */
};

/* The whole DSN message (CRLF), to the sender, from the sender's own address
 * (submission servers insist on that).  Returns 0, or -1 with err set. */
int sp_dsn_build(const char *sender, const char *orig_msgid, int64_t arrival,
                 const struct sp_dsn_rcpt *rcpts, size_t n, struct sp_buf *out, char *err, size_t errsz);

#endif
