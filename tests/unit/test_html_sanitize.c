/* test_html_sanitize.c - the message-HTML sanitiser against hostile input.
 *
 * Every case gives the exact output: what is kept, what is unwrapped, what is
 * gone.  On top of that, no output may contain anything on the `forbidden`
 * list (a remote host, a script scheme, a loading element or attribute), and
 * sanitising the output again must give the same output (it is a fixed point:
 * what the browser parses is what was checked). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "html_sanitize.h"

#define PNG_1x1 "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="

/* The test resolver: "logo@x" is an image, anything else is unknown. */
static char *
resolve(const char *cid, void *arg)
{
	int *calls = arg;

	(*calls)++;
	if (strcmp(cid, "logo@x") == 0)
		return strdup("data:image/png;base64," PNG_1x1);
	if (strcmp(cid, "svg@x") == 0)      /* a resolver that misbehaves */
		return strdup("data:image/svg+xml;base64,PHN2Zy8+");
	return NULL;
}

static const struct {
	const char *label, *in, *want;
} cases[] = {
	/* what stays */
	{ "plain text", "hello", "<p>hello</p>" },
	{ "formatting", "<p>a <b>b</b> <i>i</i> <u>u</u> <em>e</em> <strong>s</strong></p>",
	  "<p>a <b>b</b> <i>i</i> <u>u</u> <em>e</em> <strong>s</strong></p>" },
	{ "entities re-escaped", "<p>&lt;b&gt; &amp; &quot; &#39; &eacute;</p>",
	  "<p>&lt;b&gt; &amp; &quot; &#39; \xc3\xa9</p>" },
	{ "utf-8", "<p>Gr\xc3\xbc\xc3\x9f\x65 \xe2\x82\xac</p>", "<p>Gr\xc3\xbc\xc3\x9f\x65 \xe2\x82\xac</p>" },
	{ "meta charset does not switch the encoding",
	  "<html><head><meta charset=\"iso-8859-1\"></head><body><p>\xc3\xbc</p></body></html>",
	  "<p>\xc3\xbc</p>" },
	{ "table", "<table border=1 cellpadding=\"2\" bgcolor=\"#fff\"><tr><td colspan=2 valign=top>x</td></tr></table>",
	  "<table border=\"1\" cellpadding=\"2\" bgcolor=\"#fff\"><tr><td colspan=\"2\" valign=\"top\">x</td></tr></table>" },
	{ "nested tables", "<table><tr><td><table><tr><td>in</td></tr></table></td></tr></table>",
	  "<table><tr><td><table><tr><td>in</td></tr></table></td></tr></table>" },
	{ "font", "<font color=red face=Arial size=2 style=\"x\">f</font>",
	  "<font color=\"red\" face=\"Arial\" size=\"2\">f</font>" },
	{ "lists and headings", "<h1>t</h1><ul><li>a</li></ul><ol start=3><li>b</li></ol><dl><dt>k</dt><dd>v</dd></dl>",
	  "<h1>t</h1><ul><li>a</li></ul><ol start=\"3\"><li>b</li></ol><dl><dt>k</dt><dd>v</dd></dl>" },
	{ "void elements", "<p>a<br>b<hr>c</p>", "<p>a<br>b</p><hr>c" },
	{ "http link", "<a href=\"https://example.org/x?a=1&amp;b=2\" title=t>go</a>",
	  "<a href=\"https://example.org/x?a=1&amp;b=2\" title=\"t\" target=\"_blank\" rel=\"noopener noreferrer\">go</a>" },
	{ "mailto link", "<a href=\"MAILTO:bob@example.net\">mail</a>",
	  "<a href=\"MAILTO:bob@example.net\" target=\"_blank\" rel=\"noopener noreferrer\">mail</a>" },
	{ "own target and rel replaced", "<a href=\"http://e.org/\" target=\"_top\" rel=\"opener\">x</a>",
	  "<a href=\"http://e.org/\" target=\"_blank\" rel=\"noopener noreferrer\">x</a>" },
	{ "data image kept", "<img src=\"data:image/png;base64," PNG_1x1 "\" alt=\"dot\" width=1>",
	  "<img src=\"data:image/png;base64," PNG_1x1 "\" alt=\"dot\" width=\"1\">" },
	{ "cid image resolved", "<img src=\"cid:logo@x\" alt=\"logo\">",
	  "<img src=\"data:image/png;base64," PNG_1x1 "\" alt=\"logo\">" },
	{ "unknown cid: no src", "<img src=\"cid:nope@x\" alt=\"gone\">", "<img alt=\"gone\">" },
	{ "resolver returning svg: no src", "<img src=\"cid:svg@x\">", "<img>" },
	{ "unknown element unwrapped", "<blink><marquee>moving</marquee></blink>", "moving" },
	{ "fieldset unwrapped, form gone", "<fieldset>kept<form><input value=x>gone</form></fieldset>",
	  "kept" },
	{ "unclosed tags", "<div><p>one<p>two<b>bold", "<div><p>one</p><p>two<b>bold</b></p></div>" },
	{ "stray end tags", "</div></p>text</b>", "<p>text</p>" },
	{ "empty", "", "" },

	/* item 5: what escaped the CSP */
	{ "link preconnect", "<link rel=preconnect href=\"http://evil.example/\"><p>x</p>", "<p>x</p>" },
	{ "link dns-prefetch in body", "<p>x<link rel=dns-prefetch href=\"//evil.example\"></p>", "<p>x</p>" },
	{ "link prefetch and preload",
	  "<body><link rel=prefetch href=\"http://evil.example/a\"><link rel=preload as=image href=\"http://evil.example/b\">y</body>",
	  "y" },
	{ "meta refresh", "<meta http-equiv=refresh content=\"0;url=http://evil.example/\"><p>x</p>", "<p>x</p>" },
	{ "base href", "<base href=\"http://evil.example/\"><a href=\"x\">rel</a>", "<a>rel</a>" },
	{ "remote img", "<img src=\"http://evil.example/t.gif\" width=1 height=1>", "<img width=\"1\" height=\"1\">" },
	{ "protocol-relative img", "<img src=\"//evil.example/t.gif\">", "<img>" },
	{ "srcset", "<img srcset=\"http://evil.example/a.png 1x\" src=\"data:image/gif;base64,R0lGODlhAQABAAAAACw=\">",
	  "<img src=\"data:image/gif;base64,R0lGODlhAQABAAAAACw=\">" },
	{ "svg data url", "<img src=\"data:image/svg+xml;base64,PHN2Zy8+\">", "<img>" },
	{ "data url with junk", "<img src=\"data:image/png;base64,AAAA&quot;onerror=x\">", "<img>" },
	{ "background attribute", "<table background=\"http://evil.example/bg\"><tr><td background=\"http://evil.example/td\">c</td></tr></table>",
	  "<table><tr><td>c</td></tr></table>" },
	{ "body background", "<body background=\"http://evil.example/b\" bgcolor=red>t</body>", "t" },
	{ "style url", "<div style=\"background:url(http://evil.example/x)\">s</div>", "<div>s</div>" },
	{ "style element and import",
	  "<style>@import url(http://evil.example/a.css); p{background:image-set(\"http://evil.example/y\" 1x)}</style><p>t</p>",
	  "<p>t</p>" },
	{ "script", "<script>fetch('http://evil.example/')</script><p>t</p>", "<p>t</p>" },
	{ "event handlers", "<p onclick=\"x()\" onmouseover=y>t</p><img src=x onerror=\"alert(1)\">",
	  "<p>t</p><img>" },
	{ "iframe object embed", "<iframe src=\"http://evil.example/\">f</iframe><object data=\"http://evil.example/o\">o</object><p>t</p><embed src=\"http://evil.example/e\">",
	  "<p>t</p>" },
	{ "audio video source", "<video poster=\"http://evil.example/p\"><source src=\"http://evil.example/v\">v</video><audio src=\"http://evil.example/a\"></audio>t",
	  "t" },
	{ "svg image", "<svg><image href=\"http://evil.example/s\"/><use xlink:href=\"http://evil.example/u\"/>text in svg</svg>ok",
	  "ok" },
	{ "svg style", "<svg><style>@import 'http://evil.example/c';</style></svg>ok", "ok" },
	{ "math", "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)></style></mglyph></table></mtext></math>ok",
	  "ok" },
	{ "template noscript", "<template><img src=\"http://evil.example/t\"></template><noscript><img src=\"http://evil.example/n\"></noscript>ok",
	  "ok" },
	{ "comments", "<p>a<!-- <img src=\"http://evil.example/c\"> -->b</p><!--[if mso]><img src=\"http://evil.example/m\"><![endif]-->",
	  "<p>ab</p>" },
	{ "cdata", "<p>a<![CDATA[<img src=http://evil.example/>]]>b</p>", "<p>a&lt;![CDATA[<img>]]&gt;b</p>" },
	{ "processing instruction", "<?xml-stylesheet href=\"http://evil.example/x\"?><p>t</p>", "<p>t</p>" },
	{ "form action", "<form action=\"http://evil.example/\"><button formaction=\"http://evil.example/b\">b</button></form>t",
	  "t" },
	{ "a ping", "<a href=\"https://e.org/\" ping=\"http://evil.example/p\">x</a>",
	  "<a href=\"https://e.org/\" target=\"_blank\" rel=\"noopener noreferrer\">x</a>" },

	/* item 5: script URLs with obfuscation */
	{ "javascript href", "<a href=\"javascript:alert(1)\">x</a>", "<a>x</a>" },
	{ "javascript tab entity", "<a href=\"jav&#x09;ascript:alert(1)\">x</a>", "<a>x</a>" },
	{ "javascript newline entity", "<a href=\"jav&#10;ascript:alert(1)\">x</a>", "<a>x</a>" },
	{ "javascript leading control", "<a href=\"&#1;&#32;javascript:alert(1)\">x</a>", "<a>x</a>" },
	{ "javascript named entity", "<a href=\"javascript&colon;alert(1)\">x</a>", "<a>x</a>" },
	{ "javascript upper case", "<a href=\"JaVaScRiPt:alert(1)\">x</a>", "<a>x</a>" },
	{ "vbscript", "<a href=\"vbscript:msgbox\">x</a>", "<a>x</a>" },
	{ "data href", "<a href=\"data:text/html,<script>alert(1)</script>\">x</a>", "<a>x</a>" },
	{ "relative href", "<a href=\"/local\">x</a><a href=\"#frag\">y</a>", "<a>x</a><a>y</a>" },
	{ "http with tab inside is cleaned", "<a href=\"ht&#x09;tps://e.org/\">x</a>",
	  "<a href=\"https://e.org/\" target=\"_blank\" rel=\"noopener noreferrer\">x</a>" },
	{ "attribute breakout", "<a title='\"><script>alert(1)</script>'>x</a>",
	  "<a title=\"&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;\">x</a>" },
	{ "namespaced attribute", "<a xlink:href=\"javascript:alert(1)\">x</a>", "<a>x</a>" },
	{ "upper-case tags", "<P><B>x</B></P><SCRIPT>y</SCRIPT>", "<p><b>x</b></p>" },
	{ "textarea rawtext", "<textarea></textarea><img src=x onerror=alert(1)></textarea>t",
	  "<img>t" },
	{ "xmp content parsed as markup", "<xmp><img src=\"http://evil.example/\"></xmp>",
	  "<img>" },
};

