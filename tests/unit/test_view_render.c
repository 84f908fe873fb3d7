/* test_view_render.c - what the recipient's view makes of a message body:
 * format=flowed text reflowed (RFC 3676), and the HTML part sanitised with its
 * cid: images inlined as data: URLs of raster types only. */
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "view_render.h"

static const struct {
	const char *label, *in;
	bool delsp;
	const char *want;
} flowed_cases[] = {
	{ "fixed lines stay", "one\r\ntwo\r\n", false, "one\ntwo\n" },
	{ "soft break joined", "This is a \r\nflowed para.\r\nNext.\r\n", false,
	  "This is a flowed para.\nNext.\n" },
	{ "LF line ends", "a \nb\n", false, "a b\n" },
	{ "DelSp=yes deletes the space", "Lang \r\nwort\r\n", true, "Langwort\n" },
	{ "DelSp=no keeps it", "Lang \r\nwort\r\n", false, "Lang wort\n" },
	{ "space-stuffing removed", " From here\r\n >not a quote\r\n", false, "From here\n>not a quote\n" },
	{ "quoted paragraph", ">> deep \r\n>> quote\r\n> shallow\r\n", false, ">> deep quote\n> shallow\n" },
	{ "quote depth change is a hard break", "> soft \r\n>> other depth\r\n", false,
	  "> soft \n>> other depth\n" },
	{ "quote then unquoted", "> soft \r\nplain\r\n", false, "> soft \nplain\n" },
	{ "signature separator is not flowed", "Bye \r\n-- \r\nAlice\r\n", false, "Bye \n-- \nAlice\n" },
	{ "signature separator after a fixed line", "Bye\r\n-- \r\nAlice\r\n", false, "Bye\n-- \nAlice\n" },
	{ "empty lines are paragraph breaks", "a \r\nb\r\n\r\nc\r\n", false, "a b\n\nc\n" },
	{ "no final line end", "a \r\nb", false, "a b" },
	{ "soft last line", "a \r\n", false, "a \n" },
	{ "empty", "", false, "" },
	{ "stuffed quote marker", "> > not depth 2\r\n", false, "> > not depth 2\n" },
	{ "several soft lines", "one \r\ntwo \r\nthree \r\nfour\r\n", true, "onetwothreefour\n" },
};

static void
test_flowed(void)
{
	size_t i;

	for (i = 0; i < G_N_ELEMENTS(flowed_cases); i++) {
		char *got;

		g_test_message("case %s", flowed_cases[i].label);
		got = sp_view_flowed(flowed_cases[i].in, flowed_cases[i].delsp);
		if (strcmp(got, flowed_cases[i].want) != 0)
			g_error("case %s:\n got: [%s]\nwant: [%s]", flowed_cases[i].label, got,
			        flowed_cases[i].want);
		free(got);
	}
}

/* A flowed text part in a message is reflowed; a non-flowed one is not. */
static void
test_flowed_message(void)
{
	static const char flowed[] =
		"From: a@example.org\r\nSubject: f\r\nMIME-Version: 1.0\r\n"
		"Content-Type: text/plain; charset=utf-8; format=Flowed; DelSp=Yes\r\n\r\n"
		"Gr\xc3\xbc\xc3\x9f\x65 aus \r\nK\xc3\xb6ln, lie \r\nbe Gr\xc3\xbc\xc3\x9f\x65.\r\n";
	static const char fixed[] =
		"From: a@example.org\r\nSubject: f\r\nMIME-Version: 1.0\r\n"
		"Content-Type: text/plain; charset=utf-8\r\n\r\nkeep \r\nthese\r\n";
	struct sp_view m;
	char err[256];

	g_assert_cmpint(sp_view_render(flowed, sizeof flowed - 1, &m, err, sizeof err), ==, 0);
	g_assert_cmpstr(m.text, ==, "Gr\xc3\xbc\xc3\x9f\x65 ausK\xc3\xb6ln, liebe Gr\xc3\xbc\xc3\x9f\x65.\n");
	sp_view_free(&m);
	g_assert_cmpint(sp_view_render(fixed, sizeof fixed - 1, &m, err, sizeof err), ==, 0);
	g_assert_nonnull(strstr(m.text, "keep \r\nthese"));    /* as sent: not flowed */
	sp_view_free(&m);
}

/* 1x1 PNG, and the same bytes declared as a GIF (the magic decides). */
#define PNG_B64 "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="

static const char related[] =
	"From: a@example.org\r\nSubject: r\r\nMIME-Version: 1.0\r\n"
	"Content-Type: multipart/related; boundary=\"rel\"\r\n\r\n"
	"--rel\r\n"
	"Content-Type: text/html; charset=utf-8\r\n\r\n"
	"<p>logo <img src=\"cid:logo@example.org\" alt=\"logo\">"
	"<img src=\"cid:%6Cogo2@example.org\" alt=\"escaped\">"
	"<img src=\"cid:svg@example.org\" alt=\"svg\">"
	"<img src=\"cid:fake@example.org\" alt=\"fake\">"
	"<img src=\"cid:missing@example.org\" alt=\"missing\">"
	"<img src=\"http://tracker.example/p.gif\" alt=\"remote\">"
	"<a href=\"https://example.org/\">site</a></p>\r\n"
	"--rel\r\n"
	"Content-Type: image/png\r\nContent-ID: <logo@example.org>\r\n"
	"Content-Transfer-Encoding: base64\r\n\r\n" PNG_B64 "\r\n"
	"--rel\r\n"
	"Content-Type: image/gif\r\nContent-ID: <logo2@example.org>\r\n"
	"Content-Transfer-Encoding: base64\r\n\r\n" PNG_B64 "\r\n"
	"--rel\r\n"
	"Content-Type: image/svg+xml\r\nContent-ID: <svg@example.org>\r\n\r\n"
	"<svg xmlns=\"http://www.w3.org/2000/svg\"><image href=\"http://tracker.example/s\"/></svg>\r\n"
	"--rel\r\n"
	"Content-Type: image/png\r\nContent-ID: <fake@example.org>\r\n\r\n"
	"<html>not a png</html>\r\n"
	"--rel--\r\n";

