/* mime_message.c - GMime parsing with byte spans for the top-level headers. */
#include "mime_message.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

/* Depth and part count of the MIME tree; -1 past the limits. */
static int
check_structure(GMimeObject *obj, int depth, size_t *parts, char *err, size_t errsz)
{
	int i, n;

	if (obj == NULL)
		return 0;
	if (depth > SP_MIME_MAX_DEPTH) {
		sp_seterr(err, errsz, "MIME structure nested deeper than %d levels", SP_MIME_MAX_DEPTH);
		return -1;
	}
	if (++*parts > SP_MIME_MAX_PARTS) {
		sp_seterr(err, errsz, "more than %d MIME parts", SP_MIME_MAX_PARTS);
		return -1;
	}
	if (GMIME_IS_MULTIPART(obj)) {
		n = g_mime_multipart_get_count(GMIME_MULTIPART(obj));
		for (i = 0; i < n; i++)
			if (check_structure(g_mime_multipart_get_part(GMIME_MULTIPART(obj), i), depth + 1, parts,
			                    err, errsz) < 0)
				return -1;
	} else if (GMIME_IS_MESSAGE_PART(obj)) {
		GMimeMessage *inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(obj));
		if (inner && check_structure(g_mime_message_get_mime_part(inner), depth + 1, parts, err, errsz) < 0)
			return -1;
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
	{
		size_t parts = 0;
		if (check_structure(body, 1, &parts, err, errsz) < 0)
			goto fail;
	}
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

bool
sp_mime_is_structural_header(const char *name)
{
	return g_ascii_strcasecmp(name, "MIME-Version") == 0 || g_ascii_strncasecmp(name, "Content-", 8) == 0;
}

/* Fields copied into the protected entity (SPEC: Subject, From, To, Cc, Date,
 * Message-ID inside; the rest helps replies thread correctly). */
static const char *const protected_fields[] = {
	"Subject", "From", "To", "Cc", "Date", "Message-ID", "Reply-To", "In-Reply-To", "References",
};

static bool
is_protected_field(const char *name)
{
	size_t i;

	for (i = 0; i < G_N_ELEMENTS(protected_fields); i++)
		if (g_ascii_strcasecmp(name, protected_fields[i]) == 0)
			return true;
	return false;
}

/* What the outer copy carries for a field: NULL = dropped, "" = as written. */
static const char *
outer_value(const char *name, const char *subject)
{
	if (sp_mime_is_private_header(name) || sp_mime_is_structural_header(name))
		return NULL;
	if (subject && g_ascii_strcasecmp(name, "Subject") == 0)
		return subject;
	return "";
}

int
sp_mime_write_outer_headers(const struct sp_mime *m, const char *subject, struct sp_buf *out)
{
	bool subject_written = false;
	size_t i;

	for (i = 0; i < m->n_hdrs; i++) {
		const struct sp_mime_header *h = &m->hdrs[i];
		const char *v = outer_value(h->name, subject);
		if (v == NULL)
			continue;
		if (*v) {
			/* One replaced Subject, even if the client wrote several. */
			if (subject_written)
				continue;
			subject_written = true;
			if (sp_buf_puts(out, "Subject: ") < 0 || sp_buf_puts(out, v) < 0 || sp_buf_puts(out, "\r\n") < 0)
				return -1;
		} else if (sp_buf_append(out, m->data + h->start, h->end - h->start) < 0) {
			return -1;
		}
	}
	if (subject && !subject_written &&
	    (sp_buf_puts(out, "Subject: ") < 0 || sp_buf_puts(out, subject) < 0 || sp_buf_puts(out, "\r\n") < 0))
		return -1;
	if (m->extra_headers && sp_buf_puts(out, m->extra_headers) < 0)
		return -1;
	return 0;
}

/* Unfolded, trimmed value of one field occurrence, from its raw bytes. */
static char *
field_value(const struct sp_mime *m, const struct sp_mime_header *h)
{
	const char *colon = memchr(m->data + h->start, ':', h->end - h->start);
	char *raw, *v, *r;

	if (colon == NULL)
		return sp_xstrdup("");
	raw = sp_xstrndup(colon + 1, (size_t)(m->data + h->end - colon - 1));
	v = g_mime_utils_header_unfold(raw);
	r = sp_xstrdup(g_strstrip(v));
	g_free(v);
	free(raw);
	return r;
}

/* Append a header field as the client wrote it, ending in a line break even
 * when it was the last line of a message without a body. */
static int
append_field(struct sp_buf *out, const struct sp_mime *m, const struct sp_mime_header *h)
{
	const char *p = m->data + h->start;
	size_t n = h->end - h->start;

	if (sp_buf_append(out, p, n) < 0)
		return -1;
	return n > 0 && p[n - 1] == '\n' ? 0 : sp_buf_append(out, "\r\n", 2);
}

/* The body's Content-Type field as the client wrote it (the last one, the
 * one GMime's parser structured the body by), followed by the protected
 * header markers: RFC 9788 hp="cipher" and the legacy protected-headers="v1"
 * (each only when the client did not write it).  Copied, not re-encoded
 * through GMime: the field is what the body was written against, and GMime
 * 3.2.13's parameter encoder loops without end on some parameters (a name
 * of 70-72 bytes with an RFC 2231 value; found by fuzzing). */
static int
append_content_type(struct sp_buf *out, const struct sp_mime *m)
{
	GMimeObject *body = g_mime_message_get_mime_part(m->msg);
	GMimeContentType *ct = body ? g_mime_object_get_content_type(body) : NULL;
	const struct sp_mime_header *h = NULL;
	size_t i, n;

	for (i = 0; i < m->n_hdrs; i++)
		if (g_ascii_strcasecmp(m->hdrs[i].name, "Content-Type") == 0)
			h = &m->hdrs[i];
	if (h == NULL || ct == NULL)
		return sp_buf_puts(out, "Content-Type: text/plain; charset=us-ascii;\r\n"
		                              " protected-headers=\"v1\"; hp=\"cipher\"\r\n");
	n = h->end - h->start;
	while (n > 0 && (m->data[h->start + n - 1] == '\n' || m->data[h->start + n - 1] == '\r'))
		n--;
	if (sp_buf_append(out, m->data + h->start, n) < 0)
		return -1;
	if (g_mime_content_type_get_parameter(ct, "protected-headers") == NULL &&
	    sp_buf_puts(out, ";\r\n protected-headers=\"v1\"") < 0)
		return -1;
	if (g_mime_content_type_get_parameter(ct, "hp") == NULL && sp_buf_puts(out, ";\r\n hp=\"cipher\"") < 0)
		return -1;
	return sp_buf_append(out, "\r\n", 2);
}

static int write_protected(const struct sp_mime *m, const char *outer_subject, bool with_body,
                           struct sp_buf *out, char *err, size_t errsz);

int
sp_mime_write_protected_entity(const struct sp_mime *m, const char *outer_subject, struct sp_buf *out,
                               char *err, size_t errsz)
{
	return write_protected(m, outer_subject, true, out, err, errsz);
}

int
sp_mime_write_protected_header(const struct sp_mime *m, const char *outer_subject, struct sp_buf *out,
                               char *err, size_t errsz)
{
	return write_protected(m, outer_subject, false, out, err, errsz);
}

static int
write_protected(const struct sp_mime *m, const char *outer_subject, bool with_body, struct sp_buf *out,
                char *err, size_t errsz)
{
	size_t i;

	if (append_content_type(out, m) < 0)
		goto nomem;
	/* The other content fields exactly as written (Content-Transfer-Encoding...). */
	for (i = 0; i < m->n_hdrs; i++) {
		const struct sp_mime_header *h = &m->hdrs[i];
		if (g_ascii_strncasecmp(h->name, "Content-", 8) == 0 && g_ascii_strcasecmp(h->name, "Content-Type") != 0 &&
		    append_field(out, m, h) < 0)
			goto nomem;
	}
	for (i = 0; i < m->n_hdrs; i++) {
		const struct sp_mime_header *h = &m->hdrs[i];
		if (is_protected_field(h->name) && append_field(out, m, h) < 0)
			goto nomem;
	}
	/* RFC 9788 2.2.1: what the outer header section says, so a receiver can
	 * tell which fields were confidential. */
	for (i = 0; i < m->n_hdrs; i++) {
		const struct sp_mime_header *h = &m->hdrs[i];
		const char *v = outer_value(h->name, outer_subject);
		char *val;
		int r;
		if (v == NULL)
			continue;
		val = *v ? sp_xstrdup(v) : field_value(m, h);
		r = sp_buf_printf(out, "HP-Outer: %s: %s\r\n", h->name, val);
		free(val);
		if (r < 0)
			goto nomem;
	}
	if (sp_buf_append(out, "\r\n", 2) < 0 ||
	    (with_body && sp_buf_append(out, m->data + m->body_start, m->len - m->body_start) < 0))
		goto nomem;
	return 0;
nomem:
	sp_seterr(err, errsz, "out of memory building the protected entity");
	return -1;
}

/* Is the body, whitespace aside, exactly one armored OpenPGP message? */
static bool
is_one_armor_block(const char *p, const char *end)
{
	static const char begin[] = "-----BEGIN PGP MESSAGE-----";
	static const char tail[] = "-----END PGP MESSAGE-----";

	while (p < end && g_ascii_isspace(*p))
		p++;
	while (end > p && g_ascii_isspace(end[-1]))
		end--;
	if ((size_t)(end - p) < sizeof begin + sizeof tail || memcmp(p, begin, sizeof begin - 1) != 0 ||
	    memcmp(end - (sizeof tail - 1), tail, sizeof tail - 1) != 0)
		return false;
	/* Only one block: a second BEGIN/END means text around or between. */
	return memmem(p + 1, (size_t)(end - p - 1), begin, sizeof begin - 1) == NULL &&
	       memmem(p, (size_t)(end - p) - (sizeof tail - 1), tail, sizeof tail - 1) == NULL;
}

bool
sp_mime_is_encrypted(const struct sp_mime *m)
{
	GMimeObject *body = g_mime_message_get_mime_part(m->msg);
	GMimeContentType *ct;

	if (body == NULL)
		return false;
	ct = g_mime_object_get_content_type(body);
	if (GMIME_IS_MULTIPART_ENCRYPTED(body)) {
		/* RFC 3156 exactly: the OpenPGP protocol and two parts, the second armored. */
		const char *proto = g_mime_content_type_get_parameter(ct, "protocol");
		GMimeObject *payload;
		GMimeDataWrapper *w;
		GMimeStream *s;
		GByteArray *ba;
		bool ok = false;
		if (proto == NULL || g_ascii_strcasecmp(proto, "application/pgp-encrypted") != 0 ||
		    g_mime_multipart_get_count(GMIME_MULTIPART(body)) != 2)
			return false;
		payload = g_mime_multipart_get_part(GMIME_MULTIPART(body), 1);
		if (!GMIME_IS_PART(payload) || (w = g_mime_part_get_content(GMIME_PART(payload))) == NULL)
			return false;
		s = g_mime_stream_mem_new();
		g_mime_data_wrapper_write_to_stream(w, s);
		ba = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(s));
		ok = ba->len > 0 && is_one_armor_block((const char *)ba->data, (const char *)ba->data + ba->len);
		g_object_unref(s);
		return ok;
	}
	/* Inline PGP: a text/plain body that is nothing but one armored message. */
	if (!GMIME_IS_PART(body) || !g_mime_content_type_is_type(ct, "text", "plain"))
		return false;
	return is_one_armor_block(m->data + m->body_start, m->data + m->len);
}