/* Never in any output: each is a way to load, run or restyle. */
static const char *const forbidden[] = {
	"evil.example", "javascript", "vbscript", "<link", "<meta", "<base", "<script", "<style",
	"<svg", "<math", "<iframe", "<object", "<embed", "<form", "<template", "<noscript",
	"style=", "onerror", "onclick", "srcset", "background", "url(", "@import", "<!--",
	"svg+xml", "ping=",
};

static void
check_safe(const char *label, const char *out)
{
	char *lower = g_ascii_strdown(out, -1);
	size_t i;

	for (i = 0; i < G_N_ELEMENTS(forbidden); i++)
		if (strstr(lower, forbidden[i]) != NULL)
			g_error("case %s: output has %s: %s", label, forbidden[i], out);
	g_free(lower);
}

static void
test_cases(void)
{
	size_t i;

	for (i = 0; i < G_N_ELEMENTS(cases); i++) {
		char err[256] = "", *out = NULL, *again = NULL;
		size_t outlen = 0, againlen = 0;
		int calls = 0;

		g_test_message("case %s", cases[i].label);
		g_assert_cmpint(sp_html_sanitize(cases[i].in, strlen(cases[i].in), resolve, &calls,
		                                 &out, &outlen, err, sizeof err), ==, 0);
		g_assert_cmpuint(outlen, ==, strlen(out));
		if (strcmp(out, cases[i].want) != 0)
			g_error("case %s:\n got: %s\nwant: %s", cases[i].label, out, cases[i].want);
		check_safe(cases[i].label, out);
		/* A fixed point: the tree libxml2 builds from the output is the one
		 * that was checked.  (Except that libxml2 wraps text at the very start
		 * of a document in an implied <p>: only for output starting with '<'.) */
		g_assert_cmpint(sp_html_sanitize(out, outlen, resolve, &calls, &again, &againlen, err,
		                                 sizeof err), ==, 0);
		if (out[0] == '<' && strcmp(again, out) != 0)
			g_error("case %s: not a fixed point:\n once: %s\ntwice: %s", cases[i].label, out,
			        again);
		check_safe(cases[i].label, again);
		free(out);
		free(again);
	}
}

