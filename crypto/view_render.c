/* view_render.c - a MIME message -> the view its recipient sees (see view_render.h). */
#include "view_render.h"

#include <stdlib.h>
#include <string.h>

#include <gmime/gmime.h>
#include <sodium.h>

#include "html_sanitize.h"
#include "mime_message.h"

static void
wipe_free(char *s)
{
	sp_free_secret(s);
}

void
sp_view_attachment_clear(struct sp_view_attachment *a)
{
	if (a == NULL)
		return;
	wipe_free(a->filename);
	free(a->content_type);
	if (a->data) {
		sodium_memzero(a->data, a->len);
		free(a->data);
	}
	memset(a, 0, sizeof *a);
}

void
sp_view_free(struct sp_view *m)
{
	size_t i;

	if (m == NULL)
		return;
	wipe_free(m->from);
	wipe_free(m->to);
	wipe_free(m->cc);
	wipe_free(m->date);
	wipe_free(m->subject);
	wipe_free(m->message_id);
	wipe_free(m->text);
	wipe_free(m->html);
	for (i = 0; i < m->n_att; i++)
		sp_view_attachment_clear(&m->att[i]);
	free(m->att);
	wipe_free(m->sender_key);
	memset(m, 0, sizeof *m);
}

/* GLib strings freed with g_free; our model frees with free(): copy across. */
static char *
to_malloc(char *gs)
{
	char *r;

	if (gs == NULL)
		return NULL;
	r = sp_xstrdup(gs);
	sodium_memzero(gs, strlen(gs));
	g_free(gs);
	return r;
}

/* A GLib string that held plaintext: wiped, then g_free'd. */
static void
g_free_wiped(char *gs)
{
	if (gs == NULL)
		return;
	sodium_memzero(gs, strlen(gs));
	g_free(gs);
}

/* A UTF-8 copy of s (invalid sequences replaced), or NULL for NULL/empty. */
static char *
utf8_dup(const char *s)
{
	if (s == NULL || *s == '\0')
		return NULL;
	return to_malloc(g_utf8_make_valid(s, -1));
}

static char *
addresses(InternetAddressList *list)
{
	char *s, *r;

	if (list == NULL || internet_address_list_length(list) == 0)
		return NULL;
	s = internet_address_list_to_string(list, NULL, FALSE);
	r = utf8_dup(s);
	g_free(s);
	return r;
}

/* Is s[0..len) an encoded-word "=?charset?E?text?=" (RFC 2047 section 2,
 * language suffix allowed)?  *enc gets E, lower case. */
static bool
encoded_word(const char *s, size_t len, char *enc)
{
	const char *q;

	if (len < 8 || memcmp(s, "=?", 2) != 0 || memcmp(s + len - 2, "?=", 2) != 0)
		return false;
	q = memchr(s + 2, '?', len - 4);
	if (q == NULL || q == s + 2 || (size_t)(q - s) + 3 > len - 2 || q[2] != '?')
		return false;
	*enc = (char)g_ascii_tolower(q[1]);
	return (*enc == 'b' || *enc == 'q') && memchr(q + 3, '?', (size_t)(s + len - 2 - (q + 3))) == NULL;
}

/* GMime 3.2.13 (Debian 12) decodes adjacent base64 encoded-words of one
 * charset as one base64 stream and stops at the first one's padding:
 * "=?utf-8?b?YSA=?= =?utf-8?b?Yg==?=" reads "a " (jstedfast/gmime#133, fixed
 * in later releases), so a long non-ASCII subject or name, which mailers fold
 * into several words, loses its end.  An empty encoded-word between such a
 * pair keeps them apart and shows nothing (white space between encoded-words
 * is not shown, RFC 2047 section 6.2).  Returns the raw value of header
 * `name` with those inserted, unfolded (g_free), or NULL when it has no padded
 * word followed by another: then GMime's own decoding stands. */
