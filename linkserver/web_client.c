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
#include "net.h"
#include "util.h"

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
		return sp_net_host_is_loopback(buf + 1);
	}
	if ((p = strchr(buf, ':')) != NULL)
		*p = '\0';
	return sp_net_host_is_loopback(buf);
}

/* The key of an address in 16-byte form (IPv4 mapped). */
static void
key_of(const unsigned char a[16], char out[WEB_CLIENT_KEYLEN])
{
	static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	struct in6_addr p;

	if (memcmp(a, mapped, sizeof mapped) == 0) {
		struct in_addr v4;
		memcpy(&v4, a + 12, 4);
		inet_ntop(AF_INET, &v4, out, WEB_CLIENT_KEYLEN);
		return;
	}
	memcpy(p.s6_addr, a, 16);
	memset(p.s6_addr + 8, 0, 8);
	inet_ntop(AF_INET6, &p, out, WEB_CLIENT_KEYLEN - 4);
	strcat(out, "/64");
}

/* One forwarding entry ("192.0.2.1", "192.0.2.1:4711", "2001:db8::1",
 * "[2001:db8::1]:4711", quoted or not, blanks around) into 16-byte form. */
static bool
entry_addr(const char *s, size_t len, unsigned char out[16])
{
	char buf[INET6_ADDRSTRLEN + 16], *p, *e;

	while (len > 0 && (*s == ' ' || *s == '\t')) {
		s++;
		len--;
	}
	while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
		len--;
	if (len >= 2 && s[0] == '"' && s[len - 1] == '"') {
		s++;
		len -= 2;
	}
	if (len == 0 || len >= sizeof buf)
		return false;
	memcpy(buf, s, len);
	buf[len] = '\0';
	p = buf;
	if (*p == '[') {
		if ((e = strchr(p, ']')) == NULL || (e[1] != '\0' && e[1] != ':'))
			return false;
		*e = '\0';
		p++;
		return strchr(p, ':') != NULL && sp_addr_parse(p, out);
	}
	/* IPv4 with a port: exactly one colon.  Bare IPv6 has two or more. */
	if ((e = strchr(p, ':')) != NULL && strchr(e + 1, ':') == NULL)
		*e = '\0';
	return sp_addr_parse(p, out);
}

/* The for= value of one Forwarded element ("for=1.2.3.4;proto=https"). */
static bool
forwarded_for(const char *el, size_t len, unsigned char out[16])
{
	const char *p = el, *end = el + len;

	while (p < end) {
		const char *semi = memchr(p, ';', (size_t)(end - p));
		const char *pe = semi ? semi : end;
		while (p < pe && (*p == ' ' || *p == '\t'))
			p++;
		if (pe - p > 4 && g_ascii_strncasecmp(p, "for=", 4) == 0)
			return entry_addr(p + 4, (size_t)(pe - p - 4), out);
		p = semi ? semi + 1 : end;
	}
	return false;
}

/* Walk a comma-separated header from the right (see web_client_key()). */
static void
walk(const char *h, bool forwarded, const struct sp_net_list *trusted, unsigned char cand[16])
{
	const char *end = h + strlen(h);
	unsigned hops;

	for (hops = 0; hops < WEB_FORWARDED_MAX_HOPS && end > h; hops++) {
		const char *start = end;
		unsigned char a[16];
		bool ok;

		while (start > h && start[-1] != ',')
			start--;
		ok = forwarded ? forwarded_for(start, (size_t)(end - start), a) :
		                 entry_addr(start, (size_t)(end - start), a);
		if (!ok)
			return;
		memcpy(cand, a, 16);
		if (!sp_net_list_contains(trusted, cand))
			return;
		end = start > h ? start - 1 : h;
	}
}

bool
web_client_key(const struct sockaddr *sa, const struct sp_net_list *trusted,
               const struct web_forwarded *fw, char out[WEB_CLIENT_KEYLEN])
{
	unsigned char cand[16];

	out[0] = '\0';
	if (sa == NULL)
		return false;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)(const void *)sa;
		memset(cand, 0, 10);
		cand[10] = cand[11] = 0xff;
		memcpy(cand + 12, &s4->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)(const void *)sa;
		memcpy(cand, s6->sin6_addr.s6_addr, 16);
	} else {
		return false;
	}
	if (fw != NULL && sp_net_list_contains(trusted, cand)) {
		if (fw->xff != NULL) {
			walk(fw->xff, false, trusted, cand);
		} else if (fw->forwarded != NULL) {
			walk(fw->forwarded, true, trusted, cand);
		} else if (fw->real_ip != NULL) {
			unsigned char a[16];
			if (entry_addr(fw->real_ip, strlen(fw->real_ip), a))
				memcpy(cand, a, 16);
		}
	}
	key_of(cand, out);
	return true;
}

struct tarpit_link {
	char id[SP_LINK_ID_HEXLEN + 1];
	unsigned failures;
};

struct tarpit_client {
	unsigned failures;
	int64_t last_failure_ms;
	int64_t next_ms;     /* the next attempt's turn */
	int64_t touched_ms;  /* for eviction */
	/* Where the failures were made, most recent first (for succeeded()). */
	struct tarpit_link links[WEB_TARPIT_LINKS_PER_CLIENT];
};

