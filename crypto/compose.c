/* compose.c - one plaintext message in, the per-form copies out. */
#include "compose.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "address.h"
#include "log.h"
#include "mime_message.h"
#include "link_copy.h"
#include "view_doc.h"
#include "pgp_mime.h"
#include "sodium_keys.h"
#include "sodium_seal.h"

/* What is decided once per message, for every copy. */
struct compose_ctx {
	struct sp_policy *policy;
	const struct sp_config *cfg;
	struct sp_envelope *env;
	struct sp_mime mime;
	bool client_encrypted;        /* relayed as it is */
	char self_fpr[SP_PGP_FPR_MAX];  /* encrypt_to_self: the sender's key, or "" */
	char sign_fpr[SP_PGP_FPR_MAX];  /* sign = yes: the sender's secret key */
	char *autocrypt;                /* "Autocrypt: ...\r\n" for every copy, or NULL */
};

/* The client's message minus the private headers, every other byte as sent:
 * the plain form, and messages the client already encrypted. */
static enum sp_compose_result
build_as_is(struct compose_ctx *cx, struct sp_copy *cp, char *err, size_t errsz)
{
	const struct sp_mime *m = &cx->mime;
	size_t i;

	(void)err;
	(void)errsz;
	/* Pieces of the received message, in place: a 25 MB message is not
	 * copied to be sent as it is. */
	cp->spans = sp_xcalloc(m->n_hdrs + 2, sizeof *cp->spans);
	if (m->n_hdrs && m->hdrs[0].start > 0)
		cp->spans[cp->n_spans++] = (struct sp_span){ m->data, m->hdrs[0].start };
	for (i = 0; i < m->n_hdrs; i++) {
		const struct sp_mime_header *h = &m->hdrs[i];
		if (!sp_mime_is_private_header(h->name))
			cp->spans[cp->n_spans++] = (struct sp_span){ m->data + h->start, h->end - h->start };
	}
	cp->spans[cp->n_spans++] = (struct sp_span){ m->data + m->headers_end, m->len - m->headers_end };
	return SP_COMPOSE_OK;
}

/* Big messages get their encrypted copy built in an anonymous spool file
 * (ciphertext only), small ones in memory. */
static int
copy_sink(const struct compose_ctx *cx, struct sp_copy *cp, struct sp_sink *sink, char *err, size_t errsz)
{
	sink->buf = NULL;
	sink->fd = -1;
	if (cx->mime.len <= SP_SPOOL_THRESHOLD) {
		sink->buf = &cp->data;
		return 0;
	}
	if ((cp->spool_fd = sp_tmpfile(err, errsz)) < 0)
		return -1;
	sink->fd = cp->spool_fd;
	return 0;
}

/* After building: how long the spooled copy is. */
static void
copy_sink_done(struct sp_copy *cp)
{
	if (cp->spool_fd >= 0) {
		off_t end = lseek(cp->spool_fd, 0, SEEK_END);
		cp->spool_len = end > 0 ? (size_t)end : 0;
	}
}

