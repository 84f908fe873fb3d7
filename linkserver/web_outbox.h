/* web_outbox.h - the sender's recent link messages, in memory only.
 *
 * The proxy calls web_outbox_add() for every message it sends with link
 * recipients; the loopback-only outbox page lists them with the links and
 * passwords (view counts come from the store).  Links and passwords must never
 * be on disk in clear, so this list lives in this process only: bounded,
 * dropped when the links expire, and wiped when an entry is freed.  It is
 * process-wide (the proxy needs no handle to the viewer); thread-safe.
 */
#ifndef SP_WEB_OUTBOX_H
#define SP_WEB_OUTBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

/* The outbox's capability token: 256 random bits, in hex in the URL path
 * (/outbox/<token>) and in every form on the page. */
#define WEB_OUTBOX_TOKEN_BYTES 32
#define WEB_OUTBOX_TOKEN_HEXLEN (2 * WEB_OUTBOX_TOKEN_BYTES)
/* Its file in the state directory (mode 0600; made at the first start). */
#define WEB_OUTBOX_TOKEN_FILE "outbox.token"

/* Messages kept; the oldest is dropped (and wiped) first.  A page, not an archive. */
#define WEB_OUTBOX_MAX 100
/* Recipients kept per message (the proxy's max_recipients is larger; the page
 * says when some are not shown). */
#define WEB_OUTBOX_MAX_RCPTS 200

/* One recipient of a message and what they got.  Every field is copied. */
struct web_outbox_rcpt {
	const char *address;
	const char *form;     /* "link", "openpgp", "sodium", "plain" */
	const char *detail;   /* optional, e.g. the OpenPGP key fingerprint */
	const char *link_id;  /* link recipients: sp_link_id_hex() */
	const char *url;      /* link recipients: the whole link */
	const char *password; /* link recipients */
};

struct web_outbox_entry {
	char *from;
	char *subject;        /* optional */
	int64_t sent;         /* unix seconds */
	int64_t expires;      /* when its links expire; the entry goes then */
	struct web_outbox_rcpt *rcpts;
	size_t n_rcpts;
	size_t n_dropped;     /* recipients beyond WEB_OUTBOX_MAX_RCPTS */
};

void web_outbox_add(const char *from, const char *subject, int64_t sent, int64_t expires,
                    const struct web_outbox_rcpt *r, size_t n);
/* Call fn on each entry, newest first, under the list's lock (do not call back in). */
void web_outbox_foreach(void (*fn)(const struct web_outbox_entry *e, void *arg), void *arg);
/* Drop entries whose links have expired. */
void web_outbox_expire(int64_t now);
/* Drop (and wipe) everything: at shutdown. */
void web_outbox_clear(void);
size_t web_outbox_count(void);

/* The outbox token of this state directory, from WEB_OUTBOX_TOKEN_FILE.  With
 * create, a missing file is made first (and the directory, 0700); the file must
 * be a regular file that only its owner can read.  Returns 0 with out, or -1
 * with err set (which never holds the token) and out "". */
int web_outbox_token(const char *state_dir, bool create, char out[WEB_OUTBOX_TOKEN_HEXLEN + 1],
                     char *err, size_t errsz);
/* "http://127.0.0.1:8026/outbox/<token>" for [linkserver] outbox_listen;
 * malloc'd, never NULL. */
char *web_outbox_url(const struct sp_listen *l, const char *token);

#endif
