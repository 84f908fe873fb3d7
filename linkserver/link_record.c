/* link_record.c - the upload format (see link_record.h). */
#include "link_record.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

static int
put_be(struct sp_buf *b, uint64_t v, unsigned bytes)
{
	unsigned char x[8];
	unsigned i;

	for (i = 0; i < bytes; i++)
		x[i] = (unsigned char)(v >> (8 * (bytes - 1 - i)));
	return sp_buf_append(b, x, bytes);
}

static uint64_t
get_be(const unsigned char *p, unsigned bytes)
{
	uint64_t v = 0;
	unsigned i;

	for (i = 0; i < bytes; i++)
		v = (v << 8) | p[i];
	return v;
}

int
link_record_encode(const struct link_store_new_msg *m, struct sp_buf *out, char *err, size_t errsz)
{
	size_t i;
	int rv = 0;
	bool v1;

	if (m->n_links == 0 || m->n_links > LINK_STORE_LINKS_MAX || m->max_views > UINT32_MAX ||
	    m->max_failed == 0 || m->max_failed > UINT32_MAX || m->ciphertext_len == 0) {
		sp_seterr(err, errsz, "link record: limits out of range");
		return -1;
	}
	v1 = m->sender == NULL && m->hint == NULL;
	rv |= sp_buf_append(out, v1 ? LINK_RECORD_MAGIC_V1 : LINK_RECORD_MAGIC, LINK_RECORD_MAGIC_LEN);
	rv |= put_be(out, (uint64_t)m->expires, 8);
	rv |= put_be(out, m->max_views, 4);
	rv |= put_be(out, m->max_failed, 4);
	rv |= put_be(out, m->n_links, 2);
	if (!v1) {
		const char *sender = m->sender ? m->sender : "", *hint = m->hint ? m->hint : "";
		if (strlen(sender) >= LINK_STORE_SENDER_MAX || strlen(hint) >= LINK_STORE_HINT_MAX) {
			sp_seterr(err, errsz, "link record: sender or hint too long");
			return -1;
		}
		rv |= put_be(out, strlen(sender), 2);
		rv |= sp_buf_append(out, sender, strlen(sender));
		rv |= put_be(out, strlen(hint), 2);
		rv |= sp_buf_append(out, hint, strlen(hint));
	}
	for (i = 0; i < m->n_links; i++) {
		unsigned char id[SP_LINK_IDBYTES];
		size_t idlen = 0;

		if (!link_store_id_valid(m->links[i].id) ||
		    sodium_hex2bin(id, sizeof id, m->links[i].id, SP_LINK_ID_HEXLEN, NULL, &idlen,
		                   NULL) != 0 || idlen != sizeof id ||
		    m->links[i].wrapped_len == 0 || m->links[i].wrapped_len > LINK_STORE_WRAPPED_MAX) {
			sp_seterr(err, errsz, "link record: link %zu is malformed", i);
			return -1;
		}
		rv |= sp_buf_append(out, id, sizeof id);
		rv |= put_be(out, m->links[i].wrapped_len, 2);
		rv |= sp_buf_append(out, m->links[i].wrapped, m->links[i].wrapped_len);
	}
	rv |= put_be(out, m->ciphertext_len, 8);
	rv |= sp_buf_append(out, m->ciphertext, m->ciphertext_len);
	if (rv != 0) {
		sp_seterr(err, errsz, "link record: too large");
		return -1;
	}
	return 0;
}

void
link_record_free(struct link_store_new_msg *m)
{
	free((void *)m->links);
	free((void *)m->sender);
	free((void *)m->hint);
	memset(m, 0, sizeof *m);
}

/* A length-prefixed text field of version 2: a NUL-terminated copy, or NULL
 * (truncated, too long, or holding a NUL). */
