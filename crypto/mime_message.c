/* mime_message.c - GMime parsing with byte spans for the top-level headers. */
#include "mime_message.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "message.h"
#include "pgp_packets.h"

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

/* The outer header section of an encrypted copy is an allow-list: the
 * fields that routing, threading and display need before anyone decrypts.
 * Everything else the client wrote (Thread-Topic, Keywords, Comments,
 * Resent-*, User-Agent, list and unknown fields...) travels only inside the
 * encryption.  Each entry's reason is in docs/formats.md ("Outer header
 * fields"); Subject is handled apart (sp_mime_write_outer_headers). */
static const char *const outer_fields[] = {
	"From",            /* the author: display, DMARC alignment, replies */
	"Sender",          /* RFC 5322 3.6.2: required when From names several mailboxes */
	"To", "Cc",        /* the visible recipients: display, reply-all; the envelope shows them anyway */
	"Reply-To",        /* where a reply goes, even from a client that cannot decrypt */
	"Date",            /* sorting and display; the provider would add one otherwise */
	"Message-ID",      /* duplicate suppression, threading; the provider would add one */
	"In-Reply-To",     /* threading in the message list, before decryption */
	"References",
	"Autocrypt",       /* Autocrypt Level 1 reads it from the outer header only */
	"Auto-Submitted",  /* RFC 3834: responders that cannot decrypt must not answer it */
};

bool
sp_mime_is_outer_header(const char *name)
{
	size_t i;

	for (i = 0; i < G_N_ELEMENTS(outer_fields); i++)
		if (g_ascii_strcasecmp(name, outer_fields[i]) == 0)
			return true;
	return g_ascii_strcasecmp(name, "Subject") == 0;
}

/* What the outer copy carries for a field: NULL = dropped, "" = as written. */
static const char *
outer_value(const char *name, const char *subject)
{
	if (sp_mime_is_private_header(name) || !sp_mime_is_outer_header(name))
		return NULL;
	if (subject && g_ascii_strcasecmp(name, "Subject") == 0)
		return subject;
	return "";
}

/* The bytes of a field that leave in clear: its first line and its
 * continuation lines (starting with a blank), nothing after.  A span runs
 * to the next field GMime recognised, so a line GMime skipped (no colon, a
 * bad name) would otherwise ride along outside with an allowed field. */
static size_t
outer_field_len(const struct sp_mime *m, const struct sp_mime_header *h)
{
	const char *p = m->data + h->start, *end = m->data + h->end, *nl = p;

	while ((nl = memchr(nl, '\n', (size_t)(end - nl))) != NULL) {
		nl++;
		if (nl == end || (*nl != ' ' && *nl != '\t'))
			return (size_t)(nl - p);
	}
	return h->end - h->start;
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
		} else if (sp_buf_append(out, m->data + h->start, outer_field_len(m, h)) < 0) {
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
 * (each only when the client did not write it), and hp-legacy-display="1"
 * when a Legacy Display Element is inserted.  Copied, not re-encoded
 * through GMime: the field is what the body was written against, and GMime
 * 3.2.13's parameter encoder loops without end on some parameters (a name
 * of 70-72 bytes with an RFC 2231 value; found by fuzzing). */
