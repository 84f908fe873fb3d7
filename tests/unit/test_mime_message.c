/* test_mime_message.c - what leaves in clear: "already encrypted?" at the MIME
 * level (with real gpg messages from tests/vectors/pgp), the outer header
 * allow-list, and the RFC 9788 legacy display element. */
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "mime_message.h"

static char *
vector(const char *name)
{
	const char *env = g_getenv("SEALPOST_VECTORS_DIR");
	char *srcdir = g_path_get_dirname(__FILE__), *path, *data = NULL;
	GError *error = NULL;

	path = env ? g_build_filename(env, "pgp", name, NULL) : g_build_filename(srcdir, "..", "vectors", "pgp", name, NULL);
	if (!g_file_get_contents(path, &data, NULL, &error))
		g_error("cannot load %s: %s (set SEALPOST_VECTORS_DIR)", path, error->message);
	g_free(path);
	g_free(srcdir);
	return data;
}

/* LF -> CRLF, as the message arrives after DATA. */
static char *
crlf(const char *s)
{
	GString *g = g_string_new(NULL);

	for (; *s; s++) {
		if (*s == '\n' && (g->len == 0 || g->str[g->len - 1] != '\r'))
			g_string_append_c(g, '\r');
		g_string_append_c(g, *s);
	}
	return g_string_free(g, FALSE);
}

/* Parse a message (malloc'd copy, as sp_mime_parse wants). */
static void
parse(const char *text, struct sp_mime *m)
{
	char err[SP_ERRLEN], *c = crlf(text), *buf = malloc(strlen(c) + 1);

	strcpy(buf, c);
	g_free(c);
	if (sp_mime_parse(buf, strlen(buf), m, err, sizeof err) < 0)
		g_error("parse: %s", err);
}

static void
done(struct sp_mime *m)
{
	char *data = (char *)m->data;

	sp_mime_free(m);
	free(data);
}

#define HEAD "From: a@example.org\nTo: b@example.net\nSubject: s\nMIME-Version: 1.0\n"

static char *
pgp_mime(const char *version, const char *payload_type, const char *payload, const char *pre,
         const char *extra_part)
{
	return g_strdup_printf(HEAD "Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\";"
	                       " boundary=\"b\"\n\n%s\n--b\nContent-Type: application/pgp-encrypted\n\n%s\n"
	                       "--b\nContent-Type: %s\n\n%s\n%s--b--\n",
	                       pre, version, payload_type, payload, extra_part);
}

static void
test_is_encrypted(void)
{
	char *real = vector("pkesk-seipd.asc"), *literal = vector("literal.asc"), *sed = vector("sed.asc");
	char *long_pre = g_strnfill(300, 'x');
	struct {
		const char *label;
		char *text;
		bool want;
		const char *why;   /* part of the reason when it only looks encrypted */
	} cases[] = {
		{ "inline, real", g_strdup_printf(HEAD "Content-Type: text/plain\n\n%s", real), true, NULL },
		{ "inline, whitespace around", g_strdup_printf(HEAD "\n\n  \n%s\n\n", real), true, NULL },
		{ "inline, text before", g_strdup_printf(HEAD "\nhello\n%s", real), false, "BEGIN" },
		{ "inline, text after", g_strdup_printf(HEAD "\n%s\n-- \nAlice\n", real), false, "after" },
		{ "inline, a literal packet", g_strdup_printf(HEAD "\n%s", literal), false, "tag 11" },
		{ "inline, SED", g_strdup_printf(HEAD "\n%s", sed), false, "SED" },
		{ "inline in text/html", g_strdup_printf(HEAD "Content-Type: text/html\n\n%s", real), false, "text/plain" },
		{ "inline, base64 body", g_strdup_printf(HEAD "Content-Transfer-Encoding: base64\n\n%s", real), true, NULL },
		{ "PGP/MIME, real", pgp_mime("Version: 1", "application/octet-stream", real, "", ""), true, NULL },
		{ "PGP/MIME, one-line preamble", pgp_mime("Version: 1", "application/octet-stream", real,
		                                          "This is an OpenPGP/MIME encrypted message", ""), true, NULL },
		{ "PGP/MIME, long preamble", pgp_mime("Version: 1", "application/octet-stream", real, long_pre, ""),
		  false, "before or after" },
		{ "PGP/MIME, Version: 2", pgp_mime("Version: 2", "application/octet-stream", real, "", ""), false,
		  "Version: 1" },
		{ "PGP/MIME, empty version part", pgp_mime("", "application/octet-stream", real, "", ""), false,
		  "Version: 1" },
		{ "PGP/MIME, text/plain payload", pgp_mime("Version: 1", "text/plain", real, "", ""), false, "parts" },
		{ "PGP/MIME, literal payload", pgp_mime("Version: 1", "application/octet-stream", literal, "", ""),
		  false, "tag 11" },
		{ "PGP/MIME, three parts", pgp_mime("Version: 1", "application/octet-stream", real, "",
		                                    "--b\nContent-Type: text/plain\n\nthe secret in clear\n"),
		  false, "3 parts" },
		{ "PGP/MIME, a free-text field on a part",
		  pgp_mime("Version: 1", "application/octet-stream\nX-Note: the secret", real, "", ""), false, "X-Note" },
		{ "plain text", g_strdup(HEAD "\nhello\n"), false, "" },
	};
	char why[SP_ERRLEN];
	size_t i;

	for (i = 0; i < G_N_ELEMENTS(cases); i++) {
		struct sp_mime m;
		bool got;
		parse(cases[i].text, &m);
		got = sp_mime_is_encrypted(&m, why, sizeof why);
		if (got != cases[i].want || (cases[i].why && strstr(why, cases[i].why) == NULL) ||
		    (cases[i].why && cases[i].why[0] == '\0' && why[0] != '\0'))
			g_error("%s: got %d (%s), want %d (%s)", cases[i].label, got, why, cases[i].want,
			        cases[i].why ? cases[i].why : "-");
		done(&m);
		g_free(cases[i].text);
	}
	g_free(long_pre);
	g_free(real);
	g_free(literal);
	g_free(sed);
}

