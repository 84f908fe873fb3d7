/* reply_deliver.c - collect secure replies from the link store and queue them
 * for the link's sender as RFC 3156 PGP/MIME (reply_deliver.h). */
#include "reply_deliver.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>

#include <gmime/gmime.h>
#include <sodium.h>

#include "link_upload.h"
#include "log.h"
#include "pgp_packets.h"

/* The reply queued whose removal (from the store, or DELETE on the remote
 * viewer) failed: the next passes only retry the removal, so that a reply is
 * never queued twice by this process.  One is enough: both hand out replies
 * oldest first and a pass stops at the first failed removal, so the
 * remembered reply comes back first while it is there, and anything else
 * coming first means it is gone. */
struct reply_unremoved {
	bool have;
	int64_t id;
	/* BLAKE2b of link id and body: a viewer whose store was reset may give
	 * the id again to another reply, which must not be skipped */
	unsigned char digest[crypto_generichash_BYTES];
};

struct reply_collector {
	struct link_store *store;   /* embedded: the store; else NULL and: */
	const char *url;            /* [link] upload_url */
	const char *token_file;     /* [link] upload_token_file */
	struct queue *q;
	struct reply_unremoved unremoved;
	pthread_t tid;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop;
};

/* The one mailbox in a header value ("Name <a@b>" or "a@b"): its address,
 * printable ASCII with one '@' and nothing that could break a line or a
 * command; NULL otherwise. */
static char *
one_address(const char *value)
{
	InternetAddressList *l;
	InternetAddress *a;
	const char *addr;
	char *out = NULL;
	size_t i, n;

	if (value == NULL || value[0] == '\0')
		return NULL;
	l = internet_address_list_parse(NULL, value);
	if (l == NULL)
		return NULL;
	if (internet_address_list_length(l) != 1)
		goto out;
	a = internet_address_list_get_address(l, 0);
	if (!INTERNET_ADDRESS_IS_MAILBOX(a))
		goto out;
	addr = internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(a));
	n = addr ? strlen(addr) : 0;
	if (n < 3 || n > 254 || strchr(addr, '@') == NULL || strchr(addr, '@') != strrchr(addr, '@'))
		goto out;
	for (i = 0; i < n; i++)
		if (addr[i] <= 0x20 || addr[i] > 0x7e || addr[i] == '<' || addr[i] == '>')
			goto out;
	out = sp_xstrdup(addr);
out:
	g_object_unref(l);
	return out;
}

/* A Message-ID as the browser gave it ("id@host" or "<id@host>"): "<id@host>"
 * when it is one token of printable ASCII without brackets inside, else NULL. */
static char *
msgid_of(const char *v)
{
	size_t i, n;

	if (v == NULL)
		return NULL;
	n = strlen(v);
	if (n >= 2 && v[0] == '<' && v[n - 1] == '>') {
		v++;
		n -= 2;
	}
	if (n == 0 || n > 900 || memchr(v, '@', n) == NULL)
		return NULL;
	for (i = 0; i < n; i++)
		if (v[i] <= 0x20 || v[i] > 0x7e || v[i] == '<' || v[i] == '>')
			return NULL;
	return sp_xasprintf("<%.*s>", (int)n, v);
}

int
reply_build_mail(const struct link_store_reply *r, struct sp_buf *out, char **to, char *err,
                 size_t errsz)
{
	char *sender = one_address(r->sender), *rcpt = one_address(r->rcpt);
	char *irt = msgid_of(r->in_reply_to), *date;
	char boundary[33], mid[33];
	const char *domain;
	GDateTime *now;

	*to = NULL;
	if (sender == NULL) {
		sp_seterr(err, errsz, "reply %" PRId64 " (link %s): the link's sender is not one "
		          "address", r->id, r->link_id);
		free(rcpt);
		free(irt);
		return -1;
	}
	domain = strchr(sender, '@') + 1;
	sp_random_id(boundary);
	sp_random_id(mid);
	now = g_date_time_new_now_utc();
	date = g_mime_utils_header_format_date(now);
	g_date_time_unref(now);
	/* The outer header is the allow-list of docs/formats.md "Outer header
	 * fields"; the real subject and everything else are inside. */
	if (rcpt)
		sp_buf_printf(out, "From: <%s>\r\nReply-To: <%s>\r\n", rcpt, rcpt);
	else
		sp_buf_printf(out, "From: <%s>\r\n", sender);
	sp_buf_printf(out, "To: <%s>\r\nSubject: ...\r\nDate: %s\r\nMessage-ID: <%s@%s>\r\n", sender,
	              date, mid, domain);
	if (irt)
		sp_buf_printf(out, "In-Reply-To: %s\r\nReferences: %s\r\n", irt, irt);
	sp_buf_printf(out, "MIME-Version: 1.0\r\n"
	              "Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\";\r\n"
	              " boundary=\"sp-%s\"\r\n\r\n"
	              "This is an OpenPGP/MIME encrypted message (RFC 3156): a secure reply.\r\n"
	              "--sp-%s\r\n"
	              "Content-Type: application/pgp-encrypted\r\n"
	              "Content-Description: PGP/MIME version identification\r\n\r\n"
	              "Version: 1\r\n\r\n"
	              "--sp-%s\r\n"
	              "Content-Type: application/octet-stream; name=\"encrypted.asc\"\r\n"
	              "Content-Description: OpenPGP encrypted message\r\n"
	              "Content-Disposition: inline; filename=\"encrypted.asc\"\r\n\r\n",
	              boundary, boundary, boundary);
	sp_pgp_armor_encode(r->body, r->body_len, out);
	sp_buf_printf(out, "\r\n--sp-%s--\r\n", boundary);
	g_free(date);
	free(rcpt);
	free(irt);
	*to = sender;
	return 0;
}

