/* link_store.h - the store behind link mode: SQLite, or PostgreSQL for
 * several viewer nodes.
 *
 * Backends: link_store_open() takes a path (SQLite, the embedded default) or a
 * postgresql:// / postgres:// URL (libpq; link_store_pg.c).  Both keep the
 * same data, the same guarantees and the same API; on PostgreSQL they hold
 * across every process and node on the database (link_store_pg.h).  What
 * follows describes the SQLite file.
 *
 * What it holds (and nothing else): per message, the message ciphertext (one
 * copy, shared by that message's links); per link, the link id (hex), its
 * message, the opaque key blob (link v2: sp_link2_record_new()'s record; v1:
 * sp_link_wrap_key()'s wrapped key), created and expiry times, max_views /
 * views, max_failed_attempts / failed attempts, a revoked flag, and (v2) the
 * sender and hint the page shows before the password; per pending v2 attempt,
 * its link, its id and its expiry; per reply capability (secure reply), the
 * SHA-256 of its token, its link, sender and expiry and its reply count; per
 * secure reply, the OpenPGP ciphertext as posted until the proxy delivered
 * it.  Never a password, a link secret or plaintext.
 *
 * The schema is versioned with PRAGMA user_version and migrated by a table of
 * steps (link_store.c); the database runs in WAL mode with secure_delete on,
 * a busy timeout, and every update inside one transaction.  Deletions really
 * delete: freed pages are zeroed and the WAL is truncated after deletes.
 *
 * Threads: one handle may be shared by any number of threads (calls are
 * serialised by a mutex).  Several handles, in one process or several, on the
 * same file are safe too: claim_view uses BEGIN IMMEDIATE, so with
 * max_views = 1 exactly one of any number of concurrent unlocks wins.
 *
 * Errors: functions return enum link_store_rc; on LINK_STORE_ERROR one line is
 * written into err (it never contains a blob).  The other results are outcomes,
 * not errors: they leave err alone, except LINK_STORE_EXISTS, which names the
 * link id in it.  Each prototype says which results it returns; a malformed
 * link id answers as an unknown one.
 */
#ifndef SP_LINK_STORE_H
#define SP_LINK_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "link_envelope.h"
#include "util.h"

/* The schema this code writes; older files are migrated on open, newer ones refused. */
#define LINK_STORE_SCHEMA_VERSION 3
/* A message id is 128 random bits in lowercase hex, like sp_random_id(). */
#define LINK_STORE_MSGID_HEXLEN 32
/* How long one call waits for another process's write lock before failing:
 * long enough for a sweep of a large store, short enough that an unlock does
 * not hang a browser. */
#define LINK_STORE_BUSY_TIMEOUT_MS 10000
/* PostgreSQL: connections one process keeps open to the database (one per
 * request in flight; requests beyond it wait for a free one). */
#define LINK_STORE_PG_POOL_MAX 8
/* PostgreSQL: how long a request waits for a free pooled connection. */
#define LINK_STORE_PG_POOL_WAIT_MS 10000
/* PostgreSQL: connecting to a database that does not answer gives up after
 * this (libpq connect_timeout; the URL may set its own). */
#define LINK_STORE_PG_CONNECT_TIMEOUT_S 5
/* PostgreSQL: a statement (a lock wait included) that takes longer is
 * cancelled by the server: a slow database is a 503, not a hung browser. */
#define LINK_STORE_PG_STATEMENT_TIMEOUT_MS 5000
/* PostgreSQL: a sweep's deletes may take longer on a large store. */
#define LINK_STORE_PG_SWEEP_TIMEOUT_MS 30000
/* PostgreSQL: unacknowledged data on a connection for this long (a server or
 * network gone silent) breaks it (libpq tcp_user_timeout). */
#define LINK_STORE_PG_TCP_TIMEOUT_MS 10000
/* PostgreSQL: a transaction left open this long by a stuck process is ended
 * by the server, so that its row locks do not block the other nodes. */
#define LINK_STORE_PG_IDLE_TXN_TIMEOUT_MS 10000

