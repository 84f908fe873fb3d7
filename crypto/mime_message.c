/* mime_message.c - GMime parsing with byte spans for the top-level headers. */
#include "mime_message.h"

#include <stdlib.h>
#include <string.h>

#include "message.h"

static GOnce mime_once = G_ONCE_INIT;

static gpointer
mime_init_once(gpointer arg)
{
	(void)arg;
	g_mime_init();
	return NULL;
}

void
sp_mime_global_init(void)
{
	g_once(&mime_once, mime_init_once, NULL);
}

static int
cmp_start(const void *a, const void *b)
{
	const struct sp_mime_header *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

static int
collect_headers(struct sp_mime *m, GMimeHeaderList *hl, bool content, char *err, size_t errsz)
{
	int i, count = hl ? g_mime_header_list_get_count(hl) : 0;

	for (i = 0; i < count; i++) {
		GMimeHeader *h = g_mime_header_list_get_header_at(hl, i);
		gint64 off = g_mime_header_get_offset(h);
		struct sp_mime_header *e;

		/* Only fields that were parsed from this stream (offset >= 0) have bytes. */
		if (off < 0 || (size_t)off >= m->headers_end)
			continue;
		if (m->n_hdrs == SP_MIME_MAX_HEADERS) {
			sp_seterr(err, errsz, "message has more than %d header fields", SP_MIME_MAX_HEADERS);
			return -1;
		}
		e = &m->hdrs[m->n_hdrs++];
		e->name = g_mime_header_get_name(h);
		e->start = (size_t)off;
		e->content = content;
	}
	return 0;
}

int
sp_mime_parse(char *data, size_t len, struct sp_mime *m, char *err, size_t errsz)
{
	GMimeObject *body;
	gint64 hend;
	size_t i;

	sp_mime_global_init();
	memset(m, 0, sizeof *m);
	m->data = data;
	m->len = len;
	/* Lend the buffer to GMime without copying (a 50 MB message stays one copy);
	 * sp_mime_free steals it back before the array is released. */
	m->array = g_byte_array_new_take((guint8 *)data, len);
	m->stream = g_mime_stream_mem_new_with_byte_array(m->array);
	g_mime_stream_mem_set_owner(GMIME_STREAM_MEM(m->stream), FALSE);
	m->parser = g_mime_parser_new_with_stream(m->stream);
	g_mime_parser_set_format(m->parser, GMIME_FORMAT_MESSAGE);
	m->msg = g_mime_parser_construct_message(m->parser, NULL);
	if (m->msg == NULL) {
		sp_seterr(err, errsz, "not a parseable RFC 5322 message");
		goto fail;
	}
	hend = g_mime_parser_get_headers_end(m->parser);
	m->headers_end = hend < 0 || (size_t)hend > len ? len : (size_t)hend;
	m->body_start = m->headers_end;
	if (m->body_start < len && data[m->body_start] == '\r')
		m->body_start++;
	if (m->body_start < len && data[m->body_start] == '\n')
		m->body_start++;
	m->hdrs = sp_xcalloc(SP_MIME_MAX_HEADERS, sizeof *m->hdrs);
	if (collect_headers(m, g_mime_object_get_header_list(GMIME_OBJECT(m->msg)), false, err, errsz) < 0)
		goto fail;
	body = g_mime_message_get_mime_part(m->msg);
	if (body && collect_headers(m, g_mime_object_get_header_list(body), true, err, errsz) < 0)
		goto fail;
	qsort(m->hdrs, m->n_hdrs, sizeof *m->hdrs, cmp_start);
	for (i = 0; i < m->n_hdrs; i++)
		m->hdrs[i].end = i + 1 < m->n_hdrs ? m->hdrs[i + 1].start : m->headers_end;
	return 0;
fail:
	sp_mime_free(m);
	return -1;
}

void
sp_mime_free(struct sp_mime *m)
{
	gsize n;

	if (m->msg)
		g_object_unref(m->msg);
	if (m->parser)
		g_object_unref(m->parser);
	if (m->stream)
		g_object_unref(m->stream);
	if (m->array) {
		/* Give the caller's buffer back untouched. */
		(void)g_byte_array_steal(m->array, &n);
		g_byte_array_unref(m->array);
	}
	free(m->hdrs);
	memset(m, 0, sizeof *m);
}

static bool
list_names(InternetAddressList *list, const char *addr)
{
	int i, n = list ? internet_address_list_length(list) : 0;

	for (i = 0; i < n; i++) {
		InternetAddress *a = internet_address_list_get_address(list, i);
		if (INTERNET_ADDRESS_IS_MAILBOX(a)) {
			const char *x = internet_address_mailbox_get_idn_addr(INTERNET_ADDRESS_MAILBOX(a));
			const char *y = internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(a));
			if ((x && sp_addr_equal(x, addr)) || (y && sp_addr_equal(y, addr)))
				return true;
		} else if (INTERNET_ADDRESS_IS_GROUP(a)) {
			if (list_names(internet_address_group_get_members(INTERNET_ADDRESS_GROUP(a)), addr))
				return true;
		}
	}
	return false;
}

bool
sp_mime_names_rcpt(const struct sp_mime *m, const char *addr)
{
	return list_names(g_mime_message_get_addresses(m->msg, GMIME_ADDRESS_TYPE_TO), addr) ||
	       list_names(g_mime_message_get_addresses(m->msg, GMIME_ADDRESS_TYPE_CC), addr);
}

char *
sp_mime_header_value(const struct sp_mime *m, const char *name)
{
	GMimeHeaderList *hl = g_mime_object_get_header_list(GMIME_OBJECT(m->msg));
	GMimeHeader *h = g_mime_header_list_get_header(hl, name);
	const char *raw;
	char *v;

	if (h == NULL) {
		GMimeObject *body = g_mime_message_get_mime_part(m->msg);
		if (body)
			h = g_mime_header_list_get_header(g_mime_object_get_header_list(body), name);
	}
	if (h == NULL || (raw = g_mime_header_get_raw_value(h)) == NULL)
		return NULL;
	v = g_mime_utils_header_unfold(raw);
	{
		char *r = sp_xstrdup(g_strstrip(v));
		g_free(v);
		return r;
	}
}

int
sp_mime_copy_headers(const struct sp_mime *m, sp_mime_header_filter drop, void *arg, struct sp_buf *out)
{
	size_t i;

	/* Bytes before the first field (none in a well-formed message) are kept. */
	if (m->n_hdrs && m->hdrs[0].start > 0 && sp_buf_append(out, m->data, m->hdrs[0].start) < 0)
		return -1;
	for (i = 0; i < m->n_hdrs; i++) {
		const struct sp_mime_header *h = &m->hdrs[i];
		if (drop && drop(h->name, arg))
			continue;
		if (sp_buf_append(out, m->data + h->start, h->end - h->start) < 0)
			return -1;
	}
	return 0;
}

bool
sp_mime_is_private_header(const char *name)
{
	return g_ascii_strcasecmp(name, "Bcc") == 0 || g_ascii_strncasecmp(name, "X-Sealpost-", 11) == 0;
}