static char *
get_text(const unsigned char **pp, const unsigned char *end, size_t max)
{
	const unsigned char *p = *pp;
	size_t n;
	char *s;

	if (end - p < 2)
		return NULL;
	n = (size_t)get_be(p, 2);
	p += 2;
	if (n >= max || (size_t)(end - p) < n || memchr(p, '\0', n) != NULL)
		return NULL;
	s = sp_xmalloc(n + 1);
	memcpy(s, p, n);
	s[n] = '\0';
	*pp = p + n;
	return s;
}

int
link_record_decode(const void *data, size_t len, struct link_store_new_msg *m, char *err, size_t errsz)
{
	/* An empty body may come as NULL: never do arithmetic on NULL. */
	const unsigned char *p = data ? data : (const unsigned char *)"", *end = p + len;
	struct link_store_new_link *links = NULL;
	uint64_t n, i, ct_len;
	bool v2 = false;

	memset(m, 0, sizeof *m);
#define NEED(k, what) do { \
		if ((size_t)(end - p) < (size_t)(k)) { \
			sp_seterr(err, errsz, "link record: truncated in %s", what); \
			goto fail; \
		} \
	} while (0)
	NEED(LINK_RECORD_MAGIC_LEN + 8 + 4 + 4 + 2, "the header");
	if (memcmp(p, LINK_RECORD_MAGIC, LINK_RECORD_MAGIC_LEN) == 0) {
		v2 = true;
	} else if (memcmp(p, LINK_RECORD_MAGIC_V1, LINK_RECORD_MAGIC_LEN) != 0) {
		sp_seterr(err, errsz, "link record: not a version 1 or 2 link record");
		goto fail;
	}
	p += LINK_RECORD_MAGIC_LEN;
	m->expires = (int64_t)get_be(p, 8);
	m->max_views = get_be(p + 8, 4);
	m->max_failed = get_be(p + 12, 4);
	n = get_be(p + 16, 2);
	p += 18;
	if (m->max_failed == 0) {
		sp_seterr(err, errsz, "link record: max_failed is 0");
		goto fail;
	}
	if (n == 0 || n > LINK_STORE_LINKS_MAX) {
		sp_seterr(err, errsz, "link record: %u links (1..%d)", (unsigned)n, LINK_STORE_LINKS_MAX);
		goto fail;
	}
	if (v2 && ((m->sender = get_text(&p, end, LINK_STORE_SENDER_MAX)) == NULL ||
	           (m->hint = get_text(&p, end, LINK_STORE_HINT_MAX)) == NULL)) {
		sp_seterr(err, errsz, "link record: bad sender or hint");
		goto fail;
	}
	links = sp_xcalloc((size_t)n, sizeof *links);
	for (i = 0; i < n; i++) {
		uint64_t wlen;

		NEED(SP_LINK_IDBYTES + 2, "a link");
		sodium_bin2hex(links[i].id, sizeof links[i].id, p, SP_LINK_IDBYTES);
		wlen = get_be(p + SP_LINK_IDBYTES, 2);
		p += SP_LINK_IDBYTES + 2;
		if (wlen == 0 || wlen > LINK_STORE_WRAPPED_MAX) {
			sp_seterr(err, errsz, "link record: wrapped key of %u bytes", (unsigned)wlen);
			goto fail;
		}
		NEED(wlen, "a wrapped key");
		links[i].wrapped = p;
		links[i].wrapped_len = (size_t)wlen;
		p += wlen;
	}
	NEED(8, "the ciphertext length");
	ct_len = get_be(p, 8);
	p += 8;
	if (ct_len == 0 || ct_len != (uint64_t)(end - p)) {
		sp_seterr(err, errsz, "link record: ciphertext length %llu does not match the %zu "
		          "bytes sent", (unsigned long long)ct_len, (size_t)(end - p));
		goto fail;
	}
#undef NEED
	m->ciphertext = p;
	m->ciphertext_len = (size_t)ct_len;
	m->links = links;
	m->n_links = (size_t)n;
	return 0;
fail:
	free(links);
	free((void *)m->sender);
	free((void *)m->hint);
	memset(m, 0, sizeof *m);
	return -1;
}