struct web_tarpit {
	pthread_mutex_t lock;
	GHashTable *clients; /* key string -> struct tarpit_client */
	unsigned max_clients;
	GHashTable *attempts; /* link id -> attempts under way (GUINT_TO_POINTER) */
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
	t->attempts = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	t->max_clients = max_clients ? max_clients : WEB_TARPIT_MAX_CLIENTS;
	return t;
}

void
web_tarpit_free(struct web_tarpit *t)
{
	if (t == NULL)
		return;
	g_hash_table_destroy(t->clients);
	g_hash_table_destroy(t->attempts);
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

static void
forget(struct tarpit_client *c)
{
	c->failures = 0;
	c->next_ms = 0;
	memset(c->links, 0, sizeof c->links);
}

static struct tarpit_client *
lookup(struct web_tarpit *t, const char *key, int64_t now_ms, bool create)
{
	struct tarpit_client *c = g_hash_table_lookup(t->clients, key);

	if (c != NULL && c->failures > 0 && now_ms - c->last_failure_ms >= WEB_TARPIT_FORGET_MS)
		forget(c);
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
			/* Reserve this turn: a parallel attempt waits one more delay. */
			c->next_ms = at + web_tarpit_delay(c->failures);
		}
	}
	pthread_mutex_unlock(&t->lock);
	return wait;
}

/* The slot of link_id in c->links, or NULL. */
static struct tarpit_link *
client_link(struct tarpit_client *c, const char *link_id)
{
	size_t i;

	for (i = 0; i < SP_ARRAY_LEN(c->links); i++)
		if (c->links[i].failures > 0 && strcmp(c->links[i].id, link_id) == 0)
			return &c->links[i];
	return NULL;
}

int64_t
web_tarpit_failed(struct web_tarpit *t, const char *key, const char *link_id, int64_t now_ms)
{
	struct tarpit_client *c;
	struct tarpit_link *l, keep;
	int64_t next, d;

	pthread_mutex_lock(&t->lock);
	c = lookup(t, key, now_ms, true);
	if (c->failures < 64)
		c->failures++;
	c->last_failure_ms = now_ms;
	d = web_tarpit_delay(c->failures);
	next = now_ms + d;
	if (next > c->next_ms)
		c->next_ms = next;
	/* Move (or add) this link to the front; the oldest falls off the end and its
	 * failures stay counted, only no longer attributed. */
	if ((l = client_link(c, link_id)) != NULL) {
		keep = *l;
		memmove(&c->links[1], &c->links[0], (size_t)(l - c->links) * sizeof *l);
	} else {
		memset(&keep, 0, sizeof keep);
		sp_strlcpy(keep.id, link_id, sizeof keep.id);
		memmove(&c->links[1], &c->links[0], (SP_ARRAY_LEN(c->links) - 1) * sizeof c->links[0]);
	}
	if (keep.failures < 64)
		keep.failures++;
	c->links[0] = keep;
	pthread_mutex_unlock(&t->lock);
	return d;
}

void
web_tarpit_succeeded(struct web_tarpit *t, const char *key, const char *link_id, int64_t now_ms)
{
	struct tarpit_client *c;
	struct tarpit_link *l;

	pthread_mutex_lock(&t->lock);
	c = lookup(t, key, now_ms, false);
	if (c != NULL && (l = client_link(c, link_id)) != NULL) {
		c->failures = c->failures > l->failures ? c->failures - l->failures : 0;
		memset(l, 0, sizeof *l);
		if (c->failures == 0)
			forget(c);
	}
	pthread_mutex_unlock(&t->lock);
}

unsigned
web_tarpit_failures(struct web_tarpit *t, const char *key, int64_t now_ms)
{
	struct tarpit_client *c;
	unsigned n;

	pthread_mutex_lock(&t->lock);
	c = lookup(t, key, now_ms, false);
	n = c ? c->failures : 0;
	pthread_mutex_unlock(&t->lock);
	return n;
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

int
web_tarpit_attempt_begin(struct web_tarpit *t, const char *link_id)
{
	gpointer v;
	unsigned n;
	int rv;

	pthread_mutex_lock(&t->lock);
	v = g_hash_table_lookup(t->attempts, link_id);
	n = GPOINTER_TO_UINT(v);
	if (v == NULL && g_hash_table_size(t->attempts) >= WEB_ATTEMPTS_MAX_LINKS) {
		rv = -1;
	} else {
		g_hash_table_replace(t->attempts, g_strdup(link_id), GUINT_TO_POINTER(n + 1));
		rv = (int)n;
	}
	pthread_mutex_unlock(&t->lock);
	return rv;
}

void
web_tarpit_attempt_end(struct web_tarpit *t, const char *link_id)
{
	unsigned n;

	pthread_mutex_lock(&t->lock);
	n = GPOINTER_TO_UINT(g_hash_table_lookup(t->attempts, link_id));
	if (n <= 1)
		g_hash_table_remove(t->attempts, link_id);
	else
		g_hash_table_replace(t->attempts, g_strdup(link_id), GUINT_TO_POINTER(n - 1));
	pthread_mutex_unlock(&t->lock);
}
