/* web_session.c - attachments of unlocked messages behind a capability. */
#include "web_session.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

struct session {
	unsigned char cap[32];
	char link_id[SP_LINK_ID_HEXLEN + 1];
	int64_t expires_ms;
	bool last_view;      /* issued by the view that used the link up */
	struct sp_view_attachment *att;
	size_t n_att;
	size_t bytes;
	struct session *next; /* oldest first */
};

struct web_sessions {
	pthread_mutex_t lock;
	struct session *head, *tail;
	unsigned n;
	size_t bytes;
	size_t max_bytes;
	unsigned max;
};

struct web_sessions *
web_sessions_new(size_t max_bytes, unsigned max_sessions)
{
	struct web_sessions *ss = sp_xcalloc(1, sizeof *ss);

	pthread_mutex_init(&ss->lock, NULL);
	ss->max_bytes = max_bytes ? max_bytes : WEB_SESSION_MAX_BYTES;
	ss->max = max_sessions ? max_sessions : WEB_SESSION_MAX;
	return ss;
}

static void
session_free(struct session *s)
{
	size_t i;

	for (i = 0; i < s->n_att; i++)
		sp_view_attachment_clear(&s->att[i]);
	free(s->att);
	sodium_memzero(s, sizeof *s);
	free(s);
}

static void
drop_head(struct web_sessions *ss)
{
	struct session *s = ss->head;

	ss->head = s->next;
	if (ss->head == NULL)
		ss->tail = NULL;
	ss->n--;
	ss->bytes -= s->bytes;
	session_free(s);
}

void
web_sessions_free(struct web_sessions *ss)
{
	if (ss == NULL)
		return;
	while (ss->head)
		drop_head(ss);
	pthread_mutex_destroy(&ss->lock);
	free(ss);
}

void
web_sessions_new_cap(char cap[WEB_SESSION_CAPLEN + 1])
{
	unsigned char raw[32];

	randombytes_buf(raw, sizeof raw);
	sodium_bin2hex(cap, WEB_SESSION_CAPLEN + 1, raw, sizeof raw);
	sodium_memzero(raw, sizeof raw);
}

int
web_sessions_add(struct web_sessions *ss, const char *cap, const char *link_id,
                 struct sp_view *m, int64_t now_ms, int64_t link_expires_ms,
                 bool last_view)
{
	unsigned char raw[32];
	struct session *s;
	size_t i, bytes = 0;

	if (m->n_att == 0)
		return 0;
	if (cap == NULL || strlen(cap) != WEB_SESSION_CAPLEN ||
	    sodium_hex2bin(raw, sizeof raw, cap, WEB_SESSION_CAPLEN, NULL, NULL, NULL) != 0)
		return -1;
	for (i = 0; i < m->n_att; i++)
		bytes += m->att[i].len;
	if (bytes > ss->max_bytes)
		return -1;
	s = sp_xcalloc(1, sizeof *s);
	memcpy(s->cap, raw, sizeof raw);
	sodium_memzero(raw, sizeof raw);
	sp_strlcpy(s->link_id, link_id, sizeof s->link_id);
	s->expires_ms = now_ms + WEB_SESSION_TTL_MS;
	if (link_expires_ms < s->expires_ms)
		s->expires_ms = link_expires_ms;
	s->last_view = last_view;
	s->att = m->att;
	s->n_att = m->n_att;
	s->bytes = bytes;
	m->att = NULL;
	m->n_att = 0;

	pthread_mutex_lock(&ss->lock);
	while (ss->head && (ss->n >= ss->max || ss->bytes + bytes > ss->max_bytes))
		drop_head(ss);
	if (ss->tail)
		ss->tail->next = s;
	else
		ss->head = s;
	ss->tail = s;
	ss->n++;
	ss->bytes += bytes;
	pthread_mutex_unlock(&ss->lock);
	return 0;
}

int
web_sessions_get(struct web_sessions *ss, const char *cap, const char *link_id, size_t part,
                 int64_t now_ms, struct sp_view_attachment *copy, bool *last_view)
{
	unsigned char want[32];
	struct session *s;
	int rv = -1;

	memset(copy, 0, sizeof *copy);
	if (last_view)
		*last_view = false;
	if (cap == NULL || strlen(cap) != WEB_SESSION_CAPLEN ||
	    sodium_hex2bin(want, sizeof want, cap, WEB_SESSION_CAPLEN, NULL, NULL, NULL) != 0)
		return -1;
	pthread_mutex_lock(&ss->lock);
	for (s = ss->head; s; s = s->next) {
		if (sodium_memcmp(s->cap, want, sizeof want) != 0)
			continue;
		if (s->expires_ms <= now_ms || strcmp(s->link_id, link_id) != 0 || part >= s->n_att)
			break;
		copy->filename = sp_xstrdup(s->att[part].filename);
		copy->content_type = sp_xstrdup(s->att[part].content_type);
		copy->len = s->att[part].len;
		copy->data = sp_xmalloc(copy->len ? copy->len : 1);
		if (copy->len)
			memcpy(copy->data, s->att[part].data, copy->len);
		if (last_view)
			*last_view = s->last_view;
		rv = 0;
		break;
	}
	pthread_mutex_unlock(&ss->lock);
	sodium_memzero(want, sizeof want);
	return rv;
}

/* Under the lock: drop every session for which drop(s, arg) holds. */
static unsigned
drop_if(struct web_sessions *ss, bool (*drop)(const struct session *, const void *), const void *arg)
{
	struct session **pp, *s;
	unsigned n = 0;

	ss->tail = NULL;
	for (pp = &ss->head; (s = *pp) != NULL;) {
		if (drop(s, arg)) {
			*pp = s->next;
			ss->n--;
			ss->bytes -= s->bytes;
			session_free(s);
			n++;
		} else {
			ss->tail = s;
			pp = &s->next;
		}
	}
	return n;
}

static bool
of_link(const struct session *s, const void *link_id)
{
	return strcmp(s->link_id, link_id) == 0;
}

static bool
expired(const struct session *s, const void *now_ms)
{
	return s->expires_ms <= *(const int64_t *)now_ms;
}

unsigned
web_sessions_drop_link(struct web_sessions *ss, const char *link_id)
{
	unsigned n;

	pthread_mutex_lock(&ss->lock);
	n = drop_if(ss, of_link, link_id);
	pthread_mutex_unlock(&ss->lock);
	return n;
}

size_t
web_sessions_links(struct web_sessions *ss, char (*ids)[SP_LINK_ID_HEXLEN + 1], size_t max)
{
	const struct session *s;
	size_t n = 0, i;

	pthread_mutex_lock(&ss->lock);
	for (s = ss->head; s && n < max; s = s->next) {
		if (s->last_view)
			continue;
		for (i = 0; i < n && strcmp(ids[i], s->link_id) != 0; i++)
			;
		if (i == n)
			sp_strlcpy(ids[n++], s->link_id, sizeof ids[0]);
	}
	pthread_mutex_unlock(&ss->lock);
	return n;
}

void
web_sessions_expire(struct web_sessions *ss, int64_t now_ms)
{
	pthread_mutex_lock(&ss->lock);
	drop_if(ss, expired, &now_ms);
	pthread_mutex_unlock(&ss->lock);
}