static char *
gmime133_separate(GMimeMessage *msg, const char *name)
{
	GMimeHeaderList *hl = g_mime_object_get_header_list(GMIME_OBJECT(msg));
	GMimeHeader *h = hl ? g_mime_header_list_get_header(hl, name) : NULL;
	const char *raw = h ? g_mime_header_get_raw_value(h) : NULL, *p, *tok;
	GString *fixed;
	char *r, enc, enc2;
	bool changed = false;

	if (raw == NULL)
		return NULL;
	fixed = g_string_new(NULL);
	for (p = raw; *p != '\0';) {
		/* White space, then one token up to the next white space. */
		size_t ws = strspn(p, " \t\r\n"), len, ws2, len2;
		g_string_append_len(fixed, p, (gssize)ws);
		tok = p + ws;
		len = strcspn(tok, " \t\r\n");
		g_string_append_len(fixed, tok, (gssize)len);
		p = tok + len;
		/* A padded B-word, white space, then another encoded-word. */
		ws2 = strspn(p, " \t\r\n");
		len2 = strcspn(p + ws2, " \t\r\n");
		if (ws2 > 0 && encoded_word(tok, len, &enc) && enc == 'b' && tok[len - 3] == '=' &&
		    encoded_word(p + ws2, len2, &enc2)) {
			g_string_append(fixed, " =?us-ascii?q?\?=");
			changed = true;
		}
	}
	r = changed ? g_mime_utils_header_unfold(fixed->str) : NULL;
	sodium_memzero(fixed->str, fixed->len);
	g_string_free(fixed, TRUE);
	return r;
}

static char *
subject_text(GMimeMessage *msg)
{
	char *fixed = gmime133_separate(msg, "Subject"), *decoded, *r;

	if (fixed == NULL)
		return utf8_dup(g_mime_message_get_subject(msg));
	decoded = g_mime_utils_header_decode_text(NULL, fixed);
	r = utf8_dup(g_strchug(decoded));
	g_free_wiped(fixed);
	g_free_wiped(decoded);
	return r;
}

static char *
address_text(GMimeMessage *msg, const char *name, InternetAddressList *parsed)
{
	char *fixed = gmime133_separate(msg, name), *r;
	InternetAddressList *list;

	if (fixed == NULL)
		return addresses(parsed);
	list = internet_address_list_parse(NULL, fixed);
	r = addresses(list);
	if (list != NULL)
		g_object_unref(list);
	g_free_wiped(fixed);
	return r;
}

/* Decoded bytes of a leaf part (transfer encoding undone). */
static int
part_bytes(GMimeObject *obj, unsigned char **data, size_t *len)
{
	GMimeStream *mem = g_mime_stream_mem_new();
	GByteArray *arr;
	int rv = -1;

	if (GMIME_IS_PART(obj)) {
		GMimeDataWrapper *w = g_mime_part_get_content(GMIME_PART(obj));
		if (w == NULL || g_mime_data_wrapper_write_to_stream(w, mem) < 0) {
			if (w != NULL)
				goto out;
		}
	} else if (g_mime_object_write_to_stream(obj, NULL, mem) < 0) {
		goto out;
	}
	arr = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));
	*len = arr->len;
	*data = sp_xmalloc(arr->len ? arr->len : 1);
	if (arr->len) {
		memcpy(*data, arr->data, arr->len);
		sodium_memzero(arr->data, arr->len);
	}
	rv = 0;
out:
	g_object_unref(mem);
	return rv;
}

/* Text of a text part in UTF-8, from its declared charset. */
static char *
part_text(GMimeTextPart *tp)
{
	char *t = g_mime_text_part_get_text(tp), *r;

	if (t == NULL)
		return NULL;
	r = g_utf8_make_valid(t, -1);
	sodium_memzero(t, strlen(t));
	g_free(t);
	return to_malloc(r);
}

