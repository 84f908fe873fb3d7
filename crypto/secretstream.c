/* secretstream.c - chunked AEAD framing shared by link messages and sodium copies. */
#include "secretstream.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

_Static_assert(SP_SECRETSTREAM_KEYBYTES == crypto_secretstream_xchacha20poly1305_KEYBYTES, "key size");
_Static_assert(SP_SECRETSTREAM_HEADERBYTES == crypto_secretstream_xchacha20poly1305_HEADERBYTES, "header size");
_Static_assert(SP_SECRETSTREAM_ABYTES == crypto_secretstream_xchacha20poly1305_ABYTES, "abytes");

int
sp_write_buf(void *buf, const void *p, size_t n, char *err, size_t errsz)
{
	struct sp_buf *b = buf;

	if (sp_buf_append(b, p, n) < 0) {
		sp_seterr(err, errsz, "output larger than %zu bytes", b->limit);
		return -1;
	}
	return 0;
}

int
sp_write_stdio(void *fp, const void *p, size_t n, char *err, size_t errsz)
{
	if (n && fwrite(p, 1, n, fp) != n) {
		sp_seterr(err, errsz, "write error: %s", strerror(errno ? errno : EIO));
		return -1;
	}
	return 0;
}

ssize_t
sp_read_stdio(void *fp, void *p, size_t n, char *err, size_t errsz)
{
	size_t got = fread(p, 1, n, fp);

	if (got == 0 && ferror((FILE *)fp)) {
		sp_seterr(err, errsz, "read error: %s", strerror(errno ? errno : EIO));
		return -1;
	}
	return (ssize_t)got;
}

ssize_t
sp_read_mem(void *ctx, void *p, size_t n, char *err, size_t errsz)
{
	struct sp_memreader *mr = ctx;
	size_t left = mr->len - mr->off;

	if (n > left)
		n = left;
	if (n)
		memcpy(p, mr->p + mr->off, n);
	mr->off += n;
	return (ssize_t)n;
}

