/* test_view_doc.c - the view document (crypto/view_doc.h): real messages
 * rendered and written, read back field by field; the round trip; and the
 * reader's refusals of truncated, oversized and garbled documents. */
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "view_doc.h"

/* 1x1 PNG. */
#define PNG_B64 "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="

/* Render msg, write its document, read it back. */
static void
render_write_read(const char *msg, struct sp_buf *doc, struct sp_view *back)
{
	struct sp_view v;
	char err[SP_ERRLEN];

	g_assert_cmpint(sp_view_render(msg, strlen(msg), &v, err, sizeof err), ==, 0);
	sp_buf_init(doc, sp_view_doc_max_size(strlen(msg)));
	if (sp_view_doc_write(&v, doc, err, sizeof err) < 0)
		g_error("write: %s", err);
	sp_view_free(&v);
	g_assert_cmpmem(doc->data, 8, "SPVIEWD1", 8);
	if (sp_view_doc_read(doc->data, doc->len, 0, back, err, sizeof err) < 0)
		g_error("read: %s", err);
}

/* The JSON header of a document, as a string (for checks on the bytes). */
static char *
header_of(const struct sp_buf *doc)
{
	const unsigned char *d = (const unsigned char *)doc->data;
	size_t hlen = (size_t)d[8] << 24 | (size_t)d[9] << 16 | (size_t)d[10] << 8 | d[11];

	g_assert_cmpuint(SP_VIEW_DOC_PREFIX + hlen, <=, doc->len);
	return g_strndup(doc->data + SP_VIEW_DOC_PREFIX, hlen);
}

static void
test_text_headers(void)
{
	static const char msg[] =
		"From: =?UTF-8?Q?J=C3=BCrgen_M=C3=BCller?= <juergen@example.org>\r\n"
		"To: Bob <bob@example.net>, carol@example.net\r\n"
		"Cc: dave@example.com\r\n"
		"Date: Tue, 1 Dec 2026 09:30:00 +0100\r\n"
		"Subject: =?UTF-8?B?R3LDvMOfZSDDvGJlciDigqw=?= and more\r\n"
		"Message-ID: <abc.123@example.org>\r\n"
		"MIME-Version: 1.0\r\n"
		"Content-Type: text/plain; charset=iso-8859-1\r\n"
		"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
		"Gr=FC=DFe, \"quoted\" \\ back=01slash\r\nline two\r\n";
	struct sp_buf doc;
	struct sp_view v;
	char *h;

	render_write_read(msg, &doc, &v);
	g_assert_cmpstr(v.from, ==, "J\xc3\xbcrgen M\xc3\xbcller <juergen@example.org>");
	g_assert_cmpstr(v.to, ==, "Bob <bob@example.net>, carol@example.net");
	g_assert_cmpstr(v.cc, ==, "dave@example.com");
	g_assert_cmpstr(v.date, ==, "Tue, 1 Dec 2026 09:30 +0100");
	g_assert_cmpstr(v.subject, ==, "Gr\xc3\xbc\xc3\x9f\x65 \xc3\xbc\x62\x65r \xe2\x82\xac and more");
	g_assert_cmpstr(v.message_id, ==, "abc.123@example.org");
	/* Charset converted, QP undone, a control character and JSON's special
	 * characters carried exactly. */
	g_assert_cmpstr(v.text, ==, "Gr\xc3\xbc\xc3\x9f\x65, \"quoted\" \\ back\x01slash\r\nline two\r\n");
	g_assert_null(v.html);
	g_assert_false(v.html_refused);
	g_assert_cmpuint(v.n_att, ==, 0);
	g_assert_false(v.truncated);
	g_assert_null(v.sender_key);
	/* The bytes: the documented members, absent ones null, nothing after. */
	h = header_of(&doc);
	g_assert_cmpuint(SP_VIEW_DOC_PREFIX + strlen(h), ==, doc.len);
	g_assert_true(g_str_has_prefix(h, "{\"v\":1,\"from\":"));
	g_assert_nonnull(strstr(h, "\"html\":null"));
	g_assert_nonnull(strstr(h, "\"attachments\":[]"));
	g_assert_nonnull(strstr(h, "\"truncated\":false,\"sender_key\":null}"));
	g_assert_nonnull(strstr(h, "back\\u0001slash"));
	g_free(h);
	sp_view_free(&v);
	sp_buf_wipe(&doc);
}

