/* peer_limits.c - per-address connection and AUTH failure accounting. */
#include "peer_limits.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <glib.h>

#include "net.h"
#include "util.h"

struct peer {
	unsigned connections;
	unsigned auth_failures;
	int64_t window_start;
};

static pthread_mutex_t peers_lock = PTHREAD_MUTEX_INITIALIZER;
static GHashTable *peers;

static struct peer *
get(const char *ip, bool create)
{
	struct peer *p;

	if (peers == NULL)
		peers = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	p = g_hash_table_lookup(peers, ip);
	if (p == NULL && create) {
		if (g_hash_table_size(peers) >= PEER_TABLE_MAX) {
			/* Forget addresses with nothing open and no recent failures. */
			GHashTableIter it;
			gpointer k, v;
			int64_t now = sp_time();
			g_hash_table_iter_init(&it, peers);
			while (g_hash_table_iter_next(&it, &k, &v)) {
				struct peer *q = v;
				if (q->connections == 0 && now - q->window_start > PEER_AUTH_WINDOW_S)
					g_hash_table_iter_remove(&it);
			}
		}
		p = g_new0(struct peer, 1);
		g_hash_table_insert(peers, g_strdup(ip), p);
	}
	return p;
}

bool
peer_connect(int fd, unsigned max_per_ip, char ip_out[64])
{
	bool loopback = false, ok = true;
	struct peer *p;

	if (sp_net_peer_ip(fd, ip_out, 64))
		loopback = sp_net_peer_is_loopback(fd);
	else
		snprintf(ip_out, 64, "unknown");
	pthread_mutex_lock(&peers_lock);
	p = get(ip_out, true);
	if (!loopback && max_per_ip && p->connections >= max_per_ip)
		ok = false;
	else
		p->connections++;
	pthread_mutex_unlock(&peers_lock);
	return ok;
}

void
peer_disconnect(const char *ip)
{
	struct peer *p;

	pthread_mutex_lock(&peers_lock);
	p = get(ip, false);
	if (p && p->connections)
		p->connections--;
	pthread_mutex_unlock(&peers_lock);
}

bool
peer_auth_blocked(const char *ip)
{
	struct peer *p;
	bool blocked = false;

	/* A question only: a window that has passed is started afresh by the
	 * next failure (peer_auth_failed), not here. */
	pthread_mutex_lock(&peers_lock);
	p = get(ip, false);
	if (p && p->auth_failures >= PEER_AUTH_FAILURES_MAX &&
	    sp_time() - p->window_start < PEER_AUTH_WINDOW_S)
		blocked = true;
	pthread_mutex_unlock(&peers_lock);
	return blocked;
}

void
peer_auth_failed(const char *ip)
{
	struct peer *p;
	int64_t now = sp_time();

	pthread_mutex_lock(&peers_lock);
	p = get(ip, true);
	if (now - p->window_start >= PEER_AUTH_WINDOW_S) {
		p->window_start = now;
		p->auth_failures = 0;
	}
	p->auth_failures++;
	pthread_mutex_unlock(&peers_lock);
}

void
peer_auth_succeeded(const char *ip)
{
	(void)ip;
	/* Success does not wipe the count: a guesser who also knows one
	 * account must not reset the window with it. */
}
