/* compose.c - one plaintext message in, the per-form copies out. */
#include "compose.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "mime_message.h"
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
};

static bool
drop_private(const char *name, void *arg)
{
	(void)arg;
	return sp_mime_is_private_header(name);
}

static bool
has_8bit(const char *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if ((unsigned char)p[i] >= 0x80)
			return true;
	return false;
}

/* The client's message minus the private headers, every other byte as sent:
 * the plain form, and messages the client already encrypted. */
static enum sp_compose_result
build_as_is(struct compose_ctx *cx, struct sp_copy *cp, char *err, size_t errsz)
{
	const struct sp_mime *m = &cx->mime;

	if (sp_buf_reserve(&cp->data, m->len) < 0 ||
	    sp_mime_copy_headers(m, drop_private, NULL, &cp->data) < 0 ||
	    sp_buf_append(&cp->data, m->data + m->headers_end, m->len - m->headers_end) < 0) {
		sp_seterr(err, errsz, "out of memory building the copy");
		return SP_COMPOSE_TEMPFAIL;
	}
	return SP_COMPOSE_OK;
}

static enum sp_compose_result
build_pgp(struct compose_ctx *cx, struct sp_copy *cp, char *err, size_t errsz)
{
	struct sp_pgp *pgp = sp_policy_pgp(cx->policy, err, errsz);
	const char **fprs = sp_xcalloc(cp->n_rcpts + 2, sizeof *fprs);
	enum sp_compose_result rv = SP_COMPOSE_TEMPFAIL;
	char why[SP_ERRLEN];
	size_t i, n = 0;

	if (pgp == NULL)
		goto out;
	for (i = 0; i < cp->n_rcpts; i++) {
		const struct sp_rcpt *r = &cx->env->rcpts[cp->rcpts[i]];
		/* The key chosen at RCPT time must still be usable now. */
		switch (sp_pgp_recheck(pgp, r->addr, r->detail, why, sizeof why)) {
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
	switch (sp_pgp_mime_build(pgp, &cx->mime, cx->cfg->pgp.hide_subject, fprs, n,
	                          cx->sign_fpr[0] ? cx->sign_fpr : NULL, &cp->data, err, errsz)) {
	case 0:
		rv = SP_COMPOSE_OK;
		break;
	case -2:
		rv = SP_COMPOSE_PERMFAIL;
		break;
	default:
		break;
	}
out:
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
	fd = sp_tmpfile(err, errsz);
	if (fd >= 0)
		spool = g_mime_stream_fs_new(fd);
	in = as_is_stream(&cx->mime);
	entity = sp_sodium_make_copy_stream(pks, cp->n_rcpts, in, spool, err, errsz);
	if (entity == NULL)
		goto out;
	if (sp_mime_write_outer_headers(&cx->mime, cx->cfg->pgp.hide_subject ? "..." : NULL, &cp->data) < 0 ||
	    sp_buf_puts(&cp->data, "MIME-Version: 1.0\r\n") < 0 ||
	    sp_mime_append_object(entity, &cp->data) < 0) {
		sp_seterr(err, errsz, "out of memory building the sodium copy");
		goto out;
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
		default:
			/* Fail closed: a form this build cannot produce is never downgraded. */
			sp_seterr(err, errsz, "the %s form is not available in this build", sp_form_name(cp->form));
			return SP_COMPOSE_PERMFAIL;
		}
	}
	if (r == SP_COMPOSE_OK) {
		cp->eightbit = has_8bit(cp->data.data, cp->data.len);
		cp->smtputf8 = cx->env->smtputf8;
	}
	return r;
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
	cx.client_encrypted = sp_mime_is_encrypted(&cx.mime);
	if (cx.client_encrypted)
		sp_log_info("%s: the client already encrypted this message; relaying it as it is", env->id);
	for (i = 0; i < env->n_rcpts; i++)
		env->rcpts[i].bcc = !sp_mime_names_rcpt(&cx.mime, env->rcpts[i].addr);
	/* One copy per form for the To/Cc recipients, one per Bcc recipient;
	 * strongest form first, so logs and receipts read in that order. */
	for (f = 0; f < SP_FORM_COUNT; f++) {
		struct sp_copy *shared = NULL;
		for (i = 0; i < env->n_rcpts; i++) {
			struct sp_rcpt *r = &env->rcpts[i];
			struct sp_copy *cp;
			if ((int)r->form != f)
				continue;
			if (r->bcc) {
				cp = sp_copies_add(out, (enum sp_form)f);
			} else {
				if (shared == NULL)
					shared = sp_copies_add(out, (enum sp_form)f);
				cp = shared;
			}
			sp_copy_add_rcpt(cp, i);
		}
	}
	rv = prepare_pgp(&cx, err, errsz);
	if (rv != SP_COMPOSE_OK)
		goto out;
	for (i = 0; i < out->n; i++) {
		rv = build_copy(&cx, &out->v[i], err, errsz);
		if (rv != SP_COMPOSE_OK)
			goto out;
	}
	rv = SP_COMPOSE_OK;
out:
	sp_mime_free(&cx.mime);
	if (rv != SP_COMPOSE_OK)
		sp_copies_free(out);
	return rv;
}