static enum sp_compose_result
build_pgp(struct compose_ctx *cx, struct sp_copy *cp, char *err, size_t errsz)
{
	struct sp_pgp *pgp = sp_policy_pgp(cx->policy, err, errsz);
	const char **fprs = sp_xcalloc(cp->n_rcpts + 2, sizeof *fprs);
	char **keyfiles = sp_xcalloc(cp->n_rcpts + 1, sizeof *keyfiles);
	size_t n_keyfiles = 0;
	enum sp_compose_result rv = SP_COMPOSE_TEMPFAIL;
	char why[SP_ERRLEN];
	size_t i, n = 0;

	if (pgp == NULL)
		goto out;
	for (i = 0; i < cp->n_rcpts; i++) {
		const struct sp_rcpt *r = &cx->env->rcpts[cp->rcpts[i]];
		enum sp_pgp_lookup lr;
		/* The key chosen at RCPT time must still be usable now: in the
		 * user's keyring, or else as the key sealpost discovered. */
		lr = sp_pgp_recheck(pgp, r->addr, r->detail, why, sizeof why);
		if (lr == SP_PGP_NONE && sp_policy_discovery() != NULL) {
			const struct sp_key_discovery *kd = sp_policy_discovery();
			char norm[SP_ADDR_MAX], bad[SP_ERRLEN];
			if (sp_addr_normalize(r->addr, norm, sizeof norm, bad, sizeof bad) == 0) {
				char *kf = sp_xcalloc(1, SP_DISCOVERY_PATH_MAX);
				lr = kd->recheck(kd->ctx, norm, r->detail, kf, SP_DISCOVERY_PATH_MAX, why, sizeof why);
				if (lr == SP_PGP_FOUND) {
					keyfiles[n_keyfiles++] = kf;
					fprs[n++] = kf;
					continue;
				}
				free(kf);
			}
		}
		switch (lr) {
		case SP_PGP_FOUND:
			break;
		case SP_PGP_NONE:
			sp_seterr(err, errsz, "<%s>: %s (changed since RCPT); not sent in any other form",
			          r->addr, why);
			rv = SP_COMPOSE_PERMFAIL;
			goto out;
		default:
			sp_seterr(err, errsz, "<%s>: %s", r->addr, why);
			goto out;
		}
		fprs[n++] = r->detail;
	}
	if (cx->self_fpr[0]) {
		for (i = 0; i < n && strcmp(fprs[i], cx->self_fpr) != 0; i++)
			;
		if (i == n)
			fprs[n++] = cx->self_fpr;
	}
	{
		struct sp_sink sink;
		if (copy_sink(cx, cp, &sink, err, errsz) < 0)
			goto out;
		switch (sp_pgp_mime_build(pgp, &cx->mime, cx->cfg->pgp.hide_subject, fprs, n,
		                          cx->sign_fpr[0] ? cx->sign_fpr : NULL, &sink, err, errsz)) {
		case SP_PGP_ENCRYPTED:
			rv = SP_COMPOSE_OK;
			copy_sink_done(cp);
			break;
		case SP_PGP_ENCRYPT_PERMFAIL:
			rv = SP_COMPOSE_PERMFAIL;
			break;
		case SP_PGP_ENCRYPT_TEMPFAIL:
			break;
		}
	}
out:
	while (n_keyfiles)
		free(keyfiles[--n_keyfiles]);
	free(keyfiles);
	free(fprs);
	return rv;
}

/* The client's message minus the private headers, as a stream over the
 * received bytes: nothing is copied (a 25 MB message stays one copy). */
static GMimeStream *
as_is_stream(const struct sp_mime *m)
{
	GMimeStream *cat = g_mime_stream_cat_new();
	size_t i;

	for (i = 0; i < m->n_hdrs; i++) {
		const struct sp_mime_header *h = &m->hdrs[i];
		GMimeStream *sub;
		if (sp_mime_is_private_header(h->name))
			continue;
		sub = g_mime_stream_substream(m->stream, (gint64)h->start, (gint64)h->end);
		g_mime_stream_cat_add_source(GMIME_STREAM_CAT(cat), sub);
		g_object_unref(sub);
	}
	{
		GMimeStream *body = g_mime_stream_substream(m->stream, (gint64)m->headers_end, (gint64)m->len);
		g_mime_stream_cat_add_source(GMIME_STREAM_CAT(cat), body);
		g_object_unref(body);
	}
	return cat;
}

/* The sodium form: the whole message (minus private headers) sealed to every
 * recipient of the copy, wrapped in a multipart/mixed with instructions. */