/* How long an attempt registered with link_store_attempt_begin() counts when
 * its process never ends it (it died): far longer than an attempt (a queued
 * Argon2id and a few statements), short enough that a dead node's attempts do
 * not hold a link for long. */
#define LINK_STORE_ATTEMPT_TTL_S 60

/* Link v2 (docs/formats.md "Unlock protocol"): evaluated attempts not yet
 * proven, per link.  Each counts as a failure while it is pending, so
 * max_failed bounds them too; this bound holds whatever max_failed is. */
#define LINK_STORE_PENDING_MAX 16
/* How long a v2 attempt may take between Evaluate and Unlock (Argon2id and
 * the OPRF in a slow phone's browser take seconds); an attempt not proven by
 * then stays counted as a failure and is swept. */
#define LINK_STORE_PENDING_TTL_S 600
/* The attempt id the viewer draws per v2 attempt (SP_LINK2_ATTEMPT_BYTES). */
#define LINK_STORE_ATTEMPT_BYTES 16
/* Sender and hint shown before the password (v2 params): one header's worth. */
#define LINK_STORE_SENDER_MAX 600
#define LINK_STORE_HINT_MAX 256

/* A wrapped key blob is ~100 bytes; anything this large is not one of ours. */
#define LINK_STORE_WRAPPED_MAX 4096
/* Links per message: one per link recipient, bounded like [proxy] max_recipients. */
#define LINK_STORE_LINKS_MAX 1000

enum link_store_rc {
	LINK_STORE_ERROR = -1,
	LINK_STORE_OK = 0,
	LINK_STORE_GONE = 1,   /* unknown, expired, revoked, used up or lost a race */
	LINK_STORE_EXISTS = 2, /* put: a link id is already in the store */
	LINK_STORE_BUSY = 3,   /* evaluate: every attempt the link has left is pending */
	LINK_STORE_WRONG = 4,  /* prove: the proof was wrong; the attempt stays counted */
	LINK_STORE_STALE = 5,  /* prove: no such pending attempt (proven already, expired) */
	LINK_STORE_FULL = 6,   /* reply_put: the capability has used its replies */
};

struct link_store;

/* One link of a message being stored. */
struct link_store_new_link {
	char id[SP_LINK_ID_HEXLEN + 1]; /* sp_link_id_hex() of the token's id */
	const void *wrapped;            /* sp_link_wrap_key() output, opaque */
	size_t wrapped_len;
};

/* A message with its links, stored in one transaction. */
struct link_store_new_msg {
	const void *ciphertext; /* sp_link_seal_message() output, opaque */
	size_t ciphertext_len;
	int64_t created;        /* unix seconds */
	int64_t expires;        /* unix seconds; the links answer 410 from then on */
	uint64_t max_views;     /* 0 = unlimited */
	uint64_t max_failed;    /* >= 1: failed unlocks before the link is destroyed */
	const char *sender;     /* optional: shown before the password (v2) */
	const char *hint;       /* optional: the password hint (v2) */
	const struct link_store_new_link *links;
	size_t n_links;
};

/* A link's state (no ciphertext). */
struct link_store_link {
	char id[SP_LINK_ID_HEXLEN + 1];
	char message_id[LINK_STORE_MSGID_HEXLEN + 1];
	unsigned char *wrapped; /* malloc'd; NULL from link_store_list() */
	size_t wrapped_len;
	int64_t created;
	int64_t expires;
	uint64_t max_views;
	uint64_t views;
	uint64_t max_failed;
	uint64_t failed;        /* settled failures; v2 attempts pending count on top */
	bool revoked;
	char sender[LINK_STORE_SENDER_MAX];
	char hint[LINK_STORE_HINT_MAX];
};

/* Is this [link] store value a PostgreSQL URL (postgresql:// or postgres://)? */
bool link_store_is_url(const char *store);

/* The store as it may be shown in logs and messages: a URL without its
 * password and query string; a path as it is.  Free with free(). */
char *link_store_label(const char *store);

