/* compose.h - turn one accepted plaintext message into the copies that leave:
 * one per form for the To/Cc recipients of that form, one per Bcc recipient.
 * No copy ever carries a Bcc header or an X-Sealpost-* control header.
 */
#ifndef SP_COMPOSE_H
#define SP_COMPOSE_H

#include "message.h"
#include "policy.h"

enum sp_compose_result {
	SP_COMPOSE_OK,
	SP_COMPOSE_TEMPFAIL,  /* 451 4.3.0: try again later (key lookup, gpg, store) */
	SP_COMPOSE_PERMFAIL,  /* 554 5.6.0: this message cannot be sent as policy requires */
};

/* data: the message as received (CRLF lines, unstuffed), heap memory (it is lent
 * to GMime without a copy, see sp_mime_parse).  env: recipients with their forms
 * from RCPT time; their bcc flags are filled in here.  Returns SP_COMPOSE_OK
 * with the copies in out, or SP_COMPOSE_TEMPFAIL or SP_COMPOSE_PERMFAIL with
 * err set. */
enum sp_compose_result sp_compose(struct sp_policy *p, struct sp_envelope *env, char *data,
                                  size_t len, struct sp_copies *out, char *err, size_t errsz);

#endif
