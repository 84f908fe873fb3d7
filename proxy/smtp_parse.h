/* smtp_parse.h - pure parsers for what an SMTP client sends: command verbs,
 * paths (RFC 5321 4.1.2), ESMTP parameters, dot-stuffing.  No I/O here, so the
 * unit tests and the fuzzer drive them directly.
 */
#ifndef SP_SMTP_PARSE_H
#define SP_SMTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>

#include "util.h"

/* RFC 5321 4.5.3.1: local part 64, domain 255, path 256 octets. */
#define SMTP_LOCAL_MAX 64
#define SMTP_DOMAIN_MAX 255
#define SMTP_PATH_MAX 256
/* More ESMTP parameters than any extension needs is junk. */
#define SMTP_PARAMS_MAX 8

struct smtp_path {
	char addr[SMTP_PATH_MAX + 1];  /* "local@domain"; "" for the null path <> */
	bool null;
	bool utf8;                     /* contains non-ASCII (needs SMTPUTF8) */
};

struct smtp_param {
	char key[32];
	char value[128];               /* "" when the parameter has no value */
	bool has_value;
};

/* Split "MAIL FROM:<a@b> SIZE=10" after the "FROM:" prefix: s points just after
 * the colon (leading blanks allowed).  On success *rest points at the
 * parameters (blanks skipped).  Returns 0, or -1 with err set. */
int smtp_parse_path(const char *s, bool allow_null, bool allow_utf8, struct smtp_path *out,
                    const char **rest, char *err, size_t errsz);
/* The ESMTP parameters into params (*n of them).  Returns 0, or -1 with err
 * set. */
int smtp_parse_params(const char *s, struct smtp_param *params, size_t *n, char *err, size_t errsz);

/* Returns the domain part of an address (a pointer into it), or "". */
const char *smtp_addr_domain(const char *addr);

/* Dot-stuffing for output: streaming, so a 25 MB copy is never duplicated.
 * Line endings are normalised to CRLF.  Feed input with smtp_dotstuff_feed;
 * finish with smtp_dotstuff_end, which terminates the last line and appends
 * ".\r\n".  Both return 0, or -1 when out is full (no err: the caller names
 * the copy). */
struct smtp_dotstuff {
	bool at_line_start;
	bool pending_cr;
};
void smtp_dotstuff_init(struct smtp_dotstuff *d);
int smtp_dotstuff_feed(struct smtp_dotstuff *d, const char *in, size_t len, struct sp_buf *out);
int smtp_dotstuff_end(struct smtp_dotstuff *d, struct sp_buf *out);

#endif