static enum sp_compose_result
build_sodium(struct compose_ctx *cx, struct sp_copy *cp, char *err, size_t errsz)
{
	const struct sp_sodium_recipients *dir = sp_policy_sodium(cx->policy, err, errsz);
	const unsigned char **pks = sp_xcalloc(cp->n_rcpts, sizeof *pks);
	enum sp_compose_result rv = SP_COMPOSE_TEMPFAIL;
	GMimeStream *in = NULL, *spool = NULL;
	GMimeObject *entity = NULL;
	size_t i;
	int fd;

	if (dir == NULL) {
		if (err[0] == '\0')
			sp_seterr(err, errsz, "the [sodium] recipients file is gone");
		goto out;
	}
	for (i = 0; i < cp->n_rcpts; i++) {
		const struct sp_rcpt *r = &cx->env->rcpts[cp->rcpts[i]];
		char line[SP_SODIUM_PUBLINE_LEN + 1];
		pks[i] = sp_sodium_recipients_lookup(dir, r->addr);
		if (pks[i] == NULL) {
			sp_seterr(err, errsz, "<%s>: no sodium key any more; not sent in any other form", r->addr);
			rv = SP_COMPOSE_PERMFAIL;
			goto out;
		}
		sp_sodium_format_public(pks[i], line);
		if (strcmp(line, r->detail) != 0) {
			sp_seterr(err, errsz, "<%s>: the sodium key changed since RCPT; not sent", r->addr);
			rv = SP_COMPOSE_PERMFAIL;
			goto out;
		}
	}
	/* The sealed bytes are ciphertext: they may wait in an unlinked file
	 * instead of memory while the copy is written. */
	if (cx->mime.len > SP_SPOOL_THRESHOLD) {
		if ((fd = sp_tmpfile(err, errsz)) < 0)
			goto out;
		spool = g_mime_stream_fs_new(fd);
	}
	in = as_is_stream(&cx->mime);
	entity = sp_sodium_make_copy_stream(pks, cp->n_rcpts, in, spool, err, errsz);
	if (entity == NULL)
		goto out;
	{
		struct sp_buf outer;
		struct sp_sink sink;
		int r;
		sp_buf_init(&outer, 0);
		r = sp_mime_write_outer_headers(&cx->mime, cx->cfg->pgp.hide_subject ? "..." : NULL, &outer) < 0 ||
		    sp_buf_puts(&outer, "MIME-Version: 1.0\r\n") < 0 || copy_sink(cx, cp, &sink, err, errsz) < 0 ||
		    sp_sink_write(&sink, outer.data, outer.len) < 0 || sp_sink_object(&sink, entity) < 0;
		sp_buf_free(&outer);
		if (r) {
			sp_seterr(err, errsz, "cannot write the sodium copy");
			goto out;
		}
		copy_sink_done(cp);
	}
	rv = SP_COMPOSE_OK;
out:
	if (entity)
		g_object_unref(entity);
	if (in)
		g_object_unref(in);
	if (spool)
		g_object_unref(spool);
	free(pks);
	return rv;
}

/* The sender's armored public key for a v2 link's view document (the secure
 * reply encrypts to it): the key the delivery report is encrypted to, the
 * sender's usable encryption key in the keyring; NULL when there is none (or
 * it cannot be exported): the page then offers no secure reply, and the
 * message is sent all the same. */
static char *
link_sender_key(struct compose_ctx *cx)
{
	struct sp_pgp_key_info info;
	struct sp_pgp *pgp;
	struct sp_buf key;
	char why[SP_ERRLEN], *s;

	if (cx->env->mail_from[0] == '\0' || access(cx->cfg->pgp.gnupg_home, F_OK) != 0)
		return NULL;
	if ((pgp = sp_policy_pgp(cx->policy, why, sizeof why)) == NULL) {
		sp_log_debug("%s: no sender key for the link: %s", cx->env->id, why);
		return NULL;
	}
	if (sp_pgp_find_key(pgp, cx->env->mail_from, &info, why, sizeof why) != SP_PGP_FOUND) {
		sp_log_debug("%s: no sender key for the link: %s", cx->env->id, why);
		return NULL;
	}
	sp_buf_init(&key, SP_VIEW_DOC_MAX_SENDER_KEY);
	if (sp_pgp_export_minimal_armored(pgp, info.fpr, &key, why, sizeof why) < 0 || key.len == 0 ||
	    sp_buf_append(&key, "", 1) < 0) {
		sp_log_debug("%s: no sender key for the link: %s", cx->env->id, key.len ? "too big" : why);
		sp_buf_free(&key);
		return NULL;
	}
	s = sp_xstrdup(key.data);
	sp_buf_free(&key);
	return s;
}