/* Queue one reply.  0 queued, 1 never deliverable (drop it), -1 the queue
 * failed (keep it for the next pass). */
static int
queue_one(struct queue *q, const struct link_store_reply *r)
{
	struct queue_entry e = { 0 };
	struct sp_buf mail;
	struct sp_span span;
	struct sp_blob body = { .fd = -1 };
	char why[SP_ERRLEN], *to = NULL, *rc[1];
	int rv = -1;

	sp_buf_init(&mail, 0);
	if (reply_build_mail(r, &mail, &to, why, sizeof why) < 0) {
		sp_log_error("%s; the reply is dropped", why);
		rv = 1;
		goto out;
	}
	span.p = mail.data;
	span.n = mail.len;
	body.spans = &span;
	body.n_spans = 1;
	body.len = mail.len;
	rc[0] = to;
	e.created = sp_time();
	e.next_attempt = e.created;
	sp_strlcpy(e.form, "reply", sizeof e.form);
	e.mail_from = to;
	e.user = (char *)"";
	snprintf(e.txn, sizeof e.txn, "reply%" PRId64, r->id);
	e.rcpts = rc;
	e.n_rcpts = 1;
	if (queue_add(q, &e, &body, why, sizeof why) < 0) {
		sp_log_error("reply %" PRId64 " (link %s): cannot queue it: %s", r->id, r->link_id, why);
		goto out;
	}
	sp_log_info("reply %" PRId64 " (link %s): queued as %s to <%s> (%zu bytes)", r->id,
	            r->link_id, e.id, to, mail.len);
	rv = 0;
out:
	free(to);
	sp_buf_free(&mail);
	return rv;
}

static void
reply_digest(const struct link_store_reply *r, unsigned char d[crypto_generichash_BYTES])
{
	crypto_generichash_state st;

	crypto_generichash_init(&st, NULL, 0, crypto_generichash_BYTES);
	crypto_generichash_update(&st, (const unsigned char *)r->link_id, strlen(r->link_id) + 1);
	crypto_generichash_update(&st, r->body, r->body_len);
	crypto_generichash_final(&st, d, crypto_generichash_BYTES);
}

/* Is r the remembered reply?  If not, whatever was remembered is gone from
 * the store or viewer (see struct reply_unremoved) and is forgotten. */
static bool
unremoved_is(struct reply_unremoved *u, const struct link_store_reply *r)
{
	unsigned char d[crypto_generichash_BYTES];

	if (!u->have)
		return false;
	reply_digest(r, d);
	if (u->id == r->id && sodium_memcmp(u->digest, d, sizeof d) == 0)
		return true;
	u->have = false;
	return false;
}

/* After removing r: forget it, or (removed false) remember it. */
static void
unremoved_note(struct reply_unremoved *u, const struct link_store_reply *r, bool removed)
{
	u->have = !removed;
	if (!removed) {
		u->id = r->id;
		reply_digest(r, u->digest);
	}
}

/* A pass ends on a failed removal (err says which): with nothing queued it
 * is a failed look (-1: the caller logs it and waits REPLY_POLL_RETRY_MS, so
 * a viewer that cannot delete is not a log line every 2 s); else it is
 * logged here and the count returned. */
static int
unremoved_failed(int queued, const char *err)
{
	if (queued <= 0)
		return -1;
	sp_log_error("secure replies: %s", err);
	return queued;
}