static const struct {
	const char *in;
	int ok;
} hrefs[] = {
	{ "http://e.org/", 1 }, { "https://e.org/", 1 }, { "HTTPS://e.org/", 1 },
	{ "mailto:a@b", 1 }, { "  https://e.org/  ", 1 }, { "\x01https://e.org/", 1 },
	{ "ht\ttp://e.org/", 1 }, { "javascript:x", 0 }, { "java\tscript:x", 0 },
	{ "java\nscript:x", 0 }, { "\x01\x02javascript:x", 0 }, { " javascript:x", 0 },
	{ "data:text/html,x", 0 }, { "file:///etc/passwd", 0 }, { "ftp://e.org/", 0 },
	{ "/relative", 0 }, { "#frag", 0 }, { "", 0 }, { ":", 0 }, { "http", 0 },
	{ "1http://e.org", 0 }, { "x-http:y", 0 }, { "https\x00:", 0 },
	/* A scheme's letters followed by a character no scheme has: relative,
	 * whatever was copied so far (found by fuzz_html_sanitize). */
	{ "MAILTO&:x@y", 0 }, { "https&:x", 0 }, { "http_://e.org", 0 },
	{ "mailtoxxxxxxxxxxxxxxxxxxxxxx:x", 0 },
};

static void
test_href(void)
{
	size_t i;

	for (i = 0; i < G_N_ELEMENTS(hrefs); i++) {
		g_test_message("href %zu", i);
		g_assert_cmpint(sp_html_href_ok(hrefs[i].in), ==, hrefs[i].ok);
	}
}