static int
append_content_type(struct sp_buf *out, const struct sp_mime *m, bool legacy)
{
	GMimeObject *body = g_mime_message_get_mime_part(m->msg);
	GMimeContentType *ct = body ? g_mime_object_get_content_type(body) : NULL;
	const struct sp_mime_header *h = NULL;
	size_t i, n;

	for (i = 0; i < m->n_hdrs; i++)
		if (g_ascii_strcasecmp(m->hdrs[i].name, "Content-Type") == 0)
			h = &m->hdrs[i];
	if (h == NULL || ct == NULL)
		return sp_buf_puts(out, legacy ? "Content-Type: text/plain; charset=us-ascii;\r\n"
		                                 " protected-headers=\"v1\"; hp=\"cipher\"; hp-legacy-display=\"1\"\r\n"
		                               : "Content-Type: text/plain; charset=us-ascii;\r\n"
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
	if (legacy && sp_buf_puts(out, ";\r\n hp-legacy-display=\"1\"") < 0)
		return -1;
	return sp_buf_append(out, "\r\n", 2);
}

/* Quoted-printable encode text (LF line ends) into out with CRLF line ends. */
static int
append_qp(struct sp_buf *out, const char *text)
{
	GMimeEncoding enc;
	size_t n = strlen(text), k, i;
	char *q;
	int rv = 0;

	g_mime_encoding_init_encode(&enc, GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE);
	q = sp_xmalloc(g_mime_encoding_outlen(&enc, n) + 1);
	k = g_mime_encoding_flush(&enc, text, n, q);
	for (i = 0; i < k && rv == 0; i++)
		rv = q[i] == '\n' ? sp_buf_append(out, "\r\n", 2) : sp_buf_append(out, &q[i], 1);
	free(q);
	return rv;
}

/* A new insertion at body offset `at`: its buffer, or NULL when full. */
static struct sp_buf *
add_insert(struct sp_mime_protected *pe, size_t at)
{
	struct sp_mime_insert *in;

	if (pe->n_ins == SP_MIME_PROTECTED_MAX_INSERTS)
		return NULL;
	in = &pe->ins[pe->n_ins++];
	in->at = at;
	sp_buf_init(&in->bytes, 0);
	return &in->bytes;
}

/* Can this text part carry the subject as it is encoded?  Sets *qp. */
static bool
legacy_fits(GMimeObject *part, const char *subject, bool *qp)
{
	GMimeContentType *ct = g_mime_object_get_content_type(part);
	GMimeContentEncoding cte = g_mime_part_get_content_encoding(GMIME_PART(part));
	const char *charset = g_mime_content_type_get_parameter(ct, "charset");
	const char *disp = g_mime_object_get_disposition(part);
	bool ascii = !sp_has_8bit(subject, strlen(subject));

	*qp = cte == GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE;
	if (disp && g_ascii_strcasecmp(disp, "attachment") == 0)
		return false;
	/* The client already marked one: leave its part alone. */
	if (g_mime_content_type_get_parameter(ct, "hp-legacy-display") != NULL)
		return false;
	if (!*qp && cte != GMIME_CONTENT_ENCODING_DEFAULT && cte != GMIME_CONTENT_ENCODING_7BIT &&
	    cte != GMIME_CONTENT_ENCODING_8BIT && cte != GMIME_CONTENT_ENCODING_BINARY)
		return false;
	if (ascii)
		return charset == NULL || g_ascii_strcasecmp(charset, "us-ascii") == 0 ||
		       g_ascii_strcasecmp(charset, "utf-8") == 0;
	return charset != NULL && g_ascii_strcasecmp(charset, "utf-8") == 0 &&
	       cte != GMIME_CONTENT_ENCODING_DEFAULT && cte != GMIME_CONTENT_ENCODING_7BIT;
}

/* The element's text for a part (LF line ends), encoded as the part is,
 * appended to out. */
static int
append_element(struct sp_buf *out, const char *subject, bool html, bool qp)
{
	char *clean = g_strdup(subject), *text, *p;
	int rv;

	/* One line: no control characters from the client's field. */
	for (p = clean; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	/* No trailing blank: in format=flowed text it would join the next line. */
	g_strstrip(clean);
	if (html) {
		char *esc = g_markup_escape_text(clean, -1);
		text = g_strdup_printf("<div class=\"header-protection-legacy-display\"><pre>Subject: %s</pre></div>\n",
		                       esc);
		g_free(esc);
	} else {
		text = g_strdup_printf("Subject: %s\n\n", clean);
	}
	sodium_memzero(clean, strlen(clean));
	g_free(clean);
	if (qp) {
		rv = append_qp(out, text);
	} else {
		rv = 0;
		for (p = text; *p && rv == 0; p++)
			rv = *p == '\n' ? sp_buf_append(out, "\r\n", 2) : sp_buf_append(out, p, 1);
	}
	/* The subject is plaintext. */
	sodium_memzero(text, strlen(text));
	g_free(text);
	return rv;
}

/* Where the element goes in an HTML part whose content is data[start, end):
 * right after <body ...>, or at the start when there is none. */
static size_t
html_insert_at(const char *data, size_t start, size_t end)
{
	const char *b = data + start, *e = data + end, *tag;

	for (tag = b; tag < e && (tag = memchr(tag, '<', (size_t)(e - tag))) != NULL; tag++) {
		if (e - tag > 5 && g_ascii_strncasecmp(tag, "<body", 5) == 0 &&
		    (tag[5] == '>' || g_ascii_isspace(tag[5]))) {
			const char *gt = memchr(tag, '>', (size_t)(e - tag));
			return gt ? (size_t)(gt + 1 - data) : start;
		}
	}
	return start;
}

/* A text part inside a multipart body: where its Content-Type field's last
 * line ends (*ct_end) and where its content starts and ends, as offsets into
 * m->data; false when GMime did not parse it from these bytes. */
static bool
nested_offsets(const struct sp_mime *m, GMimeObject *part, size_t *ct_end, size_t *start, size_t *end)
{
	GMimeHeaderList *hl = g_mime_object_get_header_list(part);
	GMimeDataWrapper *w = g_mime_part_get_content(GMIME_PART(part));
	GMimeStream *st = w ? g_mime_data_wrapper_get_stream(w) : NULL;
	int i, n = hl ? g_mime_header_list_get_count(hl) : 0;
	gint64 ct = -1, last = -1;
	const char *p, *e = m->data + m->len;

	for (i = 0; i < n; i++) {
		GMimeHeader *h = g_mime_header_list_get_header_at(hl, i);
		gint64 off = g_mime_header_get_offset(h);
		if (off < (gint64)m->body_start || off >= (gint64)m->len)
			return false;
		if (g_ascii_strcasecmp(g_mime_header_get_name(h), "Content-Type") == 0)
			ct = off;
		if (off > last)
			last = off;
	}
	if (ct < 0 || st == NULL)
		return false;
	/* The Content-Type field: its first line and continuation lines. */
	for (p = m->data + ct;;) {
		const char *nl = memchr(p, '\n', (size_t)(e - p));
		if (nl == NULL)
			return false;
		if (nl + 1 < e && (nl[1] == ' ' || nl[1] == '\t')) {
			p = nl + 1;
			continue;
		}
		*ct_end = (size_t)(nl - m->data);
		if (*ct_end > 0 && m->data[*ct_end - 1] == '\r')
			(*ct_end)--;
		break;
	}
	/* The content: GMime's bounds of it in the message (the parser keeps
	 * the message stream), which must start right after an empty line
	 * following the part's last field. */
	if (st->bound_start < last || st->bound_start > (gint64)m->len || st->bound_end < st->bound_start ||
	    st->bound_end > (gint64)m->len)
		return false;
	*start = (size_t)st->bound_start;
	*end = (size_t)st->bound_end;
	if (*start < 1 || m->data[*start - 1] != '\n' ||
	    !(( *start >= 2 && m->data[*start - 2] == '\n') ||
	      (*start >= 3 && m->data[*start - 2] == '\r' && m->data[*start - 3] == '\n')))
		return false;
	return true;
}

/* The main body parts (draft-ietf-lamps-e2e-mail-guidance 7.1): the first
 * child of every multipart, every child of multipart/alternative; never
 * inside multipart/signed or encrypted (the client's signature covers the
 * bytes).  Collects at most SP_MIME_PROTECTED_MAX_INSERTS / 2 leaves. */
static void
main_text_parts(GMimeObject *obj, GMimeObject **out, size_t *n, int depth)
{
	GMimeContentType *ct;

	if (obj == NULL || depth > SP_MIME_MAX_DEPTH || *n >= SP_MIME_PROTECTED_MAX_INSERTS / 2)
		return;
	ct = g_mime_object_get_content_type(obj);
	if (GMIME_IS_MULTIPART(obj)) {
		GMimeMultipart *mp = GMIME_MULTIPART(obj);
		int i, k = g_mime_multipart_get_count(mp);
		if (GMIME_IS_MULTIPART_SIGNED(obj) || GMIME_IS_MULTIPART_ENCRYPTED(obj) || k == 0)
			return;
		if (g_mime_content_type_is_type(ct, "multipart", "alternative")) {
			for (i = 0; i < k; i++)
				main_text_parts(g_mime_multipart_get_part(mp, i), out, n, depth + 1);
		} else {
			main_text_parts(g_mime_multipart_get_part(mp, 0), out, n, depth + 1);
		}
		return;
	}
	if (GMIME_IS_PART(obj) &&
	    (g_mime_content_type_is_type(ct, "text", "plain") || g_mime_content_type_is_type(ct, "text", "html")))
		out[(*n)++] = obj;
}

/* RFC 9788 4.5 (Legacy Display Element): when the outer Subject hides the
 * real one, a client that does not read protected headers would show the
 * message without any subject at all; so the real Subject is also written
 * at the start of each main body part (text/plain: a "Subject: ..." line
 * and an empty line; text/html: a div after <body>), and that part's
 * Content-Type is marked hp-legacy-display="1" so that clients that do read
 * protected headers hide it.  Only where the part can carry it as encoded:
 * 7bit/8bit/binary or quoted-printable, us-ascii or UTF-8 (UTF-8 for a
 * non-ASCII subject), not an attachment, not under a signature.  Every
 * byte the client wrote stays, in order: the element and the parameter are
 * insertions.  *top says whether the body itself (a single part) got one:
 * then the parameter goes on the entity's own Content-Type.  0, or -1 out
 * of memory. */
static int
legacy_display(const struct sp_mime *m, const char *outer_subject, struct sp_mime_protected *pe, bool *top)
{
	GMimeObject *body = g_mime_message_get_mime_part(m->msg), *parts[SP_MIME_PROTECTED_MAX_INSERTS / 2];
	const char *subject = g_mime_message_get_subject(m->msg);
	size_t n = 0, i, bs = m->body_start;
	struct sp_buf *b;
	bool qp;

	*top = false;
	if (outer_subject == NULL || subject == NULL || *subject == '\0' || strcmp(subject, outer_subject) == 0 ||
	    body == NULL)
		return 0;
	main_text_parts(body, parts, &n, 1);
	for (i = 0; i < n; i++) {
		bool html = g_mime_content_type_is_type(g_mime_object_get_content_type(parts[i]), "text", "html");
		size_t ct_end, start, end;
		if (!legacy_fits(parts[i], subject, &qp))
			continue;
		if (parts[i] == body) {
			*top = true;
			start = bs;
			end = m->len;
		} else {
			if (!nested_offsets(m, parts[i], &ct_end, &start, &end))
				continue;
			if ((b = add_insert(pe, ct_end - bs)) == NULL)
				break;
			/* The parameter, folded with the field's own line break. */
			if (sp_buf_puts(b, m->data[ct_end] == '\r' ? ";\r\n hp-legacy-display=\"1\""
			                                             : ";\n hp-legacy-display=\"1\"") < 0)
				return -1;
		}
		if ((b = add_insert(pe, (html ? html_insert_at(m->data, start, end) : start) - bs)) == NULL)
			break;
		if (append_element(b, subject, html, qp) < 0)
			return -1;
	}
	return 0;
}

int
sp_mime_protected_build(const struct sp_mime *m, const char *outer_subject, struct sp_mime_protected *pe,
                        char *err, size_t errsz)
{
	struct sp_buf *out = &pe->header;
	size_t i;
	bool top;

	memset(pe, 0, sizeof *pe);
	sp_buf_init(&pe->header, 0);
	if (legacy_display(m, outer_subject, pe, &top) < 0 || append_content_type(out, m, top) < 0)
		goto nomem;
	/* The other content fields exactly as written (Content-Transfer-Encoding...). */
	for (i = 0; i < m->n_hdrs; i++) {
		const struct sp_mime_header *h = &m->hdrs[i];
		if (g_ascii_strncasecmp(h->name, "Content-", 8) == 0 && g_ascii_strcasecmp(h->name, "Content-Type") != 0 &&
		    append_field(out, m, h) < 0)
			goto nomem;
	}
	/* RFC 9788 2.2: every non-structural field the client wrote, in its
	 * order (Bcc and X-Sealpost-* never leave sealpost). */
	for (i = 0; i < m->n_hdrs; i++) {
		const struct sp_mime_header *h = &m->hdrs[i];
		if (!sp_mime_is_structural_header(h->name) && !sp_mime_is_private_header(h->name) &&
		    append_field(out, m, h) < 0)
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
	if (sp_buf_append(out, "\r\n", 2) < 0)
		goto nomem;
	return 0;
nomem:
	sp_mime_protected_wipe(pe);
	sp_seterr(err, errsz, "out of memory building the protected entity");
	return -1;
}

void
sp_mime_protected_wipe(struct sp_mime_protected *pe)
{
	size_t i;

	sp_buf_wipe(&pe->header);
	for (i = 0; i < pe->n_ins; i++)
		sp_buf_wipe(&pe->ins[i].bytes);
	pe->n_ins = 0;
}

size_t
sp_mime_protected_spans(const struct sp_mime *m, const struct sp_mime_protected *pe, struct sp_span *spans)
{
	const char *body = m->data + m->body_start;
	size_t n = 0, i, at = 0;

	spans[n++] = (struct sp_span){ pe->header.data, pe->header.len };
	for (i = 0; i < pe->n_ins; i++) {
		spans[n++] = (struct sp_span){ body + at, pe->ins[i].at - at };
		spans[n++] = (struct sp_span){ pe->ins[i].bytes.data, pe->ins[i].bytes.len };
		at = pe->ins[i].at;
	}
	spans[n++] = (struct sp_span){ body + at, m->len - m->body_start - at };
	return n;
}

int
sp_mime_write_protected_entity(const struct sp_mime *m, const char *outer_subject, struct sp_buf *out,
                               char *err, size_t errsz)
{
	struct sp_mime_protected pe;
	struct sp_span spans[SP_MIME_PROTECTED_MAX_SPANS];
	size_t n, i;
	int rv = 0;

	if (sp_mime_protected_build(m, outer_subject, &pe, err, errsz) < 0)
		return -1;
	n = sp_mime_protected_spans(m, &pe, spans);
	for (i = 0; i < n && rv == 0; i++)
		if (spans[i].n && sp_buf_append(out, spans[i].p, spans[i].n) < 0) {
			sp_seterr(err, errsz, "out of memory building the protected entity");
			rv = -1;
		}
	sp_mime_protected_wipe(&pe);
	return rv;
}

/* Does the body look encrypted at all (an armor line, or multipart/encrypted)? */
static bool
looks_encrypted(GMimeObject *body, const char *p, size_t n)
{
	return GMIME_IS_MULTIPART_ENCRYPTED(body) || memmem(p, n, "-----BEGIN PGP MESSAGE-----", 27) != NULL;
}

/* Only Content-* fields on a part of multipart/encrypted: anything else
 * there is the client's words in clear. */
static bool
part_fields_ok(GMimeObject *part, char *err, size_t errsz)
{
	GMimeHeaderList *hl = g_mime_object_get_header_list(part);
	int i, n = hl ? g_mime_header_list_get_count(hl) : 0;

	for (i = 0; i < n; i++) {
		const char *name = g_mime_header_get_name(g_mime_header_list_get_header_at(hl, i));
		if (g_ascii_strncasecmp(name, "Content-", 8) != 0) {
			sp_seterr(err, errsz, "a %s field on a part of multipart/encrypted", name);
			return false;
		}
	}
	return true;
}

/* The decoded content of a leaf part, into a new byte array (NULL if none). */
static GByteArray *
part_content(GMimeObject *part)
{
	GMimeDataWrapper *w = GMIME_IS_PART(part) ? g_mime_part_get_content(GMIME_PART(part)) : NULL;
	GMimeStream *s;
	GByteArray *ba;

	if (w == NULL)
		return NULL;
	s = g_mime_stream_mem_new();
	g_mime_stream_mem_set_owner(GMIME_STREAM_MEM(s), FALSE);
	if (g_mime_data_wrapper_write_to_stream(w, s) < 0) {
		g_byte_array_unref(g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(s)));
		g_object_unref(s);
		return NULL;
	}
	ba = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(s));
	g_object_unref(s);
	return ba;
}

/* RFC 3156 exactly: protocol application/pgp-encrypted, two parts, the
 * first "Version: 1", the second one armored encrypted OpenPGP message, and
 * no text of the client's anywhere else in the body. */
static bool
is_pgp_mime(GMimeObject *body, char *err, size_t errsz)
{
	GMimeMultipart *mp = GMIME_MULTIPART(body);
	const char *proto = g_mime_content_type_get_parameter(g_mime_object_get_content_type(body), "protocol");
	const char *pre = g_mime_multipart_get_prologue(mp), *post = g_mime_multipart_get_epilogue(mp);
	GMimeObject *version, *payload;
	GByteArray *ba;
	bool ok;

	if (proto == NULL || g_ascii_strcasecmp(proto, "application/pgp-encrypted") != 0) {
		sp_seterr(err, errsz, "multipart/encrypted without protocol=\"application/pgp-encrypted\"");
		return false;
	}
	if (g_mime_multipart_get_count(mp) != 2) {
		sp_seterr(err, errsz, "multipart/encrypted with %d parts, not 2", g_mime_multipart_get_count(mp));
		return false;
	}
	if ((pre && strlen(pre) > SP_MIME_MAX_PGP_PROLOGUE) || (post && strlen(post) > SP_MIME_MAX_PGP_PROLOGUE)) {
		sp_seterr(err, errsz, "multipart/encrypted with more than %d bytes of text before or after its parts",
		          SP_MIME_MAX_PGP_PROLOGUE);
		return false;
	}
	version = g_mime_multipart_get_part(mp, 0);
	payload = g_mime_multipart_get_part(mp, 1);
	if (!GMIME_IS_PART(version) ||
	    !g_mime_content_type_is_type(g_mime_object_get_content_type(version), "application", "pgp-encrypted") ||
	    !GMIME_IS_PART(payload) ||
	    !g_mime_content_type_is_type(g_mime_object_get_content_type(payload), "application", "octet-stream")) {
		sp_seterr(err, errsz, "multipart/encrypted parts are not application/pgp-encrypted and "
		          "application/octet-stream");
		return false;
	}
	if (!part_fields_ok(version, err, errsz) || !part_fields_ok(payload, err, errsz))
		return false;
	if ((ba = part_content(version)) == NULL) {
		sp_seterr(err, errsz, "the application/pgp-encrypted part has no content");
		return false;
	}
	{
		/* An empty part has no data pointer at all (found by fuzzing). */
		char *v = g_strstrip(ba->len ? g_strndup((const char *)ba->data, ba->len) : g_strdup(""));
		ok = strcmp(v, "Version: 1") == 0;
		g_free(v);
		g_byte_array_unref(ba);
	}
	if (!ok) {
		sp_seterr(err, errsz, "the application/pgp-encrypted part is not \"Version: 1\"");
		return false;
	}
	if ((ba = part_content(payload)) == NULL) {
		sp_seterr(err, errsz, "the encrypted part is empty");
		return false;
	}
	ok = ba->len > 0 && sp_pgp_armored_is_encrypted((const char *)ba->data, ba->len, err, errsz);
	if (ba->len == 0)
		sp_seterr(err, errsz, "the encrypted part is empty");
	g_byte_array_unref(ba);
	return ok;
}

bool
sp_mime_is_encrypted(const struct sp_mime *m, char *err, size_t errsz)
{
	GMimeObject *body = g_mime_message_get_mime_part(m->msg);
	const char *p = m->data + m->body_start;
	size_t n = m->len - m->body_start;

	err[0] = '\0';
	if (body == NULL || !looks_encrypted(body, p, n))
		return false;
	if (GMIME_IS_MULTIPART_ENCRYPTED(body))
		return is_pgp_mime(body, err, errsz);
	/* Inline PGP: a text/plain body that is nothing but one armored message,
	 * judged on the bytes as sent: those are what the provider sees. */
	if (!GMIME_IS_PART(body) || !g_mime_content_type_is_type(g_mime_object_get_content_type(body), "text", "plain")) {
		sp_seterr(err, errsz, "PGP armor inside a body that is not one text/plain part");
		return false;
	}
	return sp_pgp_armored_is_encrypted(p, n, err, errsz);
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

int
sp_mime_append_object(GMimeObject *obj, struct sp_buf *out)
{
	struct sp_sink sink = { out, -1 };

	return sp_sink_object(&sink, obj);
}
