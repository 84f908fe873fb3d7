/* compose.c - one plaintext message in, the per-form copies out. */
#include "compose.h"

#include <string.h>

#include "log.h"
#include "mime_message.h"

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

/* The plain form: the client's message minus the private headers, byte-exact. */
static enum sp_compose_result
build_plain(const struct sp_mime *m, const struct sp_envelope *env, struct sp_copy *cp,
            char *err, size_t errsz)
{
	if (sp_buf_reserve(&cp->data, m->len) < 0 ||
	    sp_mime_copy_headers(m, drop_private, NULL, &cp->data) < 0 ||
	    sp_buf_append(&cp->data, m->data + m->headers_end, m->len - m->headers_end) < 0) {
		sp_seterr(err, errsz, "out of memory building the copy");
		return SP_COMPOSE_TEMPFAIL;
	}
	cp->eightbit = has_8bit(cp->data.data, cp->data.len);
	cp->smtputf8 = env->smtputf8;
	return SP_COMPOSE_OK;
}

static enum sp_compose_result
build_copy(struct sp_policy *p, const struct sp_mime *m, const struct sp_envelope *env,
           struct sp_copy *cp, char *err, size_t errsz)
{
	(void)p;
	switch (cp->form) {
	case SP_FORM_PLAIN:
		return build_plain(m, env, cp, err, errsz);
	case SP_FORM_PGP:
	case SP_FORM_SODIUM:
	case SP_FORM_LINK:
	default:
		/* Fail closed: a form this build cannot produce is never downgraded. */
		sp_seterr(err, errsz, "the %s form is not available in this build", sp_form_name(cp->form));
		return SP_COMPOSE_PERMFAIL;
	}
}

enum sp_compose_result
sp_compose(struct sp_policy *p, struct sp_envelope *env, char *data, size_t len,
           struct sp_copies *out, char *err, size_t errsz)
{
	enum sp_compose_result rv = SP_COMPOSE_PERMFAIL;
	struct sp_mime m;
	size_t i;
	int f;

	memset(out, 0, sizeof *out);
	if (sp_mime_parse(data, len, &m, err, errsz) < 0)
		return SP_COMPOSE_PERMFAIL;
	for (i = 0; i < env->n_rcpts; i++)
		env->rcpts[i].bcc = !sp_mime_names_rcpt(&m, env->rcpts[i].addr);
	/* Strongest form first, so the log and the receipt read in that order. */
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
	for (i = 0; i < out->n; i++) {
		rv = build_copy(p, &m, env, &out->v[i], err, errsz);
		if (rv != SP_COMPOSE_OK)
			goto out;
	}
	rv = SP_COMPOSE_OK;
out:
	sp_mime_free(&m);
	if (rv != SP_COMPOSE_OK)
		sp_copies_free(out);
	return rv;
}
