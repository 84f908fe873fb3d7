/* message.c - envelope and copy bookkeeping. */
#include "message.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
sp_envelope_set_note(struct sp_envelope *e, size_t i, const char *note)
{
	free(e->rcpts[i].note);
	e->rcpts[i].note = note && *note ? sp_xstrdup(note) : NULL;
}

void
sp_envelope_free(struct sp_envelope *e)
{
	size_t i;

	for (i = 0; i < e->n_rcpts; i++) {
		free(e->rcpts[i].addr);
		free(e->rcpts[i].note);
	}
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
	cp->spool_fd = -1;
	sp_buf_init(&cp->data, 0);
	return cp;
}

void
sp_copy_blob(const struct sp_copy *cp, struct sp_blob *b, struct sp_span *one)
{
	size_t i;

	memset(b, 0, sizeof *b);
	b->fd = cp->spool_fd;
	if (cp->spool_fd >= 0) {
		b->len = cp->spool_len;
	} else if (cp->spans) {
		b->spans = cp->spans;
		b->n_spans = cp->n_spans;
		for (i = 0; i < cp->n_spans; i++)
			b->len += cp->spans[i].n;
	} else {
		one->p = cp->data.data;
		one->n = cp->data.len;
		b->spans = one;
		b->n_spans = 1;
		b->len = cp->data.len;
	}
}

size_t
sp_copy_len(const struct sp_copy *cp)
{
	struct sp_blob b;
	struct sp_span one;

	sp_copy_blob(cp, &b, &one);
	return b.len;
}

ssize_t
sp_blob_read(const struct sp_blob *b, size_t off, void *buf, size_t n)
{
	size_t i, done = 0;

	if (b->fd >= 0) {
		while (done < n) {
			ssize_t r = pread(b->fd, (char *)buf + done, n - done, (off_t)(off + done));
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0)
				return -1;
			if (r == 0)
				break;
			done += (size_t)r;
		}
		return (ssize_t)done;
	}
	for (i = 0; i < b->n_spans && done < n; i++) {
		const struct sp_span *s = &b->spans[i];
		size_t k;
		if (off >= s->n) {
			off -= s->n;
			continue;
		}
		k = s->n - off < n - done ? s->n - off : n - done;
		memcpy((char *)buf + done, s->p + off, k);
		done += k;
		off = 0;
	}
	return (ssize_t)done;
}

bool
sp_blob_has_8bit(const struct sp_blob *b)
{
	char chunk[65536];
	size_t off = 0, i;
	ssize_t r;

	if (b->fd < 0) {
		for (i = 0; i < b->n_spans; i++)
			if (sp_has_8bit(b->spans[i].p, b->spans[i].n))
				return true;
		return false;
	}
	while ((r = sp_blob_read(b, off, chunk, sizeof chunk)) > 0) {
		if (sp_has_8bit(chunk, (size_t)r))
			return true;
		off += (size_t)r;
	}
	return false;
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
		free(c->v[i].spans);
		if (c->v[i].spool_fd >= 0)
			close(c->v[i].spool_fd);
		free(c->v[i].rcpts);
		free(c->v[i].to_sender);
	}
	free(c->v);
	c->v = NULL;
	c->n = 0;
	if (c->link && c->link_free)
		c->link_free(c->link);
	c->link = NULL;
	c->link_free = NULL;
}