static bool
has_line(const char *block, const char *prefix)
{
	const char *p = block;

	for (; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (g_ascii_strncasecmp(p, prefix, strlen(prefix)) == 0)
			return true;
	return false;
}

static const char marked[] =
	"From: Alice <a@example.org>\n"
	"To: b@example.net\n"
	"Cc: c@example.net\n"
	"Bcc: d@example.net\n"
	"Subject: the Jones contract\n"
	"Date: Mon, 03 Jun 2024 10:00:00 +0000\n"
	"Message-ID: <1@example.org>\n"
	"In-Reply-To: <0@example.org>\n"
	"References: <0@example.org>\n"
	"Reply-To: a2@example.org\n"
	"Sender: s@example.org\n"
	"Thread-Topic: the Jones contract\n"
	"Comments: topic-comment\n"
	"Keywords: topic-keyword\n"
	"Resent-From: r@example.org\n"
	"X-Unknown-Foo: unknown-value\n"
	"User-Agent: agent-value\n"
	"X-Sealpost-Hint: hint-value\n"
	"MIME-Version: 1.0\n"
	"Content-Type: text/plain; charset=utf-8\n"
	"Content-Transfer-Encoding: 8bit\n"
	"\n"
	"body text\n";

static void
test_outer_allow_list(void)
{
	static const char *const outside[] = { "From:", "To:", "Cc:", "Date:", "Message-ID:", "In-Reply-To:",
		                                "References:", "Reply-To:", "Sender:", "Subject: ...\r\n" };
	static const char *const never[] = { "the Jones contract", "topic-comment", "topic-keyword", "r@example.org",
		                             "unknown-value", "agent-value", "hint-value", "d@example.net",
		                             "Content-", "MIME-Version" };
	static const char *const inside[] = { "Thread-Topic: the Jones contract", "Comments: topic-comment",
		                              "Keywords: topic-keyword", "Resent-From: r@example.org",
		                              "X-Unknown-Foo: unknown-value", "User-Agent: agent-value",
		                              "Subject: the Jones contract", "From: Alice", "HP-Outer: Subject: ...",
		                              "hp=\"cipher\"", "protected-headers=\"v1\"" };
	struct sp_mime m;
	struct sp_buf out, ent;
	char err[SP_ERRLEN];
	size_t i;

	parse(marked, &m);
	sp_buf_init(&out, 0);
	g_assert_cmpint(sp_mime_write_outer_headers(&m, "...", &out), ==, 0);
	for (i = 0; i < G_N_ELEMENTS(outside); i++)
		if (!has_line(out.data, outside[i]))
			g_error("%s not outside:\n%s", outside[i], out.data);
	for (i = 0; i < G_N_ELEMENTS(never); i++)
		if (strstr(out.data, never[i]))
			g_error("%s outside:\n%s", never[i], out.data);
	sp_buf_init(&ent, 0);
	g_assert_cmpint(sp_mime_write_protected_entity(&m, "...", &ent, err, sizeof err), ==, 0);
	for (i = 0; i < G_N_ELEMENTS(inside); i++)
		if (!strstr(ent.data, inside[i]))
			g_error("%s not inside:\n%s", inside[i], ent.data);
	g_assert_null(strstr(ent.data, "hint-value"));
	g_assert_null(strstr(ent.data, "d@example.net"));
	g_assert_null(strstr(ent.data, "HP-Outer: Thread-Topic"));
	sp_buf_free(&out);
	sp_buf_free(&ent);
	done(&m);

	/* A line GMime does not take as a field stays inside with the field
	 * before it, never outside. */
	parse("From: a@example.org\nTo: b@example.net\nno colon on this line\nSubject: x\n\nbody\n", &m);
	sp_buf_init(&out, 0);
	g_assert_cmpint(sp_mime_write_outer_headers(&m, "...", &out), ==, 0);
	g_assert_null(strstr(out.data, "no colon"));
	g_assert_true(has_line(out.data, "To: b@example.net\r\n"));
	sp_buf_free(&out);
	done(&m);
}

static const struct {
	const char *label;
	const char *body;       /* after HEAD */
	const char *subject;    /* outer subject */
	const char *want;       /* in the entity, or NULL: no element */
} legacy_cases[] = {
	{ "text/plain", "Content-Type: text/plain; charset=us-ascii\n\nhello\n", "...", "Subject: s\r\n\r\nhello" },
	{ "not hidden", "Content-Type: text/plain\n\nhello\n", NULL, NULL },
	{ "base64 text", "Content-Type: text/plain\nContent-Transfer-Encoding: base64\n\naGVsbG8K\n", "...", NULL },
	{ "an attachment", "Content-Type: text/plain\nContent-Disposition: attachment\n\nhello\n", "...", NULL },
	{ "latin-1 text", "Content-Type: text/plain; charset=iso-8859-1\n\nhello\n", "...", NULL },
	{ "html after <body>", "Content-Type: text/html\n\n<html><body class=x><p>hi</p></body></html>\n", "...",
	  "<body class=x><div class=\"header-protection-legacy-display\"><pre>Subject: s</pre></div>\r\n<p>hi" },
	{ "alternative", "Content-Type: multipart/alternative; boundary=a\n\n--a\nContent-Type: text/plain\n\n"
	                 "plain\n--a\nContent-Type: text/html\n\n<p>html</p>\n--a--\n", "...",
	  "Content-Type: text/plain;\r\n hp-legacy-display=\"1\"\r\n\r\nSubject: s\r\n\r\nplain" },
	{ "signed", "Content-Type: multipart/signed; boundary=a; protocol=\"application/pgp-signature\"; micalg=pgp-sha256\n\n"
	            "--a\nContent-Type: text/plain\n\nsigned text\n"
	            "--a\nContent-Type: application/pgp-signature\n\nsig\n--a--\n",
	  "...", NULL },
};

static void
test_legacy_display(void)
{
	size_t i;

	for (i = 0; i < G_N_ELEMENTS(legacy_cases); i++) {
		struct sp_mime m;
		struct sp_buf ent;
		char err[SP_ERRLEN], *text = g_strdup_printf(HEAD "%s", legacy_cases[i].body);
		bool marked_ = false;

		parse(text, &m);
		sp_buf_init(&ent, 0);
		g_assert_cmpint(sp_mime_write_protected_entity(&m, legacy_cases[i].subject, &ent, err, sizeof err), ==, 0);
		marked_ = strstr(ent.data, "hp-legacy-display") != NULL;
		if (legacy_cases[i].want ? (!marked_ || strstr(ent.data, legacy_cases[i].want) == NULL) : marked_)
			g_error("%s:\n%s", legacy_cases[i].label, ent.data);
		sp_buf_free(&ent);
		done(&m);
		g_free(text);
	}
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	sp_mime_global_init();
	g_test_add_func("/mime_message/is_encrypted", test_is_encrypted);
	g_test_add_func("/mime_message/outer_allow_list", test_outer_allow_list);
	g_test_add_func("/mime_message/legacy_display", test_legacy_display);
	return g_test_run();
}