static void
add_attachment(struct sp_view *m, GMimeObject *obj, const char *name, int index)
{
	GMimeContentType *ct = g_mime_object_get_content_type(obj);
	struct sp_view_attachment a = { 0 };
	char *mime = ct ? g_mime_content_type_get_mime_type(ct) : NULL;

	if (m->n_att >= SP_VIEW_MAX_PARTS) {
		m->truncated = true;
		g_free(mime);
		return;
	}
	if (part_bytes(obj, &a.data, &a.len) < 0) {
		g_free(mime);
		return;
	}
	if (name != NULL && *name != '\0') {
		char *v = g_utf8_make_valid(name, -1);
		a.filename = to_malloc(v);
	} else if (GMIME_IS_MESSAGE_PART(obj)) {
		a.filename = sp_xasprintf("message-%d.eml", index);
	} else {
		a.filename = sp_xasprintf("part-%d.bin", index);
	}
	/* GMime decodes 8-bit header bytes by a fallback charset; valid UTF-8
	 * whatever it did (the view document carries only UTF-8). */
	a.content_type = to_malloc(g_utf8_make_valid(mime ? mime : "application/octet-stream", -1));
	g_free(mime);
	m->att = realloc(m->att, (m->n_att + 1) * sizeof *m->att);
	if (m->att == NULL)
		abort();
	m->att[m->n_att++] = a;
}

struct walk {
	struct sp_view *m;
	int parts;
	/* Image parts with a Content-ID inside a multipart/related: what cid:
	 * URLs of the HTML body may name.  The message outlives the walk's use. */
	GMimeObject *images[SP_VIEW_MAX_INLINE_IMAGES];
	size_t n_images;
	size_t inlined;      /* decoded bytes inlined so far */
	bool flowed, delsp;  /* the text body is format=flowed (RFC 3676) */
};

static bool
param_is(GMimeContentType *ct, const char *name, const char *value)
{
	const char *v = g_mime_content_type_get_parameter(ct, name);

	return v != NULL && g_ascii_strcasecmp(v, value) == 0;
}

static void
note_inline_image(struct walk *w, GMimeObject *obj)
{
	GMimeContentType *ct = g_mime_object_get_content_type(obj);

	if (ct == NULL || !g_mime_content_type_is_type(ct, "image", "*") ||
	    g_mime_object_get_content_id(obj) == NULL ||
	    w->n_images >= SP_VIEW_MAX_INLINE_IMAGES)
		return;
	w->images[w->n_images++] = obj;
}

/* The image type of data[0..len) by its magic number: only the raster types a
 * browser decodes without running anything.  Never SVG, whatever is declared. */
static const char *
image_type(const unsigned char *d, size_t len)
{
	if (len >= 8 && memcmp(d, "\x89PNG\r\n\x1a\n", 8) == 0)
		return "png";
	if (len >= 6 && (memcmp(d, "GIF87a", 6) == 0 || memcmp(d, "GIF89a", 6) == 0))
		return "gif";
	if (len >= 3 && d[0] == 0xff && d[1] == 0xd8 && d[2] == 0xff)
		return "jpeg";
	if (len >= 12 && memcmp(d, "RIFF", 4) == 0 && memcmp(d + 8, "WEBP", 4) == 0)
		return "webp";
	return NULL;
}

/* sp_html_cid_fn: "cid:ID" (RFC 2392: ID percent-encoded) -> data: URL. */
static char *
resolve_cid(const char *cid, void *arg)
{
	struct walk *w = arg;
	char *id = g_uri_unescape_string(cid, NULL), *url = NULL;
	unsigned char *data = NULL;
	const char *type;
	size_t i, len = 0, b64len, off;

	if (id == NULL)
		return NULL;
	for (i = 0; i < w->n_images; i++) {
		const char *have = g_mime_object_get_content_id(w->images[i]);
		if (have != NULL && strcmp(have, id) == 0)
			break;
	}
	if (i == w->n_images || part_bytes(w->images[i], &data, &len) < 0)
		goto out;
	if (len > SP_VIEW_MAX_INLINE_IMAGE_BYTES || len > SP_VIEW_MAX_INLINE_TOTAL - w->inlined ||
	    (type = image_type(data, len)) == NULL)
		goto out;
	w->inlined += len;
	b64len = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL);
	url = sp_xmalloc(sizeof "data:image/jpeg;base64," + b64len);
	off = (size_t)sprintf(url, "data:image/%s;base64,", type);
	sodium_bin2base64(url + off, b64len, data, len, sodium_base64_VARIANT_ORIGINAL);
