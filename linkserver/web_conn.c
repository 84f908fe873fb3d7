/* web_conn.c - per-client connection counts and request deadlines (see web_conn.h). */
#include "web_conn.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <glib.h>

#include "util.h"

struct web_conn {
	int fd;
	int64_t deadline_ms;   /* 0: none (the request is being answered) */
	bool reaped;           /* shut down already */
	char key[WEB_CLIENT_KEYLEN];
	struct web_conn *prev, *next;
};

struct web_conns {
	pthread_mutex_t lock;
	GHashTable *counts;    /* key -> GUINT_TO_POINTER(connections) */
	struct web_conn *head; /* every open connection */
	unsigned per_client_max;
	int64_t budget_ms;
};

struct web_conns *
web_conns_new(unsigned per_client_max, int64_t budget_ms)
{
	struct web_conns *cs = sp_xcalloc(1, sizeof *cs);

	pthread_mutex_init(&cs->lock, NULL);
	cs->counts = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	cs->per_client_max = per_client_max;
	cs->budget_ms = budget_ms;
	return cs;
}

void
web_conns_free(struct web_conns *cs)
{
	struct web_conn *c, *next;

	if (cs == NULL)
		return;
	for (c = cs->head; c; c = next) {
		next = c->next;
		free(c);
	}
	g_hash_table_destroy(cs->counts);
	pthread_mutex_destroy(&cs->lock);
	free(cs);
}

bool
web_conns_key(const struct sockaddr *sa, char out[WEB_CLIENT_KEYLEN])
{
	/* No forwarded-for here: a connection is held by the peer itself. */
	return web_client_key(sa, NULL, NULL, out);
}

static void
key_of(const struct sockaddr *sa, char out[WEB_CLIENT_KEYLEN])
{
	if (!web_conns_key(sa, out))
		sp_strlcpy(out, "unknown", WEB_CLIENT_KEYLEN);
}

static unsigned
count_locked(struct web_conns *cs, const char *key)
{
	return GPOINTER_TO_UINT(g_hash_table_lookup(cs->counts, key));
}

bool
web_conns_admit(struct web_conns *cs, const struct sockaddr *sa)
{
	return web_conns_count(cs, sa) < cs->per_client_max;
}

struct web_conn *
web_conns_open(struct web_conns *cs, const struct sockaddr *sa, int fd, int64_t now_ms)
{
	struct web_conn *c = sp_xcalloc(1, sizeof *c);

	c->fd = fd;
	c->deadline_ms = now_ms + cs->budget_ms;
	key_of(sa, c->key);
	pthread_mutex_lock(&cs->lock);
	g_hash_table_replace(cs->counts, g_strdup(c->key),
	                     GUINT_TO_POINTER(count_locked(cs, c->key) + 1));
	c->next = cs->head;
	if (cs->head)
		cs->head->prev = c;
	cs->head = c;
	pthread_mutex_unlock(&cs->lock);
	return c;
}

void
web_conns_close(struct web_conns *cs, struct web_conn *c)
{
	unsigned n;

	if (c == NULL)
		return;
	pthread_mutex_lock(&cs->lock);
	n = count_locked(cs, c->key);
	if (n <= 1)
		g_hash_table_remove(cs->counts, c->key);
	else
		g_hash_table_replace(cs->counts, g_strdup(c->key), GUINT_TO_POINTER(n - 1));
	if (c->prev)
		c->prev->next = c->next;
	else
		cs->head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	pthread_mutex_unlock(&cs->lock);
	free(c);
}

/* Set c's deadline (0: none); only_later: only push an armed one later. */
static void
set_deadline(struct web_conns *cs, struct web_conn *c, int64_t deadline_ms, bool only_later)
{
	if (c == NULL)
		return;
	pthread_mutex_lock(&cs->lock);
	if (!only_later || (c->deadline_ms != 0 && deadline_ms > c->deadline_ms))
		c->deadline_ms = deadline_ms;
	pthread_mutex_unlock(&cs->lock);
}

void
web_conns_answering(struct web_conns *cs, struct web_conn *c)
{
	set_deadline(cs, c, 0, false);
}

void
web_conns_rearm(struct web_conns *cs, struct web_conn *c, int64_t now_ms)
{
	set_deadline(cs, c, now_ms + cs->budget_ms, false);
}

void
web_conns_extend(struct web_conns *cs, struct web_conn *c, int64_t deadline_ms)
{
	set_deadline(cs, c, deadline_ms, true);
}

unsigned
web_conns_reap(struct web_conns *cs, int64_t now_ms)
{
	struct web_conn *c;
	unsigned n = 0;

	if (cs == NULL)
		return 0;
	/* Under the lock: a connection is forgotten (web_conns_close) before
	 * libmicrohttpd closes its socket, so fd is still this connection's. */
	pthread_mutex_lock(&cs->lock);
	for (c = cs->head; c; c = c->next) {
		if (c->reaped || c->deadline_ms == 0 || c->deadline_ms > now_ms)
			continue;
		shutdown(c->fd, SHUT_RDWR);
		c->reaped = true;
		n++;
	}
	pthread_mutex_unlock(&cs->lock);
	return n;
}

unsigned
web_conns_count(struct web_conns *cs, const struct sockaddr *sa)
{
	char key[WEB_CLIENT_KEYLEN];
	unsigned n;

	key_of(sa, key);
	pthread_mutex_lock(&cs->lock);
	n = count_locked(cs, key);
	pthread_mutex_unlock(&cs->lock);
	return n;
}

bool
web_conns_idle(struct web_conns *cs)
{
	bool idle;

	if (cs == NULL)
		return true;
	pthread_mutex_lock(&cs->lock);
	idle = cs->head == NULL;
	pthread_mutex_unlock(&cs->lock);
	return idle;
}
