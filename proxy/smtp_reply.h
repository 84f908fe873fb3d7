/* smtp_reply.h - SMTP replies: the strict parser used on upstream replies, and
 * the value type both sides pass around (code, enhanced code, text).
 */
#ifndef SP_SMTP_REPLY_H
#define SP_SMTP_REPLY_H

#include <stdbool.h>
#include <stddef.h>

#include "conn.h"

/* RFC 5321 4.5.3.1.5 says a reply line is at most 512 octets; real servers
 * exceed that in EHLO and error texts, so accept up to this and no more. */
#define SMTP_REPLY_LINE_MAX 2048
/* Prevent an extremely long multi-line reply from eating memory (msmtp's
 * SMTP_MAXLINES idea): EHLO replies have a dozen lines. */
#define SMTP_REPLY_MAX_LINES 64
/* Text kept from a reply (joined lines), enough for any sane error. */
#define SMTP_REPLY_TEXT_MAX 1024

struct smtp_reply {
	int code;                        /* 200..599 */
	char enh[16];                    /* "5.7.1", or "" when the server gave none */
	char text[SMTP_REPLY_TEXT_MAX];  /* text after code (and enh), lines joined by "; " */
	char **lines;                    /* every line's text (for EHLO), NULL-terminated */
	size_t n_lines;
};

/* Enhanced status codes (RFC 3463 class.subject.detail; X.5.6, X.7.8 and
 * X.7.11 from RFC 4954, X.6.7 from RFC 6531) by what they say, so a reply
 * names its meaning rather than repeating digits.  The class (2, 4, 5) is part
 * of each: a temporary and a permanent "other security" are two names. */
#define SMTP_ENH_NONE ""                      /* 220 greeting, 354: no code */
#define SMTP_ENH_OK "2.0.0"                   /* X.0.0 other or undefined status */
#define SMTP_ENH_SENDER_OK "2.1.0"            /* X.1.0 other address status */
#define SMTP_ENH_RCPT_OK "2.1.5"              /* X.1.5 destination address valid */
#define SMTP_ENH_PROTOCOL_OK "2.5.0"          /* X.5.0 other protocol status */
#define SMTP_ENH_AUTH_OK "2.7.0"              /* X.7.0 other security status */
#define SMTP_ENH_SYSTEM_TEMP "4.3.0"          /* X.3.0 other mail system status */
#define SMTP_ENH_NOT_ACCEPTING_TEMP "4.3.2"   /* X.3.2 system not accepting network messages */
#define SMTP_ENH_NO_ANSWER_TEMP "4.4.1"       /* X.4.1 no answer from host */
#define SMTP_ENH_CONNECTION_TEMP "4.4.2"      /* X.4.2 bad connection */
#define SMTP_ENH_EXPIRED_TEMP "4.4.7"         /* X.4.7 delivery time expired */
#define SMTP_ENH_TOO_MANY_RCPTS "4.5.3"       /* X.5.3 too many recipients */
#define SMTP_ENH_SECURITY_TEMP "4.7.0"        /* X.7.0 other security status */
#define SMTP_ENH_NO_SECURITY_TEMP "4.7.4"     /* X.7.4 security features not supported */
#define SMTP_ENH_CRYPTO_TEMP "4.7.5"          /* X.7.5 cryptographic failure */
#define SMTP_ENH_BAD_CREDENTIALS_TEMP "4.7.8" /* X.7.8 authentication credentials invalid */
#define SMTP_ENH_FAIL "5.0.0"                 /* X.0.0 other or undefined status */
#define SMTP_ENH_BAD_RCPT_SYNTAX "5.1.3"      /* X.1.3 bad destination mailbox syntax */
#define SMTP_ENH_BAD_SENDER_SYNTAX "5.1.7"    /* X.1.7 bad sender's mailbox syntax */
#define SMTP_ENH_TOO_BIG "5.3.4"              /* X.3.4 message too big for system */
#define SMTP_ENH_BAD_COMMAND "5.5.1"          /* X.5.1 invalid command (or sequence) */
#define SMTP_ENH_SYNTAX "5.5.2"               /* X.5.2 syntax error */
#define SMTP_ENH_BAD_ARGS "5.5.4"             /* X.5.4 invalid command arguments */
#define SMTP_ENH_AUTH_LINE_TOO_LONG "5.5.6"   /* X.5.6 authentication line too long */
#define SMTP_ENH_BAD_CONTENT "5.6.0"          /* X.6.0 other media error */
#define SMTP_ENH_NEED_CONVERSION "5.6.3"      /* X.6.3 conversion required but not supported */
#define SMTP_ENH_NEED_SMTPUTF8 "5.6.7"        /* X.6.7 non-ASCII address needs SMTPUTF8 */
#define SMTP_ENH_SECURITY "5.7.0"             /* X.7.0 other security status */
#define SMTP_ENH_REFUSED "5.7.1"              /* X.7.1 delivery not authorized */
#define SMTP_ENH_BAD_CREDENTIALS "5.7.8"      /* X.7.8 authentication credentials invalid */
#define SMTP_ENH_NEED_ENCRYPTION "5.7.11"     /* X.7.11 encryption required for the mechanism */

void smtp_reply_clear(struct smtp_reply *r);
void smtp_reply_set(struct smtp_reply *r, int code, const char *enh, const char *fmt, ...) SP_PRINTF(4, 5);

enum smtp_reply_status {
	SMTP_REPLY_OK = 0,
	SMTP_REPLY_IO,       /* connection failed/timed out: conn_error() says why */
	SMTP_REPLY_SYNTAX,   /* not an SMTP reply */
};

/* Parse one reply line.  Returns 0 with *code, *more (a '-' continuation) and
 * *text pointing into line; -1 if the line is not a valid reply line. */
int smtp_reply_parse_line(const char *line, size_t len, int *code, bool *more, const char **text);
/* Split "5.7.1 text" into enh and the rest when the text starts with an
 * enhanced status code whose class matches the reply code's first digit.
 * Returns the text after the code (text itself, with enh "", when none). */
const char *smtp_reply_split_enh(int code, const char *text, char enh[16]);

/* Read one complete (possibly multi-line) reply.  Returns SMTP_REPLY_OK with
 * *r, or SMTP_REPLY_IO or SMTP_REPLY_SYNTAX with err set. */
enum smtp_reply_status smtp_reply_read(struct conn *c, struct smtp_reply *r, int64_t deadline_ms,
                                       char *err, size_t errsz);

/* The enhanced code to use when a reply has none: X.0.0 of its class. */
void smtp_reply_default_enh(const struct smtp_reply *r, char enh[16]);

#endif