void
sp_mime_sender(const struct sp_mime *m, char *name, size_t namesz, char *addr, size_t addrsz)
{
	InternetAddressList *from = g_mime_message_get_from(m->msg);
	int i, n = from ? internet_address_list_length(from) : 0;

	name[0] = addr[0] = '\0';
	for (i = 0; i < n; i++) {
		InternetAddress *a = internet_address_list_get_address(from, i);
		if (INTERNET_ADDRESS_IS_MAILBOX(a)) {
			const char *nm = internet_address_get_name(a);
			sp_strlcpy(name, nm ? nm : "", namesz);
			sp_strlcpy(addr, internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(a)), addrsz);
			return;
		}
	}
}

int
sp_sink_write(struct sp_sink *s, const void *p, size_t n)
{
	size_t off = 0;

	if (s->buf)
		return sp_buf_append(s->buf, p, n);
	while (off < n) {
		ssize_t k = write(s->fd, (const char *)p + off, n - off);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		off += (size_t)k;
	}
	return 0;
}

int
sp_sink_object(struct sp_sink *s, GMimeObject *obj)
{
	GMimeFormatOptions *fo;
	GMimeStream *st;
	int fd, rv = -1;

	if (s->buf) {
		fo = g_mime_format_options_new();
		g_mime_format_options_set_newline_format(fo, GMIME_NEWLINE_FORMAT_DOS);
		st = g_mime_stream_mem_new();
		if (g_mime_object_write_to_stream(obj, fo, st) >= 0) {
			GByteArray *ba = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(st));
			rv = sp_buf_append(s->buf, ba->data, ba->len);
		}
		g_object_unref(st);
		g_mime_format_options_free(fo);
		return rv;
	}
	/* A dup shares the file offset: GMime appends where we are. */
	fd = dup(s->fd);
	if (fd < 0)
		return -1;
	fo = g_mime_format_options_new();
	g_mime_format_options_set_newline_format(fo, GMIME_NEWLINE_FORMAT_DOS);
	{
		/* Buffered: GMime writes line by line, the file wants big writes. */
		GMimeStream *fs = g_mime_stream_fs_new(fd);
		st = g_mime_stream_buffer_new(fs, GMIME_STREAM_BUFFER_BLOCK_WRITE);
		g_object_unref(fs);
	}
	if (g_mime_object_write_to_stream(obj, fo, st) >= 0 && g_mime_stream_flush(st) == 0)
		rv = 0;
	g_object_unref(st);
	g_mime_format_options_free(fo);
	return rv;
}
