/* link_store_common.c - what both store backends (link_store.c, SQLite;
 * link_store_pg.c, PostgreSQL) share: names, ids, a link's liveness. */
#include "link_store.h"

#include <stdlib.h>
#include <string.h>

#include <glib.h>
#include <sodium.h>

bool
link_store_is_url(const char *store)
{
	return store && (strncmp(store, "postgresql://", 13) == 0 ||
	                 strncmp(store, "postgres://", 11) == 0);
}

char *
link_store_label(const char *store)
{
	const char *auth, *end, *at, *colon, *q;
	struct sp_buf b;

	if (!link_store_is_url(store))
		return sp_xstrdup(store ? store : "");
	/* scheme://[user[:password]@]host.../db[?params]: drop the password and
	 * the parameters (which may hold one too). */
	auth = strstr(store, "://") + 3;
	end = auth + strcspn(auth, "/?");
	sp_buf_init(&b, 0);
	sp_buf_append(&b, store, (size_t)(auth - store));
	at = NULL;
	for (q = auth; q < end; q++)
		if (*q == '@')
			at = q;
	if (at) {
		colon = memchr(auth, ':', (size_t)(at - auth));
		sp_buf_append(&b, auth, (size_t)((colon ? colon : at) - auth));
		sp_buf_puts(&b, "@");
		auth = at + 1;
	}
	sp_buf_append(&b, auth, strcspn(auth, "?"));
	return sp_buf_steal(&b, NULL);
}

bool
link_store_id_valid(const char *s)
{
	size_t i;

	if (s == NULL)
		return false;
	for (i = 0; i < SP_LINK_ID_HEXLEN; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return s[i] == '\0';
}

bool
link_store_link_live(const struct link_store_link *l, int64_t now)
{
	return !l->revoked && l->expires > now && (l->max_views == 0 || l->views < l->max_views) &&
	       l->failed < l->max_failed;
}

void
link_store_link_clear(struct link_store_link *l)
{
	if (l == NULL)
		return;
	if (l->wrapped) {
		sodium_memzero(l->wrapped, l->wrapped_len);
		free(l->wrapped);
	}
	memset(l, 0, sizeof *l);
}