static void
test_flowed(void)
{
	static const char msg[] =
		"From: a@example.org\r\nSubject: f\r\nMIME-Version: 1.0\r\n"
		"Content-Type: text/plain; charset=utf-8; format=flowed\r\n\r\n"
		"This is one \r\nparagraph.\r\n> quoted \r\n> too\r\n";
	struct sp_buf doc;
	struct sp_view v;

	render_write_read(msg, &doc, &v);
	g_assert_cmpstr(v.text, ==, "This is one paragraph.\n> quoted too\n");
	g_assert_null(v.to);
	g_assert_null(v.date);
	g_assert_null(v.message_id);
	sp_view_free(&v);
	sp_buf_wipe(&doc);
}

/* Text and HTML alternatives with a cid: image, then two attachments (one of
 * them binary with NUL bytes), and a forwarded message. */
static const char mixed[] =
	"From: a@example.org\r\nTo: b@example.net\r\nSubject: report\r\nMIME-Version: 1.0\r\n"
	"Content-Type: multipart/mixed; boundary=\"mix\"\r\n\r\n"
	"--mix\r\n"
	"Content-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n"
	"--alt\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nplain version\r\n"
	"--alt\r\nContent-Type: multipart/related; boundary=\"rel\"\r\n\r\n"
	"--rel\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
	"<p>Logo: <img src=\"cid:logo@example.org\" alt=\"logo\"></p>\r\n"
	"--rel\r\nContent-Type: image/png\r\nContent-ID: <logo@example.org>\r\n"
	"Content-Transfer-Encoding: base64\r\n\r\n" PNG_B64 "\r\n"
	"--rel--\r\n"
	"--alt--\r\n"
	"--mix\r\nContent-Type: application/octet-stream\r\n"
	"Content-Disposition: attachment; filename=\"data.bin\"\r\n"
	"Content-Transfer-Encoding: base64\r\n\r\nAAECAwD/\r\n"
	"--mix\r\nContent-Type: text/plain; charset=utf-8\r\n"
	"Content-Disposition: attachment; filename*=UTF-8''R%C3%A9sum%C3%A9.txt\r\n\r\n"
	"second text\r\n"
	"--mix\r\nContent-Type: message/rfc822\r\n\r\n"
	"From: x@example.org\r\nSubject: inner\r\n\r\ninner body\r\n"
	"--mix--\r\n";

static void
test_html_attachments(void)
{
	static const unsigned char bin[] = { 0, 1, 2, 3, 0, 0xff };
	unsigned char *png;
	size_t pnglen, total = 0, i;
	char *h;
	struct sp_buf doc;
	struct sp_view v;

	render_write_read(mixed, &doc, &v);
	g_assert_cmpstr(v.text, ==, "plain version"); /* the CRLF before a boundary is the boundary's */
	g_assert_cmpstr(v.html, ==, "<p>Logo: <img src=\"data:image/png;base64," PNG_B64 "\" alt=\"logo\"></p>");
	g_assert_cmpuint(v.n_att, ==, 4);
	png = g_base64_decode(PNG_B64, &pnglen);
	g_assert_cmpstr(v.att[0].content_type, ==, "image/png");
	g_assert_cmpmem(v.att[0].data, v.att[0].len, png, pnglen);
	g_assert_cmpstr(v.att[1].filename, ==, "data.bin");
	g_assert_cmpstr(v.att[1].content_type, ==, "application/octet-stream");
	g_assert_cmpmem(v.att[1].data, v.att[1].len, bin, sizeof bin);
	g_assert_cmpstr(v.att[2].filename, ==, "R\xc3\xa9sum\xc3\xa9.txt");
	g_assert_cmpmem(v.att[2].data, v.att[2].len, "second text", 11);
	g_assert_cmpstr(v.att[3].content_type, ==, "message/rfc822");
	g_assert_true(g_str_has_suffix(v.att[3].filename, ".eml"));
	g_assert_nonnull(g_strstr_len((char *)v.att[3].data, (gssize)v.att[3].len, "inner body"));
	/* The bytes after the header are the attachments, concatenated in order. */
	for (i = 0; i < v.n_att; i++)
		total += v.att[i].len;
	h = header_of(&doc);
	g_assert_cmpuint(doc.len, ==, SP_VIEW_DOC_PREFIX + strlen(h) + total);
	g_free(h);
	g_assert_cmpmem(doc.data + doc.len - total, pnglen, png, pnglen);
	g_free(png);
	sp_view_free(&v);
	sp_buf_wipe(&doc);
}

