/* web_client.c - peer address checks and the wrong-password tarpit. */
#include "web_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "config.h"
#include "util.h"

static bool
v4_mapped_loopback(const struct in6_addr *a)
{
	return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
}

bool
web_addr_is_loopback(const struct sockaddr *sa)
{
	if (sa == NULL)
		return false;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)(const void *)sa;
		return (ntohl(s4->sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)(const void *)sa;
		return IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr) || v4_mapped_loopback(&s6->sin6_addr);
	}
	return false;
}

/* "host", "host:port", "[v6]:port" -> is the host part loopback? */
bool
web_host_is_loopback(const char *h)
{
	char buf[300], *p;

	if (h == NULL || strlen(h) >= sizeof buf)
		return false;
	sp_strlcpy(buf, h, sizeof buf);
	if (buf[0] == '[') {
		if ((p = strchr(buf, ']')) == NULL)
			return false;
		*p = '\0';
		return sp_host_is_loopback(buf + 1);
	}
	if ((p = strchr(buf, ':')) != NULL)
		*p = '\0';
	return sp_host_is_loopback(buf);
}

static void
key_v6(const struct in6_addr *a, char out[WEB_CLIENT_KEYLEN])
{
	struct in6_addr p = *a;

	if (IN6_IS_ADDR_V4MAPPED(a)) {
		struct in_addr v4;
		memcpy(&v4, a->s6_addr + 12, 4);
		inet_ntop(AF_INET, &v4, out, WEB_CLIENT_KEYLEN);
		return;
	}
	memset(p.s6_addr + 8, 0, 8);
	inet_ntop(AF_INET6, &p, out, WEB_CLIENT_KEYLEN - 4);
	strcat(out, "/64");
}

bool
web_client_key(const struct sockaddr *sa, const char *forwarded_for, char out[WEB_CLIENT_KEYLEN])
{
	struct in_addr a4;
	struct in6_addr a6;

	out[0] = '\0';
	if (forwarded_for != NULL && web_addr_is_loopback(sa)) {
		char buf[WEB_CLIENT_KEYLEN];
		sp_strlcpy(buf, forwarded_for, sizeof buf);
		sp_strstrip(buf);
		if (inet_pton(AF_INET, buf, &a4) == 1) {
			inet_ntop(AF_INET, &a4, out, WEB_CLIENT_KEYLEN);
			return true;
		}
		if (inet_pton(AF_INET6, buf, &a6) == 1) {
			key_v6(&a6, out);
			return true;
		}
	}
	if (sa == NULL)
		return false;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)(const void *)sa;
		inet_ntop(AF_INET, &s4->sin_addr, out, WEB_CLIENT_KEYLEN);
		return true;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)(const void *)sa;
		key_v6(&s6->sin6_addr, out);
		return true;
	}
	return false;
}

struct tarpit_client {
	unsigned failures;
	int64_t last_failure_ms;
	int64_t next_ms;     /* no attempt before this */
	int64_t touched_ms;  /* for eviction */
};

struct web_tarpit {
	pthread_mutex_t lock;
	GHashTable *clients; /* key string -> struct tarpit_client */
	unsigned max_clients;
};

int64_t
web_tarpit_delay(unsigned failures)
{
	int64_t d = WEB_TARPIT_BASE_MS;

	if (failures == 0)
		return 0;
	while (--failures > 0 && d < WEB_TARPIT_MAX_MS)
		d *= 2;
	return d < WEB_TARPIT_MAX_MS ? d : WEB_TARPIT_MAX_MS;
}

struct web_tarpit *
web_tarpit_new(unsigned max_clients)
{
	struct web_tarpit *t = sp_xcalloc(1, sizeof *t);

	pthread_mutex_init(&t->lock, NULL);
	t->clients = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	t->max_clients = max_clients ? max_clients : WEB_TARPIT_MAX_CLIENTS;
	return t;
}

void
web_tarpit_free(struct web_tarpit *t)
{
	if (t == NULL)
		return;
	g_hash_table_destroy(t->clients);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

static void
evict_oldest(struct web_tarpit *t)
{
	GHashTableIter it;
	gpointer k, v, oldest = NULL;
	int64_t when = INT64_MAX;

	g_hash_table_iter_init(&it, t->clients);
	while (g_hash_table_iter_next(&it, &k, &v)) {
		struct tarpit_client *c = v;
		if (c->touched_ms < when) {
			when = c->touched_ms;
			oldest = k;
		}
	}
	if (oldest)
		g_hash_table_remove(t->clients, oldest);
}

static struct tarpit_client *
lookup(struct web_tarpit *t, const char *key, int64_t now_ms, bool create)
{
	struct tarpit_client *c = g_hash_table_lookup(t->clients, key);

	if (c != NULL && c->failures > 0 && now_ms - c->last_failure_ms >= WEB_TARPIT_FORGET_MS) {
		c->failures = 0;
		c->next_ms = 0;
	}
	if (c == NULL && create) {
		if (g_hash_table_size(t->clients) >= t->max_clients)
			evict_oldest(t);
		c = g_new0(struct tarpit_client, 1);
		g_hash_table_insert(t->clients, g_strdup(key), c);
	}
	if (c != NULL)
		c->touched_ms = now_ms;
	return c;
}

int64_t
web_tarpit_enter(struct web_tarpit *t, const char *key, int64_t now_ms)
{
	struct tarpit_client *c;
	int64_t wait = 0;

	pthread_mutex_lock(&t->lock);
	c = lookup(t, key, now_ms, false);
	if (c != NULL && c->failures > 0) {
		int64_t at = c->next_ms > now_ms ? c->next_ms : now_ms;
		wait = at - now_ms;
		if (wait > WEB_TARPIT_HOLD_MAX_MS) {
			wait = -wait;
		} else {
			/* Reserve this slot: a parallel attempt waits one more delay. */
			c->next_ms = at + web_tarpit_delay(c->failures);
		}
	}
	pthread_mutex_unlock(&t->lock);
	return wait;
}

void
web_tarpit_failed(struct web_tarpit *t, const char *key, int64_t now_ms)
{
	struct tarpit_client *c;
	int64_t next;

	pthread_mutex_lock(&t->lock);
	c = lookup(t, key, now_ms, true);
	if (c->failures < 64)
		c->failures++;
	c->last_failure_ms = now_ms;
	next = now_ms + web_tarpit_delay(c->failures);
	if (next > c->next_ms)
		c->next_ms = next;
	pthread_mutex_unlock(&t->lock);
}

static gboolean
idle(gpointer k, gpointer v, gpointer arg)
{
	const struct tarpit_client *c = v;
	int64_t now_ms = *(const int64_t *)arg;

	return now_ms - c->touched_ms >= WEB_TARPIT_FORGET_MS && now_ms >= c->next_ms;
}

void
web_tarpit_expire(struct web_tarpit *t, int64_t now_ms)
{
	pthread_mutex_lock(&t->lock);
	g_hash_table_foreach_remove(t->clients, idle, &now_ms);
	pthread_mutex_unlock(&t->lock);
}