/* Open (SQLite: creating the file 0600 and its directory 0700; PostgreSQL:
 * connecting once) and migrate.  Returns LINK_STORE_OK with *out, or
 * LINK_STORE_ERROR with err set and *out NULL. */
enum link_store_rc link_store_open(const char *path, struct link_store **out, char *err, size_t errsz);
void link_store_close(struct link_store *s);

/* Store a message and all its links atomically; msg_id (optional) receives the
 * new message id.  Returns LINK_STORE_OK, LINK_STORE_EXISTS with err set when
 * a link id is taken (nothing stored), or LINK_STORE_ERROR with err set (also
 * for a message that breaks the limits above). */
enum link_store_rc link_store_put(struct link_store *s, const struct link_store_new_msg *m,
                                  char msg_id[LINK_STORE_MSGID_HEXLEN + 1], char *err, size_t errsz);

/* A live link's state and wrapped blob (free with link_store_link_clear()).
 * A link that exists but is expired, revoked or used up is deleted (with its
 * message when no link remains) and answers LINK_STORE_GONE like an unknown one.
 * Returns LINK_STORE_OK with *out, or LINK_STORE_GONE, or LINK_STORE_ERROR with
 * err set (also for a damaged key blob); *out is zeroed but on OK. */
enum link_store_rc link_store_get(struct link_store *s, const char *id, int64_t now,
                                  struct link_store_link *out, char *err, size_t errsz);
void link_store_link_clear(struct link_store_link *l);

/* Count one view, atomically: when the link is live and has views left, views
 * is incremented, the message ciphertext is appended to `ciphertext`, and a link
 * that has now used its last view is deleted (with an orphaned message) in the
 * same transaction.  Returns LINK_STORE_OK with *views_out (optional) the new
 * count, LINK_STORE_GONE (unknown or dead: nothing appended), or
 * LINK_STORE_ERROR with err set (also when ciphertext's limit is too small). */
enum link_store_rc link_store_claim_view(struct link_store *s, const char *id, int64_t now,
                                         struct sp_buf *ciphertext, uint64_t *views_out,
                                         char *err, size_t errsz);

/* Record one failed unlock; at max_failed the link is destroyed (and its
 * message when no link remains): *destroyed (optional) says so.  Returns
 * LINK_STORE_OK (also for a link found dead, which is deleted then, with
 * *destroyed true), LINK_STORE_GONE for an unknown link, or LINK_STORE_ERROR
 * with err set. */
enum link_store_rc link_store_fail(struct link_store *s, const char *id, int64_t now,
                                   bool *destroyed, char *err, size_t errsz);

/* Unlock attempts under way on a link, across every process on the store, so
 * that parallel guesses spread over several viewer nodes cannot overshoot
 * max_failed either.  PostgreSQL: registers this attempt (it counts until
 * link_store_attempt_end(), or LINK_STORE_ATTEMPT_TTL_S after `now` if its
 * process dies) and gives in *others how many other live attempts the link
 * has; *ticket (> 0) goes to link_store_attempt_end().  The registration is
 * ordered with every change to the link (the same row locks).  SQLite:
 * *others = 0 and *ticket = 0 (the viewer counts its own process's attempts).
 * Returns LINK_STORE_OK, LINK_STORE_GONE (a malformed id, or on PostgreSQL no
 * such link: nothing registered, *others and *ticket 0), or (PostgreSQL)
 * LINK_STORE_ERROR with err set. */
enum link_store_rc link_store_attempt_begin(struct link_store *s, const char *id, int64_t now,
                                            uint64_t *others, int64_t *ticket, char *err,
                                            size_t errsz);
/* The attempt is over (counted as a failure or a view by then).  Best effort:
 * one that cannot be removed lapses after LINK_STORE_ATTEMPT_TTL_S. */
void link_store_attempt_end(struct link_store *s, int64_t ticket);

