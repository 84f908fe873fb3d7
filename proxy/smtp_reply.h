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
 * enhanced status code whose class matches the reply code's first digit. */
const char *smtp_reply_split_enh(int code, const char *text, char enh[16]);

/* Read one complete (possibly multi-line) reply. */
enum smtp_reply_status smtp_reply_read(struct conn *c, struct smtp_reply *r, int64_t deadline_ms,
                                       char *err, size_t errsz);

/* The enhanced code to use when a reply has none: X.0.0 of its class. */
void smtp_reply_default_enh(const struct smtp_reply *r, char enh[16]);

#endif