/* Link mode: seal once, a grant and a notification per link recipient. */
static enum sp_compose_result
build_links(struct compose_ctx *cx, struct sp_copies *out, char *err, size_t errsz)
{
	struct sp_link_settings settings;
	enum sp_compose_result rv = SP_COMPOSE_TEMPFAIL;
	size_t *idx = sp_xcalloc(cx->env->n_rcpts ? cx->env->n_rcpts : 1, sizeof *idx), n = 0, i;

	for (i = 0; i < cx->env->n_rcpts; i++)
		if (cx->env->rcpts[i].form == SP_FORM_LINK)
			idx[n++] = i;
	if (n == 0) {
		free(idx);
		return SP_COMPOSE_OK;
	}
	if (cx->cfg->link.base_url[0] == '\0') {
		sp_seterr(err, errsz, "link mode is no longer configured ([link] base_url)");
		free(idx);
		return SP_COMPOSE_PERMFAIL;
	}
	if (sp_link_settings_read(&cx->mime, cx->cfg, &settings, err, errsz) < 0) {
		free(idx);
		return SP_COMPOSE_PERMFAIL;
	}
	/* What the recipient will read: the message without the private
	 * headers - the same pieces as the unencrypted form, sealed in place. */
	{
		struct sp_copy view = { .spool_fd = -1 };
		struct sp_blob b;
		struct sp_span one;
		char *sender_key;
		int r;
		build_as_is(cx, &view, err, errsz);
		sp_copy_blob(&view, &b, &one);
		sender_key = sp_link_make_v1(cx->cfg) ? NULL : link_sender_key(cx);
		r = sp_link_bundle_make(cx->cfg, cx->env, &b, sender_key, idx, n, &settings, &out->link, err, errsz);
		free(sender_key);
		if (out->link)
			out->link_free = sp_link_bundle_free;
		free(view.spans);
		if (r < 0)
			goto out;
	}
	for (i = 0; i < out->link->n; i++) {
		const struct sp_link_grant *g = &out->link->v[i];
		struct sp_copy *cp = sp_copies_add(out, SP_FORM_LINK);
		sp_copy_add_rcpt(cp, g->rcpt);
		sp_strlcpy(cx->env->rcpts[g->rcpt].detail, g->id, sizeof cx->env->rcpts[g->rcpt].detail);
		if (sp_link_notification(cx->cfg, &cx->mime, out->link, g, &cp->data, err, errsz) < 0)
			goto out;
		cp->eightbit = sp_has_8bit(cp->data.data, cp->data.len);
		cp->smtputf8 = cx->env->smtputf8;
	}
	rv = SP_COMPOSE_OK;
out:
	sp_link_settings_clear(&settings);
	free(idx);
	return rv;
}

/* The delivery report for the sender, encrypted to the sender's own key:
 * the only way generated passwords travel by mail. */
