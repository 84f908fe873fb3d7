/* web_render.c - decrypted MIME message -> display model (see web_render.h). */
#include "web_render.h"

#include <stdlib.h>
#include <string.h>

#include <gmime/gmime.h>
#include <sodium.h>

#include "mime_message.h"

static void
wipe_free(char *s)
{
	sp_free_secret(s);
}

void
web_attachment_clear(struct web_attachment *a)
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
web_message_free(struct web_message *m)
{
	size_t i;

	if (m == NULL)
		return;
	wipe_free(m->from);
	wipe_free(m->to);
	wipe_free(m->cc);
	wipe_free(m->date);
	wipe_free(m->subject);
	wipe_free(m->text);
	wipe_free(m->html);
	for (i = 0; i < m->n_att; i++)
		web_attachment_clear(&m->att[i]);
	free(m->att);
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
add_attachment(struct web_message *m, GMimeObject *obj, const char *name, int index)
{
	GMimeContentType *ct = g_mime_object_get_content_type(obj);
	struct web_attachment a = { 0 };
	char *mime = ct ? g_mime_content_type_get_mime_type(ct) : NULL;

	if (m->n_att >= WEB_RENDER_MAX_PARTS) {
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
	a.content_type = sp_xstrdup(mime ? mime : "application/octet-stream");
	g_free(mime);
	m->att = realloc(m->att, (m->n_att + 1) * sizeof *m->att);
	if (m->att == NULL)
		abort();
	m->att[m->n_att++] = a;
}

struct walk {
	struct web_message *m;
	int parts;
};

static void
walk(struct walk *w, GMimeObject *obj, int depth)
{
	struct web_message *m = w->m;

	if (obj == NULL)
		return;
	if (++w->parts > WEB_RENDER_MAX_PARTS || depth > WEB_RENDER_MAX_DEPTH) {
		m->truncated = true;
		return;
	}
	if (GMIME_IS_MULTIPART(obj)) {
		GMimeMultipart *mp = GMIME_MULTIPART(obj);
		int i, n = g_mime_multipart_get_count(mp);
		for (i = 0; i < n; i++)
			walk(w, g_mime_multipart_get_part(mp, i), depth + 1);
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

		if (!attachment && GMIME_IS_TEXT_PART(obj)) {
			GMimeContentType *ct = g_mime_object_get_content_type(obj);
			if (m->text == NULL && g_mime_content_type_is_type(ct, "text", "plain")) {
				m->text = part_text(GMIME_TEXT_PART(obj));
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
web_render_parse(const void *data, size_t len, struct web_message *out, char *err, size_t errsz)
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
	out->from = addresses(g_mime_message_get_from(msg));
	out->to = addresses(g_mime_message_get_to(msg));
	out->cc = addresses(g_mime_message_get_cc(msg));
	out->subject = utf8_dup(g_mime_message_get_subject(msg));
	if ((date = g_mime_message_get_date(msg)) != NULL)
		out->date = to_malloc(g_date_time_format(date, "%a, %-d %b %Y %H:%M %z"));
	walk(&w, g_mime_message_get_mime_part(msg), 0);
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
		web_message_free(out);
	return rv;
}
