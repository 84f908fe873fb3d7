/* link_publish.c - the local store or the remote viewer; the outbox. */
#include "link_publish.h"

#include <stdlib.h>
#include <string.h>

#include "link_upload.h"
#include "log.h"
#include "web_outbox.h"

int
link_publish(const struct sp_config *cfg, struct link_store *store, const struct sp_link_bundle *b,
             char *err, size_t errsz)
{
	struct link_store_new_link *links = sp_xcalloc(b->n ? b->n : 1, sizeof *links);
	struct link_store_new_msg m = { 0 };
	size_t i;
	int rv = -1;

	for (i = 0; i < b->n; i++) {
		sp_strlcpy(links[i].id, b->v[i].id, sizeof links[i].id);
		links[i].wrapped = b->v[i].wrapped.data;
		links[i].wrapped_len = b->v[i].wrapped.len;
	}
	m.ciphertext = b->ciphertext.data;
	m.ciphertext_len = b->ciphertext.len;
	m.created = b->created;
	m.expires = b->expires;
	m.max_views = b->max_views;
	m.max_failed = b->max_failed;
	/* v1 links (a viewer older than v2 may take them) go in a v1 record:
	 * no sender and hint, which only the v2 page shows. */
	if (!sp_link_make_v1(cfg)) {
		m.sender = b->sender;
		m.hint = b->hint;
	}
	m.links = links;
	m.n_links = b->n;
	if (cfg->link.upload_url[0]) {
		rv = link_upload(cfg->link.upload_url, cfg->link.upload_token_file, &m, err, errsz);
	} else if (store == NULL) {
		sp_seterr(err, errsz, "no link store open");
	} else {
		rv = link_store_put(store, &m, NULL, err, errsz) == LINK_STORE_OK ? 0 : -1;
	}
	free(links);
	return rv;
}

void
link_unpublish(const struct sp_config *cfg, struct link_store *store, const struct sp_link_bundle *b)
{
	char err[SP_ERRLEN];

	if (b == NULL || b->n == 0)
		return;
	/* Revoking one link of the message with whole_message takes them all. */
	if (cfg->link.upload_url[0]) {
		if (link_upload_revoke(cfg->link.upload_url, cfg->link.upload_token_file, b->v[0].id, err,
		                       sizeof err) < 0)
			sp_log_warn("could not take back the uploaded links of a refused message: %s", err);
	} else if (store && link_store_revoke(store, b->v[0].id, true, err, sizeof err) == LINK_STORE_ERROR) {
		sp_log_warn("could not take back the links of a refused message: %s", err);
	}
}

void
link_outbox_record(const struct sp_envelope *env, const struct sp_link_bundle *b, const char *subject)
{
	struct web_outbox_rcpt *r = sp_xcalloc(env->n_rcpts ? env->n_rcpts : 1, sizeof *r);
	size_t i, j;

	for (i = 0; i < env->n_rcpts; i++) {
		r[i].address = env->rcpts[i].addr;
		r[i].form = sp_form_name(env->rcpts[i].form);
		r[i].detail = env->rcpts[i].detail;
		for (j = 0; b && j < b->n; j++) {
			if (b->v[j].rcpt == i) {
				r[i].link_id = b->v[j].id;
				r[i].url = b->v[j].url;
				r[i].password = b->v[j].password;
			}
		}
	}
	web_outbox_add(env->mail_from, subject, b ? b->created : sp_time(),
	               b ? b->expires : sp_time() + 86400, r, env->n_rcpts);
	free(r);
}