static enum sp_compose_result
build_receipt(struct compose_ctx *cx, struct sp_copies *out, char *err, size_t errsz)
{
	const struct sp_link_bundle *b = out->link;
	struct sp_pgp_key_info self;
	struct sp_pgp *pgp;
	struct sp_buf inner;
	GString *t;
	char why[SP_ERRLEN], when[128], *mid;
	const char *fprs[1];
	struct sp_copy *cp;
	size_t i, j;
	enum sp_pgp_encrypt_result r;

	if (b == NULL || b->n == 0)
		return SP_COMPOSE_OK;
	if (cx->env->mail_from[0] == '\0' || access(cx->cfg->pgp.gnupg_home, F_OK) != 0 ||
	    (pgp = sp_policy_pgp(cx->policy, why, sizeof why)) == NULL ||
	    sp_pgp_find_key(pgp, cx->env->mail_from, &self, why, sizeof why) != SP_PGP_FOUND) {
		bool generated = false, outbox = cx->cfg->linkserver.mode == SP_LINKSERVER_EMBEDDED &&
		                                  cx->cfg->linkserver.outbox;
		for (i = 0; i < b->n; i++)
			generated |= b->v[i].generated;
		if (generated && !outbox) {
			/* A password nobody learns locks the recipient out: refuse. */
			sp_seterr(err, errsz, "generated link passwords would reach nobody: the sender <%s> has "
			          "no usable OpenPGP key for a delivery report and there is no outbox page "
			          "([linkserver] mode/outbox); set X-Sealpost-Password, or give the sender a key",
			          cx->env->mail_from);
			return SP_COMPOSE_PERMFAIL;
		}
		sp_log_info("%s: no delivery report by mail: the sender <%s> has no usable OpenPGP key; "
		            "the passwords are on the outbox page only", cx->env->id, cx->env->mail_from);
		return SP_COMPOSE_OK;
	}
	t = g_string_new(NULL);
	sp_link_format_time(b->expires, when, sizeof when);
	g_string_append_printf(t, "sealpost delivery report for your message %s\n\n",
	                       cx->env->message_id ? cx->env->message_id : "(no Message-ID)");
	for (i = 0; i < cx->env->n_rcpts; i++) {
		const struct sp_rcpt *r0 = &cx->env->rcpts[i];
		g_string_append_printf(t, "<%s>\n", r0->addr);
		if (r0->note)
			g_string_append_printf(t, "    note: %s\n", r0->note);
		switch (r0->form) {
		case SP_FORM_PGP:
			g_string_append_printf(t, "    OpenPGP, key %s\n", r0->detail);
			break;
		case SP_FORM_SODIUM:
			g_string_append_printf(t, "    sodium, key %s\n", r0->detail);
			break;
		case SP_FORM_LINK:
			for (j = 0; j < b->n && b->v[j].rcpt != i; j++)
				;
			if (j == b->n)
				break;
			g_string_append_printf(t, "    link      %s\n    password  %s%s\n    expires   %s\n", b->v[j].url,
			                       b->v[j].password, b->v[j].generated ? "" : " (yours)", when);
			if (b->max_views)
				g_string_append_printf(t, "    views     at most %llu\n", (unsigned long long)b->max_views);
			if (b->hint[0])
				g_string_append_printf(t, "    hint      %s\n", b->hint);
			g_string_append_printf(t, "    revoke    sealpost revoke %s\n", b->v[j].id);
			break;
		case SP_FORM_PLAIN:
		default:
			g_string_append(t, "    UNENCRYPTED ([policy] no_key = plain)\n");
			break;
		}
	}
	g_string_append(t, "\nGive each link recipient their password by another channel (phone, chat,\n"
	                   "in person).  The outbox page of your viewer shows the same.\n");
	sp_buf_init(&inner, 0);
	mid = g_mime_utils_generate_message_id("sealpost.invalid");
	{
		GMimeTextPart *tp = g_mime_text_part_new_with_subtype("plain");
		g_mime_text_part_set_text(tp, t->str);
		g_mime_part_set_content_encoding(GMIME_PART(tp),
		                                 g_mime_part_get_best_content_encoding(GMIME_PART(tp), GMIME_ENCODING_CONSTRAINT_7BIT));
		g_mime_object_set_content_type_parameter(GMIME_OBJECT(tp), "protected-headers", "v1");
		g_mime_object_set_header(GMIME_OBJECT(tp), "Subject", "sealpost delivery report", NULL);
		sp_mime_append_object(GMIME_OBJECT(tp), &inner);
		g_object_unref(tp);
	}
	sodium_memzero(t->str, t->len);
	g_string_free(t, TRUE);
	cp = sp_copies_add(out, SP_FORM_PGP);
	cp->to_sender = sp_xstrdup(cx->env->mail_from);
	{
		GDateTime *now = g_date_time_new_now_local();
		char *date = g_mime_utils_header_format_date(now);
		sp_buf_printf(&cp->data, "From: <%s>\r\nTo: <%s>\r\nSubject: ...\r\nDate: %s\r\nMessage-ID: <%s>\r\n"
		              "Auto-Submitted: auto-generated\r\nMIME-Version: 1.0\r\n",
		              cx->env->mail_from, cx->env->mail_from, date, mid);
		g_free(date);
		g_date_time_unref(now);
	}
	g_free(mid);
	fprs[0] = self.fpr;
	r = sp_pgp_mime_encrypted_entity(pgp, inner.data, inner.len, fprs, 1, NULL, &cp->data, err, errsz);
	sp_buf_wipe(&inner);
	if (r != SP_PGP_ENCRYPTED)
		return r == SP_PGP_ENCRYPT_PERMFAIL ? SP_COMPOSE_PERMFAIL : SP_COMPOSE_TEMPFAIL;
	return SP_COMPOSE_OK;
}