/* Hostile HTML: what reaches the document is the sanitiser's output only. */
static void
test_hostile_html(void)
{
	static const char msg[] =
		"From: a@example.org\r\nSubject: hi\r\nMIME-Version: 1.0\r\n"
		"Content-Type: text/html; charset=utf-8\r\n\r\n"
		"<html><head><script>alert(1)</script><style>p{background:url(http://t.example/)}</style>"
		"<meta http-equiv=refresh content=\"0;url=http://evil.example/\"></head><body>"
		"<p onclick=\"steal()\" style=\"color:red\">Hello</p>"
		"<img src=\"http://tracker.example/p.gif\" onerror=\"x()\" alt=\"t\">"
		"<a href=\"javascript:alert(1)\">bad</a><a href=\" https://ok.example/\">ok</a>"
		"<iframe src=\"http://evil.example/\"></iframe><form action=\"http://evil.example/\">"
		"<input name=p></form><svg><script>x()</script></svg>"
		"<p>\"quotes\" &amp; \\backslash\\ </script> \xe2\x80\xa8 end</p></body></html>\r\n";
	struct sp_buf doc;
	struct sp_view v, direct;
	char err[SP_ERRLEN];

	render_write_read(msg, &doc, &v);
	g_assert_nonnull(v.html);
	g_assert_null(strstr(v.html, "script"));
	g_assert_null(strstr(v.html, "onclick"));
	g_assert_null(strstr(v.html, "onerror"));
	g_assert_null(strstr(v.html, "style"));
	g_assert_null(strstr(v.html, "javascript"));
	g_assert_null(strstr(v.html, "tracker"));
	g_assert_null(strstr(v.html, "evil"));
	g_assert_null(strstr(v.html, "<iframe"));
	g_assert_null(strstr(v.html, "<form"));
	g_assert_nonnull(strstr(v.html, "<p>Hello</p>"));
	g_assert_nonnull(strstr(v.html, "&quot;quotes&quot; &amp; \\backslash\\ "));
	g_assert_nonnull(strstr(v.html, "<a href=\"https://ok.example/\" target=\"_blank\""));
	g_assert_null(v.text);
	/* Exactly what the renderer made, through JSON and back. */
	g_assert_cmpint(sp_view_render(msg, strlen(msg), &direct, err, sizeof err), ==, 0);
	g_assert_cmpstr(v.html, ==, direct.html);
	sp_view_free(&direct);
	sp_view_free(&v);
	sp_buf_wipe(&doc);
}

/* Read back and written again: the same bytes; a sender key rides along. */
static void
test_round_trip(void)
{
	static const char key[] = "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmDMEZ...\n=abcd\n"
	                          "-----END PGP PUBLIC KEY BLOCK-----\n";
	struct sp_buf doc, again, keyed;
	struct sp_view v, v2;
	char err[SP_ERRLEN];

	render_write_read(mixed, &doc, &v);
	sp_buf_init(&again, 0);
	g_assert_cmpint(sp_view_doc_write(&v, &again, err, sizeof err), ==, 0);
	g_assert_cmpmem(again.data, again.len, doc.data, doc.len);

	v.sender_key = sp_xstrdup(key);
	sp_buf_init(&keyed, 0);
	g_assert_cmpint(sp_view_doc_write(&v, &keyed, err, sizeof err), ==, 0);
	g_assert_cmpint(sp_view_doc_read(keyed.data, keyed.len, keyed.len, &v2, err, sizeof err), ==, 0);
	g_assert_cmpstr(v2.sender_key, ==, key);
	g_assert_cmpstr(v2.html, ==, v.html);
	g_assert_cmpuint(v2.n_att, ==, v.n_att);
	g_assert_cmpmem(v2.att[3].data, v2.att[3].len, v.att[3].data, v.att[3].len);
	/* A bound one byte short is refused. */
	sp_view_free(&v2);
	g_assert_cmpint(sp_view_doc_read(keyed.data, keyed.len, keyed.len - 1, &v2, err, sizeof err), ==, -1);
	g_assert_null(v2.subject);
	sp_view_free(&v);
	sp_buf_wipe(&doc);
	sp_buf_wipe(&again);
	sp_buf_wipe(&keyed);
}