out:
	if (data != NULL) {
		sodium_memzero(data, len);
		free(data);
	}
	g_free(id);
	return url;
}

static void
walk(struct walk *w, GMimeObject *obj, int depth, bool in_related)
{
	struct sp_view *m = w->m;

	if (obj == NULL)
		return;
	if (++w->parts > SP_VIEW_MAX_PARTS || depth > SP_VIEW_MAX_DEPTH) {
		m->truncated = true;
		return;
	}
	if (GMIME_IS_MULTIPART(obj)) {
		GMimeMultipart *mp = GMIME_MULTIPART(obj);
		GMimeContentType *ct = g_mime_object_get_content_type(obj);
		int i, n = g_mime_multipart_get_count(mp);
		bool related = in_related || (ct && g_mime_content_type_is_type(ct, "multipart", "related"));
		for (i = 0; i < n; i++)
			walk(w, g_mime_multipart_get_part(mp, i), depth + 1, related);
		return;
	}
	if (GMIME_IS_MESSAGE_PART(obj)) {
		/* A forwarded message: offered as a .eml download, not inlined. */
		const char *name = NULL;
		GMimeContentDisposition *d = g_mime_object_get_content_disposition(obj);
		if (d != NULL)
			name = g_mime_content_disposition_get_parameter(d, "filename");
		add_attachment(m, obj, name, w->parts);
		return;
	}
	if (GMIME_IS_PART(obj)) {
		GMimePart *part = GMIME_PART(obj);
		GMimeContentDisposition *d = g_mime_object_get_content_disposition(obj);
		const char *name = g_mime_part_get_filename(part);
		bool attachment = (d != NULL && g_mime_content_disposition_is_attachment(d)) ||
		                  (name != NULL && *name != '\0');

		if (in_related)
			note_inline_image(w, obj);
		if (!attachment && GMIME_IS_TEXT_PART(obj)) {
			GMimeContentType *ct = g_mime_object_get_content_type(obj);
			if (m->text == NULL && g_mime_content_type_is_type(ct, "text", "plain")) {
				m->text = part_text(GMIME_TEXT_PART(obj));
				w->flowed = param_is(ct, "format", "flowed");
				w->delsp = param_is(ct, "delsp", "yes");
				return;
			}
			if (m->html == NULL && g_mime_content_type_is_type(ct, "text", "html")) {
				m->html = part_text(GMIME_TEXT_PART(obj));
				return;
			}
		}
		add_attachment(m, obj, name, w->parts);
	}
}