static enum sp_compose_result
build_copy(struct compose_ctx *cx, struct sp_copy *cp, char *err, size_t errsz)
{
	enum sp_compose_result r;

	if (cx->client_encrypted) {
		r = build_as_is(cx, cp, err, errsz);
	} else {
		switch (cp->form) {
		case SP_FORM_PLAIN:
			r = build_as_is(cx, cp, err, errsz);
			break;
		case SP_FORM_PGP:
			r = build_pgp(cx, cp, err, errsz);
			break;
		case SP_FORM_SODIUM:
			r = build_sodium(cx, cp, err, errsz);
			break;
		case SP_FORM_LINK:
			return SP_COMPOSE_OK;   /* built by build_links */
		default:
			/* Fail closed: a form this build cannot produce is never downgraded. */
			sp_seterr(err, errsz, "the %s form is not available in this build", sp_form_name(cp->form));
			return SP_COMPOSE_PERMFAIL;
		}
	}
	if (r == SP_COMPOSE_OK) {
		if (cx->client_encrypted || cp->form == SP_FORM_PLAIN) {
			struct sp_blob b;
			struct sp_span one;
			sp_copy_blob(cp, &b, &one);
			cp->eightbit = sp_blob_has_8bit(&b);
		} else {
			/* An encrypted copy is ASCII but for the client's own header
			 * fields it carries (raw UTF-8 with SMTPUTF8 clients). */
			cp->eightbit = sp_has_8bit(cx->mime.data, cx->mime.headers_end) ||
			               (cp->data.len && sp_has_8bit(cp->data.data, cp->data.len));
		}
		cp->smtputf8 = cx->env->smtputf8;
	}
	return r;
}

/* Autocrypt Level 1: let recipients' clients learn the sender's key.  Only
 * when the sender has a usable key and the client did not write the header
 * itself (then it is kept as written). */
static void
prepare_autocrypt(struct compose_ctx *cx)
{
	struct sp_pgp_key_info info;
	struct sp_pgp *pgp;
	struct sp_buf key;
	char why[SP_ERRLEN], *b64, *v;
	GString *h;
	size_t i, n;

	if (cx->env->mail_from[0] == '\0' || access(cx->cfg->pgp.gnupg_home, F_OK) != 0)
		return;
	if ((v = sp_mime_header_value(&cx->mime, "Autocrypt")) != NULL) {
		free(v);
		return;
	}
	if ((pgp = sp_policy_pgp(cx->policy, why, sizeof why)) == NULL ||
	    sp_pgp_find_key(pgp, cx->env->mail_from, &info, why, sizeof why) != SP_PGP_FOUND)
		return;
	sp_buf_init(&key, 0);
	if (sp_pgp_export_minimal(pgp, info.fpr, &key, why, sizeof why) < 0 || key.len == 0) {
		sp_log_debug("%s: no Autocrypt header: %s", cx->env->id, why);
		sp_buf_free(&key);
		return;
	}
	b64 = g_base64_encode((const guchar *)key.data, key.len);
	sp_buf_free(&key);
	/* RFC 5322 folding: keydata in 76-column lines after a space. */
	h = g_string_new(NULL);
	g_string_append_printf(h, "Autocrypt: addr=%s; keydata=", cx->env->mail_from);
	n = strlen(b64);
	for (i = 0; i < n; i += 76)
		g_string_append_printf(h, "\r\n %.*s", (int)(n - i < 76 ? n - i : 76), b64 + i);
	g_string_append(h, "\r\n");
	g_free(b64);
	cx->autocrypt = g_string_free(h, FALSE);
	cx->mime.extra_headers = cx->autocrypt;
}

/* Sender-side decisions made once: encrypt-to-self and the signing key. */
static enum sp_compose_result
prepare_pgp(struct compose_ctx *cx, char *err, size_t errsz)
{
	struct sp_pgp_key_info info;
	struct sp_pgp *pgp;
	char why[SP_ERRLEN];
	size_t i;
	bool any = false;

	for (i = 0; i < cx->env->n_rcpts; i++)
		if (cx->env->rcpts[i].form == SP_FORM_PGP)
			any = true;
	if (!any || cx->client_encrypted)
		return SP_COMPOSE_OK;
	if ((pgp = sp_policy_pgp(cx->policy, err, errsz)) == NULL)
		return SP_COMPOSE_TEMPFAIL;
	if (cx->cfg->pgp.encrypt_to_self && cx->env->mail_from[0]) {
		switch (sp_pgp_find_key(pgp, cx->env->mail_from, &info, why, sizeof why)) {
		case SP_PGP_FOUND:
			sp_strlcpy(cx->self_fpr, info.fpr, sizeof cx->self_fpr);
			break;
		case SP_PGP_NONE:
			sp_log_debug("%s: encrypt_to_self: %s", cx->env->id, why);
			break;
		default:
			sp_seterr(err, errsz, "encrypt_to_self: %s", why);
			return SP_COMPOSE_TEMPFAIL;
		}
	}
	if (cx->cfg->pgp.sign) {
		if (cx->env->mail_from[0] == '\0') {
			sp_seterr(err, errsz, "[pgp] sign = yes, but the message has no sender to sign as");
			return SP_COMPOSE_PERMFAIL;
		}
		switch (sp_pgp_find_signer(pgp, cx->env->mail_from, &info, why, sizeof why)) {
		case SP_PGP_FOUND:
			sp_strlcpy(cx->sign_fpr, info.fpr, sizeof cx->sign_fpr);
			break;
		case SP_PGP_NONE:
			sp_seterr(err, errsz, "[pgp] sign = yes, but no usable secret key for <%s>: %s; "
			          "not sent unsigned", cx->env->mail_from, why);
			return SP_COMPOSE_PERMFAIL;
		default:
			sp_seterr(err, errsz, "[pgp] sign: %s", why);
			return SP_COMPOSE_TEMPFAIL;
		}
	}
	return SP_COMPOSE_OK;
}