static void
test_cid_images(void)
{
	struct sp_view m;
	char err[256];

	g_assert_cmpint(sp_view_render(related, sizeof related - 1, &m, err, sizeof err), ==, 0);
	g_assert_nonnull(m.html);
	g_assert_cmpstr(m.html, ==,
		"<p>logo <img src=\"data:image/png;base64," PNG_B64 "\" alt=\"logo\">"
		"<img src=\"data:image/png;base64," PNG_B64 "\" alt=\"escaped\">"
		"<img alt=\"svg\"><img alt=\"fake\"><img alt=\"missing\"><img alt=\"remote\">"
		"<a href=\"https://example.org/\" target=\"_blank\" rel=\"noopener noreferrer\">site</a></p>");
	/* The images are still attachments. */
	g_assert_cmpuint(m.n_att, ==, 4);
	sp_view_free(&m);
}

/* An image with a Content-ID outside any multipart/related is not inlined. */
static void
test_cid_outside_related(void)
{
	static const char mixed[] =
		"From: a@example.org\r\nSubject: r\r\nMIME-Version: 1.0\r\n"
		"Content-Type: multipart/mixed; boundary=\"mix\"\r\n\r\n"
		"--mix\r\nContent-Type: text/html\r\n\r\n<img src=\"cid:logo@example.org\">\r\n"
		"--mix\r\nContent-Type: image/png\r\nContent-ID: <logo@example.org>\r\n"
		"Content-Transfer-Encoding: base64\r\n\r\n" PNG_B64 "\r\n--mix--\r\n";
	struct sp_view m;
	char err[256];

	g_assert_cmpint(sp_view_render(mixed, sizeof mixed - 1, &m, err, sizeof err), ==, 0);
	g_assert_cmpstr(m.html, ==, "<img>");
	sp_view_free(&m);
}

/* HTML over the sanitiser's input limit: not shown at all, and said so. */
static void
test_html_refused(void)
{
	GString *s = g_string_new("From: a@example.org\r\nSubject: big\r\nMIME-Version: 1.0\r\n"
	                          "Content-Type: text/html\r\n\r\n");
	struct sp_view m;
	char err[256];

	while (s->len < 9u * 1024 * 1024)
		g_string_append(s, "<p>xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx</p>\r\n");
	g_assert_cmpint(sp_view_render(s->str, s->len, &m, err, sizeof err), ==, 0);
	g_assert_null(m.html);
	g_assert_true(m.html_refused);
	sp_view_free(&m);
	g_string_free(s, TRUE);
}

/* Subjects and names in several encoded-words (GMime 3.2.13 stops at the
 * first base64 word's padding, jstedfast/gmime#133: view_render.c keeps the
 * words apart), and what must not change. */
static const struct {
	const char *label, *subject, *want;
} words_cases[] = {
	{ "padded base64 pair", "=?utf-8?b?YSA=?= =?utf-8?b?Yg==?=", "a b" },
	{ "folded, three words", "=?utf-8?b?R3LDvMOfZSA=?=\r\n =?utf-8?b?5pel5pys6Kqe?= =?utf-8?b?IOKckw==?=",
	  "Gr\xc3\xbc\xc3\x9f\x65 \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xe2\x9c\x93" },
	{ "unpadded base64 pair", "=?utf-8?b?YWJj?= =?utf-8?b?ZGVm?=", "abcdef" },
	{ "Q-words", "=?utf-8?q?a_?= =?utf-8?q?b?=", "a b" },
	{ "padded word then text", "=?utf-8?b?YSA=?= and text", "a  and text" }, /* RFC 2047 keeps that space */
	{ "plain text", "Hello world", "Hello world" },
	{ "plain text that looks like the end of a word", "x=?= =?y", "x=?= =?y" },
};

static void
test_encoded_words(void)
{
	struct sp_view m;
	char err[256], *msg;
	size_t i;

	for (i = 0; i < G_N_ELEMENTS(words_cases); i++) {
		msg = g_strdup_printf("From: =?utf-8?b?SsO8cmdlbiA=?=\r\n =?utf-8?b?TcO8bGxlcg==?= <j@example.org>\r\n"
		                      "Subject: %s\r\n\r\nbody\r\n", words_cases[i].subject);
		g_assert_cmpint(sp_view_render(msg, strlen(msg), &m, err, sizeof err), ==, 0);
		if (g_strcmp0(m.subject, words_cases[i].want) != 0)
			g_error("%s: [%s], want [%s]", words_cases[i].label, m.subject, words_cases[i].want);
		g_assert_cmpstr(m.from, ==, "J\xc3\xbcrgen M\xc3\xbcller <j@example.org>");
		sp_view_free(&m);
		g_free(msg);
	}
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/view_render/flowed", test_flowed);
	g_test_add_func("/view_render/flowed_message", test_flowed_message);
	g_test_add_func("/view_render/cid_images", test_cid_images);
	g_test_add_func("/view_render/cid_outside_related", test_cid_outside_related);
	g_test_add_func("/view_render/html_refused", test_html_refused);
	g_test_add_func("/view_render/encoded_words", test_encoded_words);
	return g_test_run();
}
