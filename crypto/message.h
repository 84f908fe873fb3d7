/* message.h - the values that flow down the data path:
 *   accept (envelope + data) -> policy (a form per recipient) ->
 *   compose (one copy per form, per Bcc recipient) -> relay.
 */
#ifndef SP_MESSAGE_H
#define SP_MESSAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "util.h"

/* Strongest first: the policy tries them in this order. */
enum sp_form {
	SP_FORM_PGP,
	SP_FORM_SODIUM,
	SP_FORM_LINK,
	SP_FORM_PLAIN,
	SP_FORM_COUNT
};

/* "openpgp", "sodium", "link", "plain" ("none" out of range): a static string. */
const char *sp_form_name(enum sp_form f);

struct sp_rcpt {
	char *addr;
	enum sp_form form;
	char detail[160];     /* OpenPGP fingerprint, sodium key, link id: for logs and receipts */
	bool bcc;             /* not named in To/Cc: gets a copy of its own */
	char *note;           /* for the delivery report: where a discovered key came from, or a
	                       * key change that moved this recipient to a weaker form; NULL = none */
};

struct sp_envelope {
	char id[17];          /* transaction id in logs */
	char *mail_from;      /* "" for the null sender <> */
	bool smtputf8;        /* MAIL ... SMTPUTF8 */
	bool body_8bit;       /* MAIL ... BODY=8BITMIME */
	struct sp_rcpt *rcpts;
	size_t n_rcpts;
	char *message_id;     /* the client's Message-ID (for DSNs), set by compose */
	char *subject;        /* decoded Subject, for the loopback outbox page only */
	int64_t arrival;      /* when the message was accepted */
};

void sp_envelope_init(struct sp_envelope *e);
void sp_envelope_add_rcpt(struct sp_envelope *e, const char *addr, enum sp_form form, const char *detail);
void sp_envelope_free(struct sp_envelope *e);
/* Set (replace) the note of recipient i. */
void sp_envelope_set_note(struct sp_envelope *e, size_t i, const char *note);

/* Bytes to send, without copying them again: pieces of memory, or a file. */
struct sp_span {
	const char *p;
	size_t n;
};

struct sp_blob {
	const struct sp_span *spans;   /* memory pieces, in order (when fd < 0) */
	size_t n_spans;
	int fd;                        /* or a spool file, read from offset 0 */
	size_t len;                    /* total bytes */
};

/* Messages above this size get their encrypted copies built into an
 * anonymous spool file (ciphertext only) instead of memory: a 25 MB message
 * then needs one copy of itself in RAM, not four. */
#define SP_SPOOL_THRESHOLD (1024 * 1024)

/* One message to send upstream: what, and to whom.  Its bytes (CRLF line
 * endings, not dot-stuffed) are in exactly one of: data, spans (pieces of the
 * received message: the unencrypted form, no copy), or spool_fd. */
struct sp_copy {
	enum sp_form form;
	size_t *rcpts;        /* indexes into the envelope's rcpts */
	size_t n_rcpts;
	struct sp_buf data;
	struct sp_span *spans;
	size_t n_spans;
	int spool_fd;         /* -1, or an anonymous file holding the copy */
	size_t spool_len;
	bool eightbit;        /* contains 8-bit bytes: needs 8BITMIME upstream */
	bool smtputf8;        /* needs SMTPUTF8 upstream */
	char *to_sender;      /* a receipt: goes to this address (the sender), no rcpts */
};

struct sp_link_bundle;

struct sp_copies {
	struct sp_copy *v;
	size_t n;
	struct sp_link_bundle *link;   /* link mode: what the proxy publishes first */
	/* Frees link; set by whoever sets link (compose.c, with link_copy.c's
	 * sp_link_bundle_free), so that this file need not know the bundle. */
	void (*link_free)(struct sp_link_bundle *link);
};

/* A new empty copy at the end of c (never NULL: aborts when out of memory). */
struct sp_copy *sp_copies_add(struct sp_copies *c, enum sp_form form);
/* A view of the copy's bytes; `one` is storage for a single span. */
void sp_copy_blob(const struct sp_copy *cp, struct sp_blob *b, struct sp_span *one);
/* The copy's length in bytes. */
size_t sp_copy_len(const struct sp_copy *cp);
/* Read up to n bytes at off from a blob; returns bytes read, -1 on error. */
ssize_t sp_blob_read(const struct sp_blob *b, size_t off, void *buf, size_t n);
/* Does the blob have a byte >= 0x80? */
bool sp_blob_has_8bit(const struct sp_blob *b);
void sp_copy_add_rcpt(struct sp_copy *c, size_t rcpt);
void sp_copies_free(struct sp_copies *c);

#endif