enum sp_compose_result
sp_compose(struct sp_policy *p, struct sp_envelope *env, char *data, size_t len,
           struct sp_copies *out, char *err, size_t errsz)
{
	struct compose_ctx cx = { .policy = p, .cfg = sp_policy_config(p), .env = env };
	enum sp_compose_result rv = SP_COMPOSE_PERMFAIL;
	size_t i;
	int f;

	memset(out, 0, sizeof *out);
	if (sp_mime_parse(data, len, &cx.mime, err, errsz) < 0)
		return SP_COMPOSE_PERMFAIL;
	free(env->message_id);
	env->message_id = sp_mime_header_value(&cx.mime, "Message-ID");
	free(env->subject);
	env->subject = NULL;
	{
		const char *subj = g_mime_message_get_subject(cx.mime.msg);
		if (subj)
			env->subject = sp_xstrdup(subj);
	}
	{
		char why[SP_ERRLEN];
		cx.client_encrypted = sp_mime_is_encrypted(&cx.mime, why, sizeof why);
		if (cx.client_encrypted)
			sp_log_info("%s: the client already encrypted this message; relaying it as it is", env->id);
		else if (why[0])
			sp_log_info("%s: the message looks encrypted but is not (%s); encrypting it", env->id, why);
	}
	for (i = 0; i < env->n_rcpts; i++)
		env->rcpts[i].bcc = !sp_mime_names_rcpt(&cx.mime, env->rcpts[i].addr);
	/* One copy per form for the To/Cc recipients, one per Bcc recipient;
	 * strongest form first, so logs and receipts read in that order. */
	for (f = 0; f < SP_FORM_COUNT; f++) {
		/* An index, not a pointer: sp_copies_add may move the array. */
		size_t shared = SIZE_MAX;
		for (i = 0; i < env->n_rcpts; i++) {
			struct sp_rcpt *r = &env->rcpts[i];
			struct sp_copy *cp;
			if ((int)r->form != f || (r->form == SP_FORM_LINK && !cx.client_encrypted))
				continue;
			if (r->bcc) {
				cp = sp_copies_add(out, (enum sp_form)f);
			} else {
				if (shared == SIZE_MAX) {
					sp_copies_add(out, (enum sp_form)f);
					shared = out->n - 1;
				}
				cp = &out->v[shared];
			}
			sp_copy_add_rcpt(cp, i);
		}
	}
	rv = prepare_pgp(&cx, err, errsz);
	if (rv != SP_COMPOSE_OK)
		goto out;
	if (!cx.client_encrypted)
		prepare_autocrypt(&cx);
	for (i = 0; i < out->n; i++) {
		rv = build_copy(&cx, &out->v[i], err, errsz);
		if (rv != SP_COMPOSE_OK)
			goto out;
	}
	if (!cx.client_encrypted) {
		/* Link recipients each get a notification of their own. */
		if ((rv = build_links(&cx, out, err, errsz)) != SP_COMPOSE_OK ||
		    (rv = build_receipt(&cx, out, err, errsz)) != SP_COMPOSE_OK)
			goto out;
	}
	rv = SP_COMPOSE_OK;
out:
	sp_mime_free(&cx.mime);
	g_free(cx.autocrypt);
	if (rv != SP_COMPOSE_OK)
		sp_copies_free(out);
	return rv;
}