/* ---- link v2 (docs/formats.md "Unlock protocol") ----
 *
 * The store counts an attempt as a failure from Evaluate on: `failed` holds
 * the settled failures and every pending attempt counts on top of it, so a
 * link has max_failed - failed - pending attempts left.  A proven attempt is
 * removed uncounted; a wrong proof or an expired attempt moves into `failed`;
 * the link is destroyed when `failed` reaches max_failed, which can only
 * happen when nothing is pending any more. */

/* Evaluate: in one transaction, check that the link is live and has an
 * attempt left (failed + pending < max_failed, pending <
 * LINK_STORE_PENDING_MAX), and record `attempt` as pending until
 * now + LINK_STORE_PENDING_TTL_S.  out (optional) receives the link with its
 * record (free with link_store_link_clear()).  Returns LINK_STORE_OK,
 * LINK_STORE_BUSY (every attempt left is pending), LINK_STORE_GONE (dead or
 * unknown; a dead one is deleted), or LINK_STORE_ERROR with err set (also for
 * a damaged key blob); on any but OK nothing is recorded and *out is empty. */
enum link_store_rc link_store_evaluate(struct link_store *s, const char *id, int64_t now,
                                       const unsigned char attempt[LINK_STORE_ATTEMPT_BYTES],
                                       struct link_store_link *out, char *err, size_t errsz);
/* Prove: in one transaction, remove the pending `attempt` whatever the
 * outcome; then, when `valid` (the caller verified the proof against the
 * record), claim a view as link_store_claim_view() does (ciphertext appended,
 * *views_out, the last view burns the link) and return LINK_STORE_OK; when not
 * valid, count a failure (*destroyed when that was the last one) and return
 * LINK_STORE_WRONG.  LINK_STORE_STALE: no such attempt pending (proven once
 * already, or expired: an expired one is counted as a failure here, and
 * *destroyed says whether that was the last);
 * LINK_STORE_GONE: the link is unknown, dead, or its views are used up
 * (nothing appended); LINK_STORE_ERROR with err set: nothing changed. */
enum link_store_rc link_store_prove(struct link_store *s, const char *id, int64_t now,
                                    const unsigned char attempt[LINK_STORE_ATTEMPT_BYTES],
                                    bool valid, struct sp_buf *ciphertext, uint64_t *views_out,
                                    bool *destroyed, char *err, size_t errsz);
/* Pending v2 attempts of a link (tests, the outbox).  Returns LINK_STORE_OK
 * with *n (0 for an unknown link), or LINK_STORE_ERROR with err set and *n 0. */
enum link_store_rc link_store_pending_count(struct link_store *s, const char *id,
                                            unsigned *n, char *err, size_t errsz);

/* Delete now: the link, or (whole_message) every link of its message; the
 * message goes when no link remains.  Returns LINK_STORE_OK, LINK_STORE_GONE
 * if there was no such link, or LINK_STORE_ERROR with err set. */
enum link_store_rc link_store_revoke(struct link_store *s, const char *id, bool whole_message,
                                     char *err, size_t errsz);

/* Count expired pending v2 attempts as failures and remove them, then delete
 * expired, revoked and used-up links (those whose failures reached the cap
 * with them), then messages without links.  Returns LINK_STORE_OK with the
 * counts (optional) saying how many rows went, or LINK_STORE_ERROR with err
 * set. */
enum link_store_rc link_store_sweep(struct link_store *s, int64_t now, unsigned *n_links,
                                    unsigned *n_messages, char *err, size_t errsz);

/* Every link (wrapped == NULL), newest first, for the outbox and tools; free
 * with link_store_list_free().  Returns LINK_STORE_OK with *out and *n, or
 * LINK_STORE_ERROR with err set (*out NULL, *n 0). */
enum link_store_rc link_store_list(struct link_store *s, struct link_store_link **out, size_t *n,
                                   char *err, size_t errsz);
void link_store_list_free(struct link_store_link *v, size_t n);

/* Row counts (tests, `sealpost check`).  Returns LINK_STORE_OK with the
 * counts (each optional), or LINK_STORE_ERROR with err set. */
