/* fuzz_html_sanitize.c - the message-HTML sanitiser (crypto/html_sanitize.h).
 *
 * The input is a text/html body as a hostile sender writes it.  It goes through
 * sp_html_sanitize() with a cid: resolver (cid:a@b is a PNG, cid:s@b a
 * misbehaving resolver's SVG, anything else unknown), and the output must:
 *   - be valid UTF-8 without NUL or control characters other than TAB/LF/CR;
 *   - consist of text without '>' and tags we write: every '<' starts a tag
 *     of the allow-list (or its end tag), whose attributes are all ` name="v"`
 *     with an allowed name and a value without '"' '<' '>';
 *   - carry href only as http:, https: or mailto:, src only as
 *     data:image/(png|gif|jpeg|webp);base64, and every href with
 *     target="_blank" rel="noopener noreferrer";
 *   - hold the same properties when sanitised a second time.
 */
#include "fuzz_common.h"

#include <stdbool.h>

#include <glib.h>

#include "html_sanitize.h"

static const char *const tags[] = {
	"a", "abbr", "acronym", "b", "bdi", "bdo", "big", "cite", "code", "del", "dfn", "em",
	"font", "i", "ins", "kbd", "mark", "q", "s", "samp", "small", "span", "strike", "strong",
	"sub", "sup", "time", "tt", "u", "var", "ruby", "rt", "rp", "address", "article", "aside",
	"blockquote", "center", "dd", "details", "div", "dl", "dt", "figcaption", "figure",
	"footer", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hgroup", "li", "main", "nav", "ol",
	"p", "pre", "section", "summary", "ul", "caption", "colgroup", "table", "tbody", "td",
	"tfoot", "th", "thead", "tr", "br", "col", "hr", "img", "wbr",
};

static const char *const attrs[] = {
	"title", "dir", "lang", "id", "class", "align", "href", "name", "src", "alt", "width",
	"height", "border", "hspace", "vspace", "color", "face", "size", "cellpadding",
	"cellspacing", "bgcolor", "summary", "valign", "colspan", "rowspan", "nowrap", "scope",
	"span", "noshade", "start", "type", "reversed", "value", "datetime", "open", "target", "rel",
};

static bool
in_list(const char *const *list, size_t n, const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strlen(list[i]) == len && memcmp(list[i], s, len) == 0)
			return true;
	return false;
}

static bool
src_ok(const char *v, size_t len)
{
	static const char *const ok[] = { "data:image/png;base64,", "data:image/gif;base64,",
		                          "data:image/jpeg;base64,", "data:image/webp;base64," };
	size_t i;

	for (i = 0; i < 4; i++)
		if (len > strlen(ok[i]) && g_ascii_strncasecmp(v, ok[i], strlen(ok[i])) == 0)
			return true;
	return false;
}

static bool
href_ok(const char *v, size_t len)
{
	return (len >= 5 && g_ascii_strncasecmp(v, "http:", 5) == 0) ||
	       (len >= 6 && g_ascii_strncasecmp(v, "https:", 6) == 0) ||
	       (len >= 7 && g_ascii_strncasecmp(v, "mailto:", 7) == 0);
}

/* One tag starting at p (at '<'); returns the byte after its '>'. */
static const char *
check_tag(const char *p)
{
	const char *name, *q;
	bool end = false, has_href = false, has_target = false;

	p++;
	if (*p == '/') {
		end = true;
		p++;
	}
	name = p;
	while (g_ascii_isalnum(*p))
		p++;
	FUZZ_CHECK(in_list(tags, G_N_ELEMENTS(tags), name, (size_t)(p - name)), "tag <%.*s>",
	           (int)(p - name), name);
	if (end) {
		FUZZ_CHECK(*p == '>', "end tag with more than a name");
		return p + 1;
	}
	while (*p == ' ') {
		const char *an = ++p, *v;
		size_t alen, vlen;
		while (g_ascii_islower(*p))
			p++;
		alen = (size_t)(p - an);
		FUZZ_CHECK(in_list(attrs, G_N_ELEMENTS(attrs), an, alen), "attribute %.*s",
		           (int)alen, an);
		FUZZ_CHECK(p[0] == '=' && p[1] == '"', "attribute %.*s not quoted", (int)alen, an);
		v = p + 2;
		q = strchr(v, '"');
		FUZZ_CHECK(q != NULL, "attribute value not closed");
		vlen = (size_t)(q - v);
		FUZZ_CHECK(memchr(v, '<', vlen) == NULL && memchr(v, '>', vlen) == NULL,
		           "markup in an attribute value");
		if (alen == 4 && memcmp(an, "href", 4) == 0) {
			FUZZ_CHECK(href_ok(v, vlen), "href %.*s", (int)vlen, v);
			has_href = true;
		}
		if (alen == 3 && memcmp(an, "src", 3) == 0)
			FUZZ_CHECK(src_ok(v, vlen), "src %.*s", (int)vlen, v);
		if (alen == 6 && memcmp(an, "target", 6) == 0) {
			FUZZ_CHECK(vlen == 6 && memcmp(v, "_blank", 6) == 0, "target %.*s", (int)vlen, v);
			has_target = true;
		}
		if (alen == 3 && memcmp(an, "rel", 3) == 0)
			FUZZ_CHECK(vlen == 19 && memcmp(v, "noopener noreferrer", 19) == 0, "rel");
		p = q + 1;
	}
	FUZZ_CHECK(*p == '>', "junk in a tag: %.20s", p);
	FUZZ_CHECK(has_href == has_target, "href without target=_blank or the reverse");
	return p + 1;
}

static void
check_output(const char *out, size_t len)
{
	const char *p = out, *bad;

	FUZZ_CHECK(strlen(out) == len, "NUL in output");
	FUZZ_CHECK(g_utf8_validate(out, (gssize)len, &bad), "invalid UTF-8 at %zu",
	           (size_t)(bad - out));
	while (*p) {
		unsigned char c = (unsigned char)*p;
		FUZZ_CHECK(c >= 0x20 || c == '\t' || c == '\n' || c == '\r', "control 0x%02x", c);
		FUZZ_CHECK(c != '>', "'>' outside a tag");
		FUZZ_CHECK(c != '"', "'\"' in text");
		if (c == '<')
			p = check_tag(p);
		else
			p++;
	}
}

static char *
resolve(const char *cid, void *arg)
{
	(void)arg;
	if (strcmp(cid, "a@b") == 0)
		return strdup("data:image/png;base64,iVBORw0KGgo=");
	if (strcmp(cid, "s@b") == 0)
		return strdup("data:image/svg+xml;base64,PHN2Zy8+");
	return NULL;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256], *out = NULL, *again = NULL;
	size_t outlen = 0, againlen = 0;

	if (sp_html_sanitize((const char *)data, size, resolve, NULL, &out, &outlen, err,
	                     sizeof err) < 0) {
		FUZZ_CHECK(out == NULL && err[0] != '\0', "failure without a reason");
		return 0;
	}
	check_output(out, outlen);
	if (sp_html_sanitize(out, outlen, resolve, NULL, &again, &againlen, err, sizeof err) == 0) {
		check_output(again, againlen);
		free(again);
	}
	free(out);
	return 0;
}
