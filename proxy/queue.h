/* queue.h - the durable outbound queue.
 *
 * Holds only what is ready to leave: encrypted copies (and DSNs, which carry
 * no message text), never the client's plaintext.  One entry is two files:
 *   msg/<id>  the copy, written once;
 *   env/<id>  its envelope (sender, remaining recipients, attempts, next try),
 *             rewritten atomically after each attempt.
 * Both are written under tmp/, fsync'd, renamed into place, and the directory
 * fsync'd, so an entry survives a crash or kill -9 as soon as queue_add
 * returns.  An entry exists iff env/<id> exists; a msg/ without env/ is
 * leftover and removed at open.  Delivering an entry holds flock() on its
 * env/ file, so the runner and `sealpost queue` never deliver it twice.
 */
#ifndef SP_QUEUE_H
#define SP_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "message.h"
#include "util.h"

/* An envelope file is a few lines per recipient; anything bigger is damage. */
#define QUEUE_ENV_MAX (256 * 1024)
#define QUEUE_OWNER_WAIT_MS 30000
/* Copies are written in pieces of this size (no second copy in memory). */
#define QUEUE_COPY_CHUNK (256 * 1024)

struct queue_entry {
	char id[33];
	int64_t created;
	int64_t next_attempt;
	unsigned attempts;
	char form[16];            /* openpgp | sodium | link | dsn | receipt */
	bool eightbit;
	bool smtputf8;
	char *mail_from;          /* "" = null sender (DSNs) */
	char *user;               /* AUTH passthrough user whose credentials relay it; "" = configured */
	char txn[17];             /* the transaction id in the logs */
	char **rcpts;
	size_t n_rcpts;
	char last_error[400];
	size_t size;              /* bytes of msg/<id> (list only) */
};

struct queue;

/* owner: the proxy, which must be the only one (waits QUEUE_OWNER_WAIT_MS for
 * a running `sealpost queue` to finish, then fails if another proxy holds it).
 * Like every function here that takes err: returns 0, or -1 with err set. */
int queue_open(const char *dir, bool owner, struct queue **out, char *err, size_t errsz);
void queue_close(struct queue *q);
/* The directory the queue was opened on. */
const char *queue_dir(const struct queue *q);

/* Durable when it returns 0.  e->id is filled in. */
int queue_add(struct queue *q, struct queue_entry *e, const struct sp_blob *body, char *err, size_t errsz);
/* Every entry (envelopes only), oldest first. */
int queue_list(struct queue *q, struct queue_entry **out, size_t *n, char *err, size_t errsz);
void queue_entries_free(struct queue_entry *v, size_t n);
void queue_entry_clear(struct queue_entry *e);

/* Lock an entry for delivery (non-blocking).  Reloads its envelope under the
 * lock.  Returns 0, or -1 (no err) when it is gone, busy or unreadable. */
int queue_lock(struct queue *q, const char *id, struct queue_entry *e, int *lockfd);
void queue_unlock(int lockfd);
/* The copy of a locked entry, as an open file (read it with pread). */
int queue_open_data(struct queue *q, const char *id, int *fd, size_t *len, char *err, size_t errsz);
/* Rewrite the envelope (atomically) / remove the entry; call with the lock. */
int queue_update(struct queue *q, const struct queue_entry *e, char *err, size_t errsz);
int queue_remove(struct queue *q, const char *id, char *err, size_t errsz);

/* Wake whoever waits in queue_wait (the runner) / wait up to timeout_ms. */
void queue_kick(struct queue *q);
void queue_wait(struct queue *q, int64_t timeout_ms);

/* The wait after `attempts` failed attempts: min, doubling, at most max
 * ([queue] min_backoff / max_backoff), in their unit. */
int64_t queue_backoff(unsigned attempts, int64_t min, int64_t max);

#endif
