/* reply_deliver.h - secure reply, the proxy's half (docs/formats.md "Secure
 * reply"): replies the viewer stored (OpenPGP ciphertext, encrypted in the
 * recipient's browser to the sender's key) are collected from the link store
 * and queued, through the same queue and upstream as every other copy, to the
 * link's sender as RFC 3156 PGP/MIME (a remote viewer's over the upload API).  The proxy never holds a key that opens
 * them.  A reply is deleted from the store once its mail is in the queue
 * (durable from then on).
 *
 * Routing is the store's: the envelope sender and the one recipient are the
 * address the link was sent from; what the browser gave (its From and
 * In-Reply-To) only fills header fields, checked to be one harmless line. */
#ifndef SP_REPLY_DELIVER_H
#define SP_REPLY_DELIVER_H

#include <stddef.h>

#include "link_store.h"
#include "queue.h"
#include "util.h"

/* How often `sealpost run` looks for new replies in the store. */
#define REPLY_POLL_INTERVAL_MS 2000
/* After a failed look (the store or the remote viewer unavailable): the next
 * one waits this long, so that an outage is one log line per half minute. */
#define REPLY_POLL_RETRY_MS 30000
/* Replies taken from the store per look (the rest wait for the next). */
#define REPLY_BATCH_MAX 16

struct reply_collector;
struct reply_unremoved;

/* The mail for one reply (CRLF line endings, not dot-stuffed), appended to
 * out.  Returns 0 with *to the bare address of the link's sender (free()),
 * or -1 with err set when the stored sender is not one address (*to NULL,
 * out unchanged). */
int reply_build_mail(const struct link_store_reply *r, struct sp_buf *out, char **to, char *err,
                     size_t errsz);

/* One pass: queue the stored replies, oldest first, deleting each queued one
 * from the store; the pass ends at the first that cannot be queued or
 * deleted (logged; the next pass starts with it).  The reply u remembers
 * (queued before, its removal failed) is not queued again, only removed.
 * Returns how many were queued (0 or more), or -1 with err set when the
 * store cannot be read or, with nothing queued, a removal failed.  One that
 * can never be delivered is logged and deleted. */
int reply_collect_once(struct link_store *store, struct queue *q, struct reply_unremoved *u,
                       char *err, size_t errsz);

/* The same for a remote viewer ([link] upload_url): fetch replies over the
 * upload API with the bearer token, delete each there once queued.  Returns
 * as reply_collect_once(), -1 with err set when the first fetch fails; a
 * fetch that fails after some were queued is logged here and ends the pass
 * with their count. */
int reply_collect_remote_once(const char *url, const char *token_file, struct queue *q,
                              struct reply_unremoved *u, char *err, size_t errsz);

/* A thread running one of them every REPLY_POLL_INTERVAL_MS: on store when
 * it is not NULL (embedded viewer), else on the remote viewer of url.
 * Returns 0 with *out (stop it with reply_collector_stop()), or -1 with err
 * set when the thread cannot start. */
int reply_collector_start(struct link_store *store, const char *url, const char *token_file,
                          struct queue *q, struct reply_collector **out, char *err,
                          size_t errsz);
void reply_collector_stop(struct reply_collector *rc);

#endif