/* Nesting beyond SP_HTML_MAX_DEPTH: the text is kept, and the output is
 * nested no deeper than the limit. */
static void
check_depth(size_t levels, bool text_kept)
{
	GString *s = g_string_new(NULL);
	char err[256], *out = NULL, *p;
	size_t outlen, i;
	int open = 0, max = 0;

	for (i = 0; i < levels; i++)
		g_string_append(s, "<div>");
	g_string_append(s, "deep text");
	g_assert_cmpint(sp_html_sanitize(s->str, s->len, NULL, NULL, &out, &outlen, err, sizeof err),
	                ==, 0);
	if (text_kept)
		g_assert_nonnull(strstr(out, "deep text"));
	for (p = out; (p = strchr(p, '<')) != NULL; p++) {
		open += p[1] == '/' ? -1 : 1;
		if (open > max)
			max = open;
	}
	g_assert_cmpint(open, ==, 0);
	g_assert_cmpint(max, <=, SP_HTML_MAX_DEPTH);
	free(out);
	g_string_free(s, TRUE);
}

static void
test_depth(void)
{
	check_depth(SP_HTML_MAX_DEPTH + 50, true);
	/* Far deeper: libxml2 stops building the tree at 256 levels (what comes
	 * after is lost, which for such a document is fine), and nothing crashes. */
	check_depth(100000, false);
}

static void
test_limits(void)
{
	char err[256] = "", *out = (char *)"x";
	size_t outlen = 1, n = SP_HTML_MAX_INPUT + 1, i;
	GString *s;
	char *big = g_malloc(n);

	memset(big, 'a', n);
	g_assert_cmpint(sp_html_sanitize(big, n, NULL, NULL, &out, &outlen, err, sizeof err), ==, -1);
	g_assert_null(out);
	g_assert_nonnull(strstr(err, "larger than"));
	g_free(big);

	/* Many small nodes in few bytes. */
	s = g_string_new(NULL);
	for (i = 0; i <= SP_HTML_MAX_NODES; i++)
		g_string_append(s, "<br>");
	g_assert_cmpuint(s->len, <=, SP_HTML_MAX_INPUT);
	g_assert_cmpint(sp_html_sanitize(s->str, s->len, NULL, NULL, &out, &outlen, err, sizeof err),
	                ==, -1);
	g_assert_nonnull(strstr(err, "nodes"));
	g_string_free(s, TRUE);
}

/* NUL bytes and invalid UTF-8 in the input: replaced, output valid UTF-8. */
static void
test_bytes(void)
{
	static const char in[] = "<p>a\0b\xff" "c\xc0\xaf</p>";
	char err[256], *out = NULL;
	size_t outlen;

	g_assert_cmpint(sp_html_sanitize(in, sizeof in - 1, NULL, NULL, &out, &outlen, err, sizeof err),
	                ==, 0);
	g_assert_true(g_utf8_validate(out, (gssize)outlen, NULL));
	g_assert_cmpstr(out, ==, "<p>a\xef\xbf\xbd" "b\xef\xbf\xbd" "c\xef\xbf\xbd\xef\xbf\xbd</p>");
	free(out);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/html_sanitize/cases", test_cases);
	g_test_add_func("/html_sanitize/href", test_href);
	g_test_add_func("/html_sanitize/depth", test_depth);
	g_test_add_func("/html_sanitize/limits", test_limits);
	g_test_add_func("/html_sanitize/bytes", test_bytes);
	return g_test_run();
}