/* What the writer refuses, leaving the buffer as it found it. */
static void
test_write_refused(void)
{
	struct sp_view v;
	struct sp_buf out;
	char err[SP_ERRLEN];
	size_t i, need;

	g_assert_cmpint(sp_view_render(mixed, strlen(mixed), &v, err, sizeof err), ==, 0);

	/* The buffer's limit bounds the whole document, to the byte (here it
	 * is reached in the last attachment's bytes). */
	sp_buf_init(&out, 0);
	g_assert_cmpint(sp_view_doc_write(&v, &out, err, sizeof err), ==, 0);
	need = out.len;
	sp_buf_wipe(&out);
	sp_buf_init(&out, 4 + need - 1);
	sp_buf_puts(&out, "keep");
	g_assert_cmpint(sp_view_doc_write(&v, &out, err, sizeof err), ==, -1);
	g_assert_nonnull(strstr(err, "limit"));
	g_assert_cmpmem(out.data, out.len, "keep", 4);
	out.limit++;
	g_assert_cmpint(sp_view_doc_write(&v, &out, err, sizeof err), ==, 0);
	g_assert_cmpuint(out.len, ==, 4 + need);
	sp_buf_wipe(&out);

	/* A string that is not UTF-8. */
	sp_buf_init(&out, 0);
	v.subject[0] = (char)0xff;
	g_assert_cmpint(sp_view_doc_write(&v, &out, err, sizeof err), ==, -1);
	g_assert_nonnull(strstr(err, "\"subject\" is not UTF-8"));
	g_assert_cmpuint(out.len, ==, 0);
	v.subject[0] = 'r';

	/* An attachment without a name. */
	v.att[1].filename[0] = '\0';
	g_assert_cmpint(sp_view_doc_write(&v, &out, err, sizeof err), ==, -1);
	v.att[1].filename[0] = 'd';
	sp_view_free(&v);

	/* More attachments than a document lists. */
	memset(&v, 0, sizeof v);
	v.n_att = SP_VIEW_DOC_MAX_ATTACHMENTS + 1;
	v.att = sp_xcalloc(v.n_att, sizeof *v.att);
	for (i = 0; i < v.n_att; i++) {
		v.att[i].filename = sp_xasprintf("f%zu", i);
		v.att[i].content_type = sp_xstrdup("text/plain");
	}
	g_assert_cmpint(sp_view_doc_write(&v, &out, err, sizeof err), ==, -1);
	g_assert_nonnull(strstr(err, "attachments"));
	v.n_att--;
	g_assert_cmpint(sp_view_doc_write(&v, &out, err, sizeof err), ==, 0);
	v.n_att++;
	sp_view_free(&v);
	sp_buf_wipe(&out);
}

/* A document from a header and body given here. */
static GByteArray *
mkdoc(const char *json, const char *body)
{
	GByteArray *d = g_byte_array_new();
	size_t n = strlen(json);
	guint8 be[4] = { (guint8)(n >> 24), (guint8)(n >> 16), (guint8)(n >> 8), (guint8)n };

	g_byte_array_append(d, (const guint8 *)"SPVIEWD1", 8);
	g_byte_array_append(d, be, 4);
	g_byte_array_append(d, (const guint8 *)json, (guint)n);
	g_byte_array_append(d, (const guint8 *)body, (guint)strlen(body));
	return d;
}