int
reply_collect_once(struct link_store *store, struct queue *q, struct reply_unremoved *u,
                   char *err, size_t errsz)
{
	struct link_store_reply *v = NULL;
	size_t n = 0, i;
	int queued = 0;

	if (link_store_reply_take(store, REPLY_BATCH_MAX, &v, &n, err, errsz) != LINK_STORE_OK)
		return -1;
	if (n == 0)
		u->have = false; /* nothing left: not the remembered one either */
	for (i = 0; i < n; i++) {
		char why[SP_ERRLEN];
		bool removed;
		int rc;
		if (!unremoved_is(u, &v[i])) {
			if ((rc = queue_one(q, &v[i])) < 0)
				break; /* stays in the store for the next pass */
			queued += rc == 0;
		}
		/* GONE: someone else removed it; removed all the same */
		removed = link_store_reply_delete(store, v[i].id, why, sizeof why) != LINK_STORE_ERROR;
		unremoved_note(u, &v[i], removed);
		if (!removed) {
			sp_seterr(err, errsz, "reply %" PRId64 ": %s; it stays queued once", v[i].id, why);
			queued = unremoved_failed(queued, err);
			break; /* oldest first: the next pass starts with it */
		}
		sp_log_info("reply %" PRId64 ": removed from the store", v[i].id);
	}
	link_store_reply_free(v, n);
	if (queued)
		queue_kick(q);
	return queued;
}

int
reply_collect_remote_once(const char *url, const char *token_file, struct queue *q,
                          struct reply_unremoved *u, char *err, size_t errsz)
{
	int queued = 0, i;

	for (i = 0; i < REPLY_BATCH_MAX; i++) {
		struct link_store_reply *r = NULL;
		char why[SP_ERRLEN];
		bool removed;
		int got = link_upload_reply_next(url, token_file, &r, err, errsz), rc;
		if (got < 0) {
			if (queued)
				sp_log_error("secure replies: %s", err); /* the caller sees a count */
			queued = queued ? queued : -1;
			break;
		}
		if (got == 0) {
			u->have = false; /* nothing left: not the remembered one either */
			break;
		}
		if (!unremoved_is(u, r)) {
			if ((rc = queue_one(q, r)) < 0) {
				link_store_reply_free(r, 1);
				break; /* the queue failed: stays on the viewer for the next pass */
			}
			queued += rc == 0;
		}
		/* 404: someone else removed it; removed all the same */
		removed = link_upload_reply_delete(url, token_file, r->id, why, sizeof why) >= 0;
		unremoved_note(u, r, removed);
		if (!removed) {
			sp_seterr(err, errsz, "reply %" PRId64 ": cannot delete it on the viewer: %s; "
			          "it stays queued once", r->id, why);
			queued = unremoved_failed(queued, err);
			link_store_reply_free(r, 1);
			break; /* the viewer would hand out the same reply again */
		}
		sp_log_info("reply %" PRId64 ": removed from the viewer", r->id);
		link_store_reply_free(r, 1);
	}
	if (queued > 0)
		queue_kick(q);
	return queued;
}

static void *
collector_main(void *arg)
{
	struct reply_collector *rc = arg;
	char err[SP_ERRLEN];

	pthread_mutex_lock(&rc->lock);
	while (!rc->stop) {
		struct timespec ts;
		int64_t wait = REPLY_POLL_INTERVAL_MS;
		pthread_mutex_unlock(&rc->lock);
		if ((rc->store ? reply_collect_once(rc->store, rc->q, &rc->unremoved, err, sizeof err)
		               : reply_collect_remote_once(rc->url, rc->token_file, rc->q,
		                                           &rc->unremoved, err, sizeof err)) < 0) {
			sp_log_error("secure replies: %s; next look in %d s", err,
			             REPLY_POLL_RETRY_MS / 1000);
			wait = REPLY_POLL_RETRY_MS;
		}
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += wait / 1000;
		ts.tv_nsec += (long)(wait % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_mutex_lock(&rc->lock);
		while (!rc->stop && pthread_cond_timedwait(&rc->cond, &rc->lock, &ts) != ETIMEDOUT)
			;
	}
	pthread_mutex_unlock(&rc->lock);
	return NULL;
}

int
reply_collector_start(struct link_store *store, const char *url, const char *token_file,
                      struct queue *q, struct reply_collector **out, char *err, size_t errsz)
{
	struct reply_collector *rc = sp_xcalloc(1, sizeof *rc);

	rc->store = store;
	rc->url = url;
	rc->token_file = token_file;
	rc->q = q;
	pthread_mutex_init(&rc->lock, NULL);
	pthread_cond_init(&rc->cond, NULL);
	if (pthread_create(&rc->tid, NULL, collector_main, rc) != 0) {
		sp_seterr(err, errsz, "cannot start the secure reply collector");
		pthread_cond_destroy(&rc->cond);
		pthread_mutex_destroy(&rc->lock);
		free(rc);
		return -1;
	}
	*out = rc;
	return 0;
}

void
reply_collector_stop(struct reply_collector *rc)
{
	if (rc == NULL)
		return;
	pthread_mutex_lock(&rc->lock);
	rc->stop = true;
	pthread_cond_signal(&rc->cond);
	pthread_mutex_unlock(&rc->lock);
	pthread_join(rc->tid, NULL);
	pthread_cond_destroy(&rc->cond);
	pthread_mutex_destroy(&rc->lock);
	free(rc);
}
