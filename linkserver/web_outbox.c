/* web_outbox.c - in-memory list of recent link messages (see web_outbox.h). */
#include "web_outbox.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "util.h"

static pthread_mutex_t outbox_lock = PTHREAD_MUTEX_INITIALIZER;
static struct web_outbox_entry *outbox[WEB_OUTBOX_MAX]; /* [0] oldest */
static size_t outbox_n;

static char *
dup_opt(const char *s)
{
	return s ? sp_xstrdup(s) : NULL;
}

static void
entry_free(struct web_outbox_entry *e)
{
	size_t i;

	if (e == NULL)
		return;
	for (i = 0; i < e->n_rcpts; i++) {
		struct web_outbox_rcpt *r = &e->rcpts[i];
		sp_free_secret((char *)r->address);
		sp_free_secret((char *)r->form);
		sp_free_secret((char *)r->detail);
		sp_free_secret((char *)r->link_id);
		sp_free_secret((char *)r->url);
		sp_free_secret((char *)r->password);
	}
	free(e->rcpts);
	sp_free_secret(e->from);
	sp_free_secret(e->subject);
	sodium_memzero(e, sizeof *e);
	free(e);
}

static void
remove_at(size_t i)
{
	entry_free(outbox[i]);
	memmove(&outbox[i], &outbox[i + 1], (outbox_n - i - 1) * sizeof outbox[0]);
	outbox[--outbox_n] = NULL;
}

void
web_outbox_add(const char *from, const char *subject, int64_t sent, int64_t expires,
               const struct web_outbox_rcpt *r, size_t n)
{
	struct web_outbox_entry *e = sp_xcalloc(1, sizeof *e);
	size_t i, keep = n < WEB_OUTBOX_MAX_RCPTS ? n : WEB_OUTBOX_MAX_RCPTS;

	e->from = sp_xstrdup(from ? from : "");
	e->subject = dup_opt(subject);
	e->sent = sent;
	e->expires = expires;
	e->rcpts = sp_xcalloc(keep ? keep : 1, sizeof *e->rcpts);
	e->n_rcpts = keep;
	e->n_dropped = n - keep;
	for (i = 0; i < keep; i++) {
		e->rcpts[i].address = sp_xstrdup(r[i].address ? r[i].address : "");
		e->rcpts[i].form = sp_xstrdup(r[i].form ? r[i].form : "");
		e->rcpts[i].detail = dup_opt(r[i].detail);
		e->rcpts[i].link_id = dup_opt(r[i].link_id);
		e->rcpts[i].url = dup_opt(r[i].url);
		e->rcpts[i].password = dup_opt(r[i].password);
	}
	pthread_mutex_lock(&outbox_lock);
	if (outbox_n == WEB_OUTBOX_MAX)
		remove_at(0);
	outbox[outbox_n++] = e;
	pthread_mutex_unlock(&outbox_lock);
}

void
web_outbox_foreach(void (*fn)(const struct web_outbox_entry *e, void *arg), void *arg)
{
	size_t i;

	pthread_mutex_lock(&outbox_lock);
	for (i = outbox_n; i-- > 0;)
		fn(outbox[i], arg);
	pthread_mutex_unlock(&outbox_lock);
}

void
web_outbox_expire(int64_t now)
{
	size_t i;

	pthread_mutex_lock(&outbox_lock);
	for (i = outbox_n; i-- > 0;)
		if (outbox[i]->expires <= now)
			remove_at(i);
	pthread_mutex_unlock(&outbox_lock);
}

void
web_outbox_clear(void)
{
	pthread_mutex_lock(&outbox_lock);
	while (outbox_n)
		remove_at(outbox_n - 1);
	pthread_mutex_unlock(&outbox_lock);
}

size_t
web_outbox_count(void)
{
	size_t n;

	pthread_mutex_lock(&outbox_lock);
	n = outbox_n;
	pthread_mutex_unlock(&outbox_lock);
	return n;
}