ssize_t
sp_read_full(sp_read_fn rd, void *ctx, void *p, size_t n, char *err, size_t errsz)
{
	size_t got = 0;
	ssize_t r;

	while (got < n) {
		r = rd(ctx, (unsigned char *)p + got, n - got, err, errsz);
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

size_t
sp_secretstream_size(size_t len)
{
	size_t chunks = len == 0 ? 1 : (len + SP_SECRETSTREAM_CHUNK - 1) / SP_SECRETSTREAM_CHUNK;

	return SP_SECRETSTREAM_HEADERBYTES + chunks * SP_SECRETSTREAM_ABYTES + len;
}

/* ---- push ---- */

struct sp_secretstream_push {
	crypto_secretstream_xchacha20poly1305_state st;
	unsigned char *ad;
	size_t adlen;
	bool first;          /* next chunk is chunk 0: carries ad */
	bool done;           /* finished or failed: no more input */
	unsigned char *pt;   /* buffered plaintext, SP_SECRETSTREAM_CHUNK bytes */
	size_t ptlen;
	unsigned char *ct;   /* one encrypted chunk, SP_SECRETSTREAM_CT_CHUNK bytes */
	sp_write_fn w;
	void *wctx;
};

static struct sp_secretstream_push *
push_alloc(const void *ad, size_t adlen, sp_write_fn w, void *wctx)
{
	struct sp_secretstream_push *s = sp_xcalloc(1, sizeof *s);

	s->ad = adlen ? sp_xmalloc(adlen) : NULL;
	if (adlen)
		memcpy(s->ad, ad, adlen);
	s->adlen = adlen;
	s->first = true;
	s->pt = sp_xmalloc(SP_SECRETSTREAM_CHUNK);
	s->ct = sp_xmalloc(SP_SECRETSTREAM_CT_CHUNK);
	s->w = w;
	s->wctx = wctx;
	return s;
}

static struct sp_secretstream_push *
push_start(struct sp_secretstream_push *s, const unsigned char header[SP_SECRETSTREAM_HEADERBYTES],
           char *err, size_t errsz)
{
	if (s->w(s->wctx, header, SP_SECRETSTREAM_HEADERBYTES, err, errsz) < 0) {
		sp_secretstream_push_free(s);
		return NULL;
	}
	return s;
}

struct sp_secretstream_push *
sp_secretstream_push_new(const unsigned char key[SP_SECRETSTREAM_KEYBYTES], const void *ad, size_t adlen,
                         sp_write_fn w, void *wctx, char *err, size_t errsz)
{
	struct sp_secretstream_push *s = push_alloc(ad, adlen, w, wctx);
	unsigned char header[SP_SECRETSTREAM_HEADERBYTES];

	crypto_secretstream_xchacha20poly1305_init_push(&s->st, header, key);
	return push_start(s, header, err, errsz);
}

struct sp_secretstream_push *
sp_secretstream_push_new_det(const unsigned char key[SP_SECRETSTREAM_KEYBYTES],
                             const unsigned char header[SP_SECRETSTREAM_HEADERBYTES],
                             const void *ad, size_t adlen, sp_write_fn w, void *wctx,
                             char *err, size_t errsz)
{
	struct sp_secretstream_push *s = push_alloc(ad, adlen, w, wctx);

	/* init_push() is "draw a random header, then init_pull()": both derive the
	 * same state (HChaCha20 subkey, counter 1, nonce) from (key, header), so
	 * init_pull() with a fixed header gives the state init_push() would have. */
	if (crypto_secretstream_xchacha20poly1305_init_pull(&s->st, header, key) != 0) {
		sp_seterr(err, errsz, "secretstream: cannot initialise state");
		sp_secretstream_push_free(s);
		return NULL;
	}
	return push_start(s, header, err, errsz);
}

static int
push_chunk(struct sp_secretstream_push *s, unsigned char tag, char *err, size_t errsz)
{
	unsigned long long clen = 0;

	crypto_secretstream_xchacha20poly1305_push(&s->st, s->ct, &clen, s->pt, s->ptlen,
	                                           s->first ? s->ad : NULL, s->first ? s->adlen : 0, tag);
	s->first = false;
	sodium_memzero(s->pt, s->ptlen);
	s->ptlen = 0;
	if (s->w(s->wctx, s->ct, (size_t)clen, err, errsz) < 0) {
		s->done = true;
		return -1;
	}
	return 0;
}

int
sp_secretstream_push_update(struct sp_secretstream_push *s, const void *p, size_t n, char *err, size_t errsz)
{
	const unsigned char *in = p;
	size_t take;

	if (s->done) {
		sp_seterr(err, errsz, "secretstream: update after finish or failure");
		return -1;
	}
	while (n > 0) {
		/* A full buffer is flushed only once more input exists, so the FINAL
		 * chunk is never empty unless the whole plaintext is. */
		if (s->ptlen == SP_SECRETSTREAM_CHUNK &&
		    push_chunk(s, crypto_secretstream_xchacha20poly1305_TAG_MESSAGE, err, errsz) < 0)
			return -1;
		take = SP_SECRETSTREAM_CHUNK - s->ptlen;
		if (take > n)
			take = n;
		memcpy(s->pt + s->ptlen, in, take);
		s->ptlen += take;
		in += take;
		n -= take;
	}
	return 0;
}

int
sp_secretstream_push_finish(struct sp_secretstream_push *s, char *err, size_t errsz)
{
	if (s->done) {
		sp_seterr(err, errsz, "secretstream: finish after finish or failure");
		return -1;
	}
	if (push_chunk(s, crypto_secretstream_xchacha20poly1305_TAG_FINAL, err, errsz) < 0)
		return -1;
	s->done = true;
	return 0;
}

void
sp_secretstream_push_free(struct sp_secretstream_push *s)
{
	if (s == NULL)
		return;
	sodium_memzero(s->pt, SP_SECRETSTREAM_CHUNK);
	sodium_memzero(s->ct, SP_SECRETSTREAM_CT_CHUNK);
	free(s->pt);
	free(s->ct);
	free(s->ad);
	sodium_memzero(s, sizeof *s);
	free(s);
}

/* ---- pull ---- */

int
sp_secretstream_pull(const unsigned char key[SP_SECRETSTREAM_KEYBYTES], const void *ad, size_t adlen,
                     sp_read_fn rd, void *rctx, sp_write_fn w, void *wctx, char *err, size_t errsz)
{
	crypto_secretstream_xchacha20poly1305_state st;
	unsigned char header[SP_SECRETSTREAM_HEADERBYTES];
	unsigned char *ct = sp_xmalloc(SP_SECRETSTREAM_CT_CHUNK);
	unsigned char *pt = sp_xmalloc(SP_SECRETSTREAM_CHUNK);
	unsigned long long plen;
	unsigned char tag, extra;
	size_t i;
	ssize_t n;
	int rv = -1;

	n = sp_read_full(rd, rctx, header, sizeof header, err, errsz);
	if (n < 0)
		goto out;
	if ((size_t)n < sizeof header) {
		sp_seterr(err, errsz, "truncated: the stream header is incomplete");
		goto out;
	}
	if (crypto_secretstream_xchacha20poly1305_init_pull(&st, header, key) != 0) {
		sp_seterr(err, errsz, "invalid stream header");
		goto out;
	}
	for (i = 0;; i++) {
		n = sp_read_full(rd, rctx, ct, SP_SECRETSTREAM_CT_CHUNK, err, errsz);
		if (n < 0)
			goto out;
		if ((size_t)n < SP_SECRETSTREAM_ABYTES) {
			sp_seterr(err, errsz, "truncated: the stream ends after %zu chunk%s without its final chunk",
			          i, i == 1 ? "" : "s");
			goto out;
		}
		if (crypto_secretstream_xchacha20poly1305_pull(&st, pt, &plen, &tag, ct, (unsigned long long)n,
		                                               i == 0 ? ad : NULL, i == 0 ? adlen : 0) != 0) {
			if ((size_t)n < SP_SECRETSTREAM_CT_CHUNK)
				sp_seterr(err, errsz, "chunk %zu (the last one) failed authentication: "
				          "the data is truncated, damaged or tampered with", i);
			else
				sp_seterr(err, errsz, "chunk %zu failed authentication: "
				          "the data is damaged or tampered with", i);
			goto out;
		}
		if (tag == crypto_secretstream_xchacha20poly1305_TAG_FINAL) {
			n = sp_read_full(rd, rctx, &extra, 1, err, errsz);
			if (n < 0)
				goto out;
			if (n > 0) {
				sp_seterr(err, errsz, "unexpected data after the final chunk (chunk %zu)", i);
				goto out;
			}
			if (w != NULL && w(wctx, pt, (size_t)plen, err, errsz) < 0)
				goto out;
			break;
		}
		if (tag != crypto_secretstream_xchacha20poly1305_TAG_MESSAGE) {
			sp_seterr(err, errsz, "chunk %zu has an unexpected tag %u", i, (unsigned)tag);
			goto out;
		}
		if ((size_t)n < SP_SECRETSTREAM_CT_CHUNK) {
			/* A short chunk that is not FINAL: the stream was cut inside it
			 * at a spot that happens to end a shorter valid chunk, which only
			 * a non-conforming writer produces. */
			sp_seterr(err, errsz, "truncated: chunk %zu is short and not final", i);
			goto out;
		}
		if (w != NULL && w(wctx, pt, (size_t)plen, err, errsz) < 0)
			goto out;
	}
	rv = 0;
out:
	sodium_memzero(&st, sizeof st);
	sodium_memzero(pt, SP_SECRETSTREAM_CHUNK);
	free(pt);
	free(ct);
	return rv;
}
