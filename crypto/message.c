/* message.c - envelope and copy bookkeeping. */
#include "message.h"

#include "link_copy.h"

#include <stdlib.h>
#include <string.h>

const char *
sp_form_name(enum sp_form f)
{
	static const char *names[] = { "openpgp", "sodium", "link", "plain" };

	return f < SP_FORM_COUNT ? names[f] : "none";
}

void
sp_envelope_init(struct sp_envelope *e)
{
	memset(e, 0, sizeof *e);
}

void
sp_envelope_add_rcpt(struct sp_envelope *e, const char *addr, enum sp_form form, const char *detail)
{
	struct sp_rcpt *r;

	e->rcpts = realloc(e->rcpts, (e->n_rcpts + 1) * sizeof *e->rcpts);
	if (e->rcpts == NULL)
		abort();
	r = &e->rcpts[e->n_rcpts++];
	memset(r, 0, sizeof *r);
	r->addr = sp_xstrdup(addr);
	r->form = form;
	sp_strlcpy(r->detail, detail ? detail : "", sizeof r->detail);
}

void
sp_envelope_free(struct sp_envelope *e)
{
	size_t i;

	for (i = 0; i < e->n_rcpts; i++)
		free(e->rcpts[i].addr);
	free(e->rcpts);
	free(e->mail_from);
	free(e->message_id);
	free(e->subject);
	memset(e, 0, sizeof *e);
}

struct sp_copy *
sp_copies_add(struct sp_copies *c, enum sp_form form)
{
	struct sp_copy *cp;

	c->v = realloc(c->v, (c->n + 1) * sizeof *c->v);
	if (c->v == NULL)
		abort();
	cp = &c->v[c->n++];
	memset(cp, 0, sizeof *cp);
	cp->form = form;
	sp_buf_init(&cp->data, 0);
	return cp;
}

void
sp_copy_add_rcpt(struct sp_copy *c, size_t rcpt)
{
	c->rcpts = realloc(c->rcpts, (c->n_rcpts + 1) * sizeof *c->rcpts);
	if (c->rcpts == NULL)
		abort();
	c->rcpts[c->n_rcpts++] = rcpt;
}

void
sp_copies_free(struct sp_copies *c)
{
	size_t i;

	for (i = 0; i < c->n; i++) {
		/* A plain copy is plaintext: wipe it like any other message data. */
		sp_buf_wipe(&c->v[i].data);
		free(c->v[i].rcpts);
		free(c->v[i].to_sender);
	}
	free(c->v);
	c->v = NULL;
	c->n = 0;
	sp_link_bundle_free(c->link);
	c->link = NULL;
}