#define HDR_ADDR "\"from\":\"a@example.org\",\"to\":null,\"cc\":null,\"date\":null,"
#define HDR_HEAD "{\"v\":1," HDR_ADDR
#define HDR_MID "\"subject\":\"s\",\"message_id\":null,\"text\":\"t\",\"html\":null,\"html_refused\":false,"
#define HDR_ATT "\"attachments\":[{\"name\":\"a.bin\",\"type\":\"application/octet-stream\",\"size\":3}],"
#define HDR_TAIL "\"truncated\":false,\"sender_key\":null}"
#define HDR_OK HDR_HEAD HDR_MID HDR_ATT HDR_TAIL
#define HDR_NO_V "{" HDR_ADDR HDR_MID HDR_ATT HDR_TAIL

static const struct {
	const char *label, *json, *body;
} garbled[] = {
	{ "version 2", "{\"v\":2," HDR_ADDR HDR_MID HDR_ATT HDR_TAIL, "abc" },
	{ "version as a string", "{\"v\":\"1\"," HDR_ADDR HDR_MID HDR_ATT HDR_TAIL, "abc" },
	{ "no version", HDR_NO_V, "abc" },
	{ "unknown member", HDR_HEAD "\"bcc\":null," HDR_MID HDR_ATT HDR_TAIL, "abc" },
	{ "member twice", HDR_HEAD "\"subject\":\"other\"," HDR_MID HDR_ATT HDR_TAIL, "abc" },
	{ "missing member", HDR_HEAD "\"subject\":\"s\",\"text\":\"t\",\"html\":null,\"html_refused\":false,"
	  HDR_ATT HDR_TAIL, "abc" },
	{ "number for a string", HDR_HEAD "\"subject\":5,\"message_id\":null,\"text\":\"t\",\"html\":null,"
	  "\"html_refused\":false," HDR_ATT HDR_TAIL, "abc" },
	{ "string for a flag", HDR_HEAD HDR_MID HDR_ATT "\"truncated\":\"no\",\"sender_key\":null}", "abc" },
	{ "NUL escaped in a string", HDR_HEAD "\"subject\":\"s\\u0000hidden\",\"message_id\":null,\"text\":\"t\","
	  "\"html\":null,\"html_refused\":false," HDR_ATT HDR_TAIL, "abc" },
	{ "attachments not a list", HDR_HEAD HDR_MID "\"attachments\":{}," HDR_TAIL, "abc" },
	{ "attachment without a name", HDR_HEAD HDR_MID
	  "\"attachments\":[{\"type\":\"application/octet-stream\",\"size\":3}]," HDR_TAIL, "abc" },
	{ "attachment with an empty name", HDR_HEAD HDR_MID
	  "\"attachments\":[{\"name\":\"\",\"type\":\"application/octet-stream\",\"size\":3}]," HDR_TAIL, "abc" },
	{ "attachment with an extra member", HDR_HEAD HDR_MID
	  "\"attachments\":[{\"name\":\"a\",\"type\":\"t\",\"size\":3,\"path\":\"/etc\"}]," HDR_TAIL, "abc" },
	{ "negative size", HDR_HEAD HDR_MID
	  "\"attachments\":[{\"name\":\"a\",\"type\":\"t\",\"size\":-1},{\"name\":\"b\",\"type\":\"t\",\"size\":4}],"
	  HDR_TAIL, "abc" },
	{ "size as a float", HDR_HEAD HDR_MID
	  "\"attachments\":[{\"name\":\"a\",\"type\":\"t\",\"size\":3.0}]," HDR_TAIL, "abc" },
	{ "size past the end", HDR_OK, "ab" },
	{ "bytes after the attachments", HDR_OK, "abcd" },
	{ "not JSON", HDR_HEAD HDR_MID HDR_ATT "\"truncated\":false,\"sender_key\":null", "abc" },
	{ "JSON then junk", HDR_OK " x", "abc" },
	{ "a list, not an object", "[1]", "" },
	{ "empty header", "", "" },
	{ "header not UTF-8", HDR_HEAD "\"subject\":\"\xc3\x28\",\"message_id\":null,\"text\":\"t\","
	  "\"html\":null,\"html_refused\":false," HDR_ATT HDR_TAIL, "abc" },
};