enum link_store_rc link_store_count(struct link_store *s, unsigned *n_links, unsigned *n_messages,
                                    char *err, size_t errsz);

/* ---- secure reply (docs/formats.md "Secure reply") ----
 *
 * An unlock hands the browser a random token; the store keeps only its
 * SHA-256 (a reply capability) with the link's id and sender, until the link
 * would have expired (a link burnt by its last view still takes replies).
 * Replies are kept as posted (OpenPGP ciphertext) until the proxy delivered
 * them. */

/* SHA-256 of a reply token. */
#define LINK_STORE_REPLY_CAP_BYTES 32
/* A reply's From and In-Reply-To as the browser gave them (one header line). */
#define LINK_STORE_REPLY_META_MAX 1000

struct link_store_reply_limits {
	uint64_t max_count;     /* replies per capability */
	int64_t min_interval_s; /* between two replies of one capability */
};

/* A stored reply (link_store_reply_take()). */
struct link_store_reply {
	int64_t id;
	char link_id[SP_LINK_ID_HEXLEN + 1];
	int64_t created;
	char sender[LINK_STORE_SENDER_MAX];        /* the link's sender, as stored at send time */
	char rcpt[LINK_STORE_REPLY_META_MAX];      /* untrusted: from the browser */
	char in_reply_to[LINK_STORE_REPLY_META_MAX]; /* untrusted: from the browser */
	unsigned char *body;
	size_t body_len;
};

/* Store a reply capability for link_id (sender: the link's; expires: the
 * link's).  Returns LINK_STORE_OK, or LINK_STORE_ERROR with err set. */
enum link_store_rc link_store_reply_cap_put(struct link_store *s, const char *link_id,
                                            const char *sender, int64_t expires,
                                            const unsigned char cap[LINK_STORE_REPLY_CAP_BYTES],
                                            char *err, size_t errsz);
/* Is cap a live capability of link_id (the viewer asks before it reads a
 * reply's body)?  Returns LINK_STORE_OK, LINK_STORE_GONE, or LINK_STORE_ERROR
 * with err set. */
enum link_store_rc link_store_reply_cap_check(struct link_store *s,
                                              const unsigned char cap[LINK_STORE_REPLY_CAP_BYTES],
                                              const char *link_id, int64_t now, char *err,
                                              size_t errsz);
/* Store one reply under a live capability, counted in the same transaction.
 * The capability must be link_id's.  Returns LINK_STORE_OK, LINK_STORE_GONE
 * (no such capability, or expired), LINK_STORE_FULL (its replies are used
 * up), LINK_STORE_BUSY (too soon after the last one), or LINK_STORE_ERROR with
 * err set; nothing is stored but on OK. */
enum link_store_rc link_store_reply_put(struct link_store *s,
                                        const unsigned char cap[LINK_STORE_REPLY_CAP_BYTES],
                                        const char *link_id, int64_t now,
                                        const struct link_store_reply_limits *lim,
                                        const char *rcpt, const char *in_reply_to,
                                        const void *body, size_t len, char *err, size_t errsz);
/* Up to max stored replies, oldest first (free with link_store_reply_free()).
 * Returns LINK_STORE_OK with *out and *n (0: none), or LINK_STORE_ERROR with
 * err set (*out NULL, *n 0). */
enum link_store_rc link_store_reply_take(struct link_store *s, size_t max,
                                         struct link_store_reply **out, size_t *n, char *err,
                                         size_t errsz);
/* Delete a delivered reply.  Returns LINK_STORE_OK, LINK_STORE_GONE (no such
 * reply), or LINK_STORE_ERROR with err set. */
enum link_store_rc link_store_reply_delete(struct link_store *s, int64_t id, char *err,
                                           size_t errsz);
void link_store_reply_free(struct link_store_reply *v, size_t n);

/* Is a link with this state usable at `now`? (not revoked, not expired, views left) */
bool link_store_link_live(const struct link_store_link *l, int64_t now);

/* Is `s` a 32-char lowercase hex id? */
bool link_store_id_valid(const char *s);

#endif