int
sp_view_render(const void *data, size_t len, struct sp_view *out, char *err, size_t errsz)
{
	GMimeStream *stream = NULL;
	GMimeParser *parser = NULL;
	GMimeMessage *msg = NULL;
	GByteArray *arr;
	GDateTime *date;
	struct walk w = { .m = out };
	int rv = -1;

	memset(out, 0, sizeof *out);
	sp_mime_global_init();
	stream = g_mime_stream_mem_new_with_buffer(data, len);
	parser = g_mime_parser_new_with_stream(stream);
	msg = g_mime_parser_construct_message(parser, NULL);
	if (msg == NULL) {
		sp_seterr(err, errsz, "the decrypted data is not a MIME message");
		goto out;
	}
	out->from = address_text(msg, "From", g_mime_message_get_from(msg));
	out->to = address_text(msg, "To", g_mime_message_get_to(msg));
	out->cc = address_text(msg, "Cc", g_mime_message_get_cc(msg));
	out->subject = subject_text(msg);
	out->message_id = utf8_dup(g_mime_message_get_message_id(msg));
	if ((date = g_mime_message_get_date(msg)) != NULL)
		out->date = to_malloc(g_date_time_format(date, "%a, %-d %b %Y %H:%M %z"));
	walk(&w, g_mime_message_get_mime_part(msg), 0, false);
	if (out->text != NULL && w.flowed) {
		char *flowed = sp_view_flowed(out->text, w.delsp);
		wipe_free(out->text);
		out->text = flowed;
	}
	if (out->html != NULL) {
		/* Only the sanitised HTML is ever kept: on failure there is none. */
		char *safe = NULL, herr[256];
		size_t safelen;
		if (sp_html_sanitize(out->html, strlen(out->html), resolve_cid, &w, &safe, &safelen,
		                     herr, sizeof herr) < 0) {
			out->html_refused = true;
			safe = NULL;
		}
		wipe_free(out->html);
		out->html = safe;
	}
	rv = 0;
out:
	if (msg)
		g_object_unref(msg);
	if (parser)
		g_object_unref(parser);
	if (stream) {
		/* The stream holds a copy of the plaintext: wipe it. */
		arr = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(stream));
		if (arr && arr->len)
			sodium_memzero(arr->data, arr->len);
		g_object_unref(stream);
	}
	if (rv < 0)
		sp_view_free(out);
	return rv;
}

/* One physical line of flowed text: quote depth, content after the quote
 * marks and the stuffed space, and whether it ends in a soft break. */
struct flowed_line {
	size_t depth;
	const char *text;
	size_t len;
	bool soft;
};

static void
flowed_parse(const char *p, size_t len, bool delsp, struct flowed_line *l)
{
	l->depth = 0;
	while (len > 0 && *p == '>') {
		l->depth++;
		p++;
		len--;
	}
	if (len > 0 && *p == ' ') {    /* space-stuffing (RFC 3676 4.4) */
		p++;
		len--;
	}
	l->text = p;
	l->len = len;
	/* The signature separator "-- " is never flowed (4.3). */
	l->soft = len > 0 && p[len - 1] == ' ' && !(len == 3 && memcmp(p, "-- ", 3) == 0);
	if (l->soft && delsp)
		l->len--;
}

char *
sp_view_flowed(const char *text, bool delsp)
{
	struct sp_buf b;
	const char *p = text, *end = text + strlen(text);
	bool open = false;    /* a paragraph is open (the last line was soft) */
	size_t open_depth = 0, i;

	sp_buf_init(&b, 0);
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
		struct flowed_line l;

		if (len > 0 && p[len - 1] == '\r')
			len--;
		flowed_parse(p, len, delsp, &l);
		/* A soft break followed by another quote depth is a hard one (4.5), and
		 * the signature separator always starts a line of its own (4.3). */
		if (open && (l.depth != open_depth || (l.len == 3 && memcmp(l.text, "-- ", 3) == 0))) {
			sp_buf_puts(&b, "\n");
			open = false;
		}
		if (!open && l.depth > 0) {
			for (i = 0; i < l.depth; i++)
				sp_buf_puts(&b, ">");
			sp_buf_puts(&b, " ");
		}
		sp_buf_append(&b, l.text, l.len);
		if (l.soft) {
			open = true;
			open_depth = l.depth;
		} else {
			sp_buf_puts(&b, "\n");
			open = false;
		}
		p = nl ? nl + 1 : end;
	}
	if (open)
		sp_buf_puts(&b, "\n");
	/* The input's final line end is not a line of its own. */
	if (b.len > 0 && (end == text || end[-1] != '\n'))
		b.len--, b.data[b.len] = '\0';
	if (b.data == NULL)
		return sp_xstrdup("");
	return sp_buf_steal(&b, NULL);
}