static void
test_read_refused(void)
{
	GByteArray *ok = mkdoc(HDR_OK, "abc"), *d;
	struct sp_view v;
	char err[SP_ERRLEN];
	size_t i, n;
	GString *many;

	/* The base case is accepted: every refusal below is about its one change. */
	g_assert_cmpint(sp_view_doc_read(ok->data, ok->len, 0, &v, err, sizeof err), ==, 0);
	g_assert_cmpstr(v.subject, ==, "s");
	g_assert_cmpmem(v.att[0].data, v.att[0].len, "abc", 3);
	sp_view_free(&v);

	for (i = 0; i < G_N_ELEMENTS(garbled); i++) {
		d = mkdoc(garbled[i].json, garbled[i].body);
		err[0] = '\0';
		if (sp_view_doc_read(d->data, d->len, 0, &v, err, sizeof err) != -1)
			g_error("%s: accepted", garbled[i].label);
		g_assert_cmpstr(err, !=, "");
		g_test_message("%s: %s", garbled[i].label, err);
		g_assert_null(v.subject);
		g_assert_null(v.att);
		g_byte_array_unref(d);
	}

	/* Every truncation of a good document. */
	for (n = 0; n < ok->len; n++)
		g_assert_cmpint(sp_view_doc_read(ok->data, n, 0, &v, err, sizeof err), ==, -1);

	/* Wrong magic; a header length over the cap or past the end. */
	d = g_byte_array_new();
	g_byte_array_append(d, ok->data, ok->len);
	d->data[7] = '2';
	g_assert_cmpint(sp_view_doc_read(d->data, d->len, 0, &v, err, sizeof err), ==, -1);
	g_assert_nonnull(strstr(err, "magic"));
	d->data[7] = '1';
	d->data[8] = 0xff;
	g_assert_cmpint(sp_view_doc_read(d->data, d->len, 0, &v, err, sizeof err), ==, -1);
	d->data[8] = 0;
	d->data[11]++;
	g_assert_cmpint(sp_view_doc_read(d->data, d->len, 0, &v, err, sizeof err), ==, -1);
	g_byte_array_unref(d);

	/* More attachments than a document lists. */
	many = g_string_new(HDR_HEAD HDR_MID "\"attachments\":[");
	for (i = 0; i <= SP_VIEW_DOC_MAX_ATTACHMENTS; i++)
		g_string_append_printf(many, "%s{\"name\":\"a\",\"type\":\"t\",\"size\":0}", i ? "," : "");
	g_string_append(many, "]," HDR_TAIL);
	d = mkdoc(many->str, "");
	g_assert_cmpint(sp_view_doc_read(d->data, d->len, 0, &v, err, sizeof err), ==, -1);
	g_assert_nonnull(strstr(err, "attachments"));
	g_byte_array_unref(d);
	g_string_free(many, TRUE);

	/* The reader never quotes the document in its error. */
	d = mkdoc(HDR_HEAD "\"subject\":\"SECRETWORD\" SECRETWORD" HDR_MID, "");
	g_assert_cmpint(sp_view_doc_read(d->data, d->len, 0, &v, err, sizeof err), ==, -1);
	g_assert_null(strstr(err, "SECRETWORD"));
	g_byte_array_unref(d);
	g_byte_array_unref(ok);
}

static void
test_max_size(void)
{
	g_assert_cmpuint(sp_view_doc_max_size(64 * 1024), ==,
	                 64 * 1024 + 1024 + SP_VIEW_DOC_PREFIX + SP_VIEW_DOC_MAX_HEADER);
	g_assert_cmpuint(sp_view_doc_max_size(UINT64_MAX), ==, SIZE_MAX);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/view_doc/text_headers", test_text_headers);
	g_test_add_func("/view_doc/flowed", test_flowed);
	g_test_add_func("/view_doc/html_attachments", test_html_attachments);
	g_test_add_func("/view_doc/hostile_html", test_hostile_html);
	g_test_add_func("/view_doc/round_trip", test_round_trip);
	g_test_add_func("/view_doc/write_refused", test_write_refused);
	g_test_add_func("/view_doc/read_refused", test_read_refused);
	g_test_add_func("/view_doc/max_size", test_max_size);
	return g_test_run();
}
