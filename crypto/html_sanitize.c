/* html_sanitize.c - libxml2 HTML tree -> allow-listed fragment (see html_sanitize.h). */
#include "html_sanitize.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>
#include <libxml/HTMLparser.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <sodium.h>

#include "util.h"
#include "html.h"

/* What happens to an element (and its content). */
enum el_action {
	EL_UNWRAP = 0, /* not on the list: tags dropped, content kept */
	EL_KEEP,       /* start tag, content, end tag */
	EL_VOID,       /* start tag only (br, hr, img, col, wbr) */
	EL_DROP,       /* gone with all its content */
};

struct el_rule {
	const char *name;
	enum el_action act;
};

static const struct el_rule elements[] = {
	/* text-level formatting */
	{ "a", EL_KEEP }, { "abbr", EL_KEEP }, { "acronym", EL_KEEP }, { "b", EL_KEEP },
	{ "bdi", EL_KEEP }, { "bdo", EL_KEEP }, { "big", EL_KEEP }, { "cite", EL_KEEP },
	{ "code", EL_KEEP }, { "del", EL_KEEP }, { "dfn", EL_KEEP }, { "em", EL_KEEP },
	{ "font", EL_KEEP }, { "i", EL_KEEP }, { "ins", EL_KEEP }, { "kbd", EL_KEEP },
	{ "mark", EL_KEEP }, { "q", EL_KEEP }, { "s", EL_KEEP }, { "samp", EL_KEEP },
	{ "small", EL_KEEP }, { "span", EL_KEEP }, { "strike", EL_KEEP }, { "strong", EL_KEEP },
	{ "sub", EL_KEEP }, { "sup", EL_KEEP }, { "time", EL_KEEP }, { "tt", EL_KEEP },
	{ "u", EL_KEEP }, { "var", EL_KEEP }, { "ruby", EL_KEEP }, { "rt", EL_KEEP },
	{ "rp", EL_KEEP },
	/* structure */
	{ "address", EL_KEEP }, { "article", EL_KEEP }, { "aside", EL_KEEP },
	{ "blockquote", EL_KEEP }, { "center", EL_KEEP }, { "dd", EL_KEEP }, { "details", EL_KEEP },
	{ "div", EL_KEEP }, { "dl", EL_KEEP }, { "dt", EL_KEEP }, { "figcaption", EL_KEEP },
	{ "figure", EL_KEEP }, { "footer", EL_KEEP }, { "h1", EL_KEEP }, { "h2", EL_KEEP },
	{ "h3", EL_KEEP }, { "h4", EL_KEEP }, { "h5", EL_KEEP }, { "h6", EL_KEEP },
	{ "header", EL_KEEP }, { "hgroup", EL_KEEP }, { "li", EL_KEEP }, { "main", EL_KEEP },
	{ "nav", EL_KEEP }, { "ol", EL_KEEP }, { "p", EL_KEEP }, { "pre", EL_KEEP },
	{ "section", EL_KEEP }, { "summary", EL_KEEP }, { "ul", EL_KEEP },
	/* tables */
	{ "caption", EL_KEEP }, { "colgroup", EL_KEEP }, { "table", EL_KEEP }, { "tbody", EL_KEEP },
	{ "td", EL_KEEP }, { "tfoot", EL_KEEP }, { "th", EL_KEEP }, { "thead", EL_KEEP },
	{ "tr", EL_KEEP },
	/* void */
	{ "br", EL_VOID }, { "col", EL_VOID }, { "hr", EL_VOID }, { "img", EL_VOID },
	{ "wbr", EL_VOID },
	/* gone with their content: they load, run, submit, or hold no visible text */
	{ "applet", EL_DROP }, { "area", EL_DROP }, { "audio", EL_DROP }, { "base", EL_DROP },
	{ "basefont", EL_DROP }, { "bgsound", EL_DROP }, { "button", EL_DROP },
	{ "canvas", EL_DROP }, { "datalist", EL_DROP }, { "dialog", EL_DROP },
	{ "embed", EL_DROP }, { "form", EL_DROP }, { "frame", EL_DROP }, { "frameset", EL_DROP },
	{ "head", EL_DROP }, { "iframe", EL_DROP }, { "input", EL_DROP }, { "keygen", EL_DROP },
	{ "link", EL_DROP }, { "map", EL_DROP }, { "math", EL_DROP }, { "meta", EL_DROP },
	{ "noembed", EL_DROP }, { "noframes", EL_DROP }, { "noscript", EL_DROP },
	{ "object", EL_DROP }, { "optgroup", EL_DROP }, { "option", EL_DROP },
	{ "output", EL_DROP }, { "param", EL_DROP }, { "portal", EL_DROP }, { "script", EL_DROP },
	{ "select", EL_DROP }, { "source", EL_DROP }, { "style", EL_DROP }, { "svg", EL_DROP },
	{ "template", EL_DROP }, { "textarea", EL_DROP }, { "title", EL_DROP },
	{ "track", EL_DROP }, { "video", EL_DROP }, { "xml", EL_DROP },
};

enum attr_kind {
	ATTR_TEXT, /* any value, escaped */
	ATTR_HREF, /* a URL checked by sp_html_href_ok() */
	ATTR_SRC,  /* an image: data:image/(png|gif|jpeg|webp);base64 or cid: */
};

struct attr_rule {
	const char *element; /* "*": every kept element */
	const char *name;
	enum attr_kind kind;
};

/* Nothing here loads anything, runs anything or carries CSS: no style, no on*,
 * no srcset, background, poster, ping, formaction, usemap, cite URLs... */
static const struct attr_rule attributes[] = {
	{ "*", "title", ATTR_TEXT }, { "*", "dir", ATTR_TEXT }, { "*", "lang", ATTR_TEXT },
	{ "*", "id", ATTR_TEXT }, { "*", "class", ATTR_TEXT }, { "*", "align", ATTR_TEXT },
	{ "a", "href", ATTR_HREF }, { "a", "name", ATTR_TEXT },
	{ "img", "src", ATTR_SRC }, { "img", "alt", ATTR_TEXT }, { "img", "width", ATTR_TEXT },
	{ "img", "height", ATTR_TEXT }, { "img", "border", ATTR_TEXT },
	{ "img", "hspace", ATTR_TEXT }, { "img", "vspace", ATTR_TEXT },
	{ "font", "color", ATTR_TEXT }, { "font", "face", ATTR_TEXT }, { "font", "size", ATTR_TEXT },
	{ "table", "width", ATTR_TEXT }, { "table", "height", ATTR_TEXT },
	{ "table", "border", ATTR_TEXT }, { "table", "cellpadding", ATTR_TEXT },
	{ "table", "cellspacing", ATTR_TEXT }, { "table", "bgcolor", ATTR_TEXT },
	{ "table", "summary", ATTR_TEXT },
	{ "td", "width", ATTR_TEXT }, { "td", "height", ATTR_TEXT }, { "td", "valign", ATTR_TEXT },
	{ "td", "colspan", ATTR_TEXT }, { "td", "rowspan", ATTR_TEXT }, { "td", "bgcolor", ATTR_TEXT },
	{ "td", "nowrap", ATTR_TEXT },
	{ "th", "width", ATTR_TEXT }, { "th", "height", ATTR_TEXT }, { "th", "valign", ATTR_TEXT },
	{ "th", "colspan", ATTR_TEXT }, { "th", "rowspan", ATTR_TEXT }, { "th", "bgcolor", ATTR_TEXT },
	{ "th", "nowrap", ATTR_TEXT }, { "th", "scope", ATTR_TEXT },
	{ "tr", "valign", ATTR_TEXT }, { "tr", "bgcolor", ATTR_TEXT }, { "tr", "height", ATTR_TEXT },
	{ "tbody", "valign", ATTR_TEXT }, { "thead", "valign", ATTR_TEXT },
	{ "tfoot", "valign", ATTR_TEXT },
	{ "col", "span", ATTR_TEXT }, { "col", "width", ATTR_TEXT }, { "col", "valign", ATTR_TEXT },
	{ "colgroup", "span", ATTR_TEXT }, { "colgroup", "width", ATTR_TEXT },
	{ "colgroup", "valign", ATTR_TEXT },
	{ "hr", "width", ATTR_TEXT }, { "hr", "size", ATTR_TEXT }, { "hr", "noshade", ATTR_TEXT },
	{ "hr", "color", ATTR_TEXT },
	{ "ol", "start", ATTR_TEXT }, { "ol", "type", ATTR_TEXT }, { "ol", "reversed", ATTR_TEXT },
	{ "ul", "type", ATTR_TEXT }, { "li", "value", ATTR_TEXT }, { "li", "type", ATTR_TEXT },
	{ "time", "datetime", ATTR_TEXT }, { "details", "open", ATTR_TEXT },
};

/* The image types a data: URL may carry.  Never image/svg+xml: SVG is a
 * document that can load things and carry script. */
static const char *const image_prefixes[] = {
	"data:image/png;base64,", "data:image/gif;base64,", "data:image/jpeg;base64,",
	"data:image/webp;base64,",
};

struct ctx {
	struct sp_buf out;
	sp_html_cid_fn cid;
	void *cid_arg;
	size_t nodes;
	int rv;
};

static pthread_once_t xml_once = PTHREAD_ONCE_INIT;

static void
xml_init(void)
{
	xmlInitParser();
}

static const struct el_rule *
element_rule(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof elements / sizeof elements[0]; i++)
		if (g_ascii_strcasecmp(elements[i].name, name) == 0)
			return &elements[i];
	return NULL;
}

static const struct attr_rule *
attr_rule(const char *element, const char *name)
{
	size_t i;

	for (i = 0; i < sizeof attributes / sizeof attributes[0]; i++) {
		const struct attr_rule *r = &attributes[i];
		if ((strcmp(r->element, "*") == 0 || strcmp(r->element, element) == 0) &&
		    g_ascii_strcasecmp(r->name, name) == 0)
			return r;
	}
	return NULL;
}

/* The action for element n at tree depth `depth`: a pure function of both, so
 * the walk can ask again when it leaves the element. */
static enum el_action
element_action(xmlNodePtr n, int depth, const struct el_rule **rule)
{
	const struct el_rule *r = n->name ? element_rule((const char *)n->name) : NULL;

	*rule = r;
	if (r == NULL)
		return EL_UNWRAP;
	if (r->act == EL_DROP)
		return EL_DROP;
	if (depth > SP_HTML_MAX_DEPTH)
		return EL_UNWRAP;
	return r->act;
}

/* Append s escaped for element content and quoted attribute values: & < > " '
 * as references, control characters other than TAB/LF/CR and invalid UTF-8 as
 * U+FFFD. */
static void
put_escaped(struct ctx *c, const char *s)
{
	c->rv |= sp_html_puts(&c->out, s);
}

/* A URL as the browser will read it: leading and trailing C0 controls and
 * spaces stripped, every TAB, LF and CR removed (the URL standard's own
 * clean-up, which is what makes "jav&#x09;ascript:" work).  Malloc'd. */
static char *
clean_url(const char *url)
{
	size_t len = strlen(url), i, j = 0;
	char *r;

	while (len > 0 && (unsigned char)url[len - 1] <= 0x20)
		len--;
	while (len > 0 && (unsigned char)*url <= 0x20) {
		url++;
		len--;
	}
	r = sp_xmalloc(len + 1);
	for (i = 0; i < len; i++)
		if (url[i] != '\t' && url[i] != '\n' && url[i] != '\r')
			r[j++] = url[i];
	r[j] = '\0';
	return r;
}

/* The scheme of a cleaned URL, lower-cased into buf, or "" for a relative one. */
static const char *
url_scheme(const char *url, char *buf, size_t bufsz)
{
	size_t i;

	buf[0] = '\0';
	if (!g_ascii_isalpha(url[0]))
		return buf;
	for (i = 0; url[i] && url[i] != ':'; i++) {
		/* Not a scheme character, or too long for one we allow: relative (the
		 * letters copied so far must not count as a scheme). */
		if ((!g_ascii_isalnum(url[i]) && url[i] != '+' && url[i] != '-' && url[i] != '.') ||
		    i + 1 >= bufsz) {
			buf[0] = '\0';
			return buf;
		}
		buf[i] = g_ascii_tolower(url[i]);
	}
	if (url[i] != ':')
		buf[0] = '\0';
	else
		buf[i] = '\0';
	return buf;
}

int
sp_html_href_ok(const char *url)
{
	char *u = clean_url(url), scheme[16];
	int ok;

	url_scheme(u, scheme, sizeof scheme);
	ok = strcmp(scheme, "http") == 0 || strcmp(scheme, "https") == 0 ||
	     strcmp(scheme, "mailto") == 0;
	free(u);
	return ok;
}

/* A data: URL of an allowed image type with nothing but base64 after the comma. */
static bool
image_data_url_ok(const char *u)
{
	size_t i, n;
	const char *p;

	for (i = 0; i < sizeof image_prefixes / sizeof image_prefixes[0]; i++) {
		n = strlen(image_prefixes[i]);
		if (g_ascii_strncasecmp(u, image_prefixes[i], n) != 0)
			continue;
		for (p = u + n; *p; p++)
			if (!g_ascii_isalnum(*p) && *p != '+' && *p != '/' && *p != '=')
				return false;
		return p > u + n;
	}
	return false;
}

/* The src to emit for an <img>, malloc'd, or NULL to emit none. */
static char *
image_src(struct ctx *c, const char *value)
{
	char *u = clean_url(value), *r = NULL;

	if (g_ascii_strncasecmp(u, "cid:", 4) == 0) {
		if (c->cid != NULL && u[4] != '\0')
			r = c->cid(u + 4, c->cid_arg);
		if (r != NULL && !image_data_url_ok(r)) {
			sp_free_secret(r);
			r = NULL;
		}
	} else if (image_data_url_ok(u)) {
		r = u;
		u = NULL;
	}
	free(u);
	return r;
}

static void
put_attr(struct ctx *c, const char *name, const char *value)
{
	c->rv |= sp_buf_printf(&c->out, " %s=\"", name);
	put_escaped(c, value);
	c->rv |= sp_buf_puts(&c->out, "\"");
}

static void
start_tag(struct ctx *c, xmlNodePtr n, const char *name)
{
	bool href = false;
	xmlAttrPtr a;

	c->rv |= sp_buf_printf(&c->out, "<%s", name);
	for (a = n->properties; a != NULL; a = a->next) {
		const struct attr_rule *r;
		xmlChar *v;
		char *u;

		c->nodes++;
		if (a->name == NULL || a->ns != NULL ||
		    (r = attr_rule(name, (const char *)a->name)) == NULL)
			continue;
		v = xmlNodeGetContent((xmlNodePtr)a);
		if (v == NULL)
			continue;
		switch (r->kind) {
		case ATTR_TEXT:
			put_attr(c, r->name, (const char *)v);
			break;
		case ATTR_HREF:
			if (!href && sp_html_href_ok((const char *)v)) {
				u = clean_url((const char *)v);
				put_attr(c, "href", u);
				free(u);
				href = true;
			}
			break;
		case ATTR_SRC:
			if ((u = image_src(c, (const char *)v)) != NULL) {
				put_attr(c, "src", u);
				sp_free_secret(u);
			}
			break;
		}
		xmlFree(v);
	}
	/* Links open outside the sandboxed frame, in a new browsing context that
	 * learns nothing about this page. */
	if (href)
		c->rv |= sp_buf_puts(&c->out, " target=\"_blank\" rel=\"noopener noreferrer\"");
	c->rv |= sp_buf_puts(&c->out, ">");
}

/* Entering node n: write what it starts with; true when the walk should go
 * into its children. */
static bool
enter(struct ctx *c, xmlNodePtr n, int depth)
{
	const struct el_rule *r;

	switch (n->type) {
	case XML_ELEMENT_NODE:
		switch (element_action(n, depth, &r)) {
		case EL_DROP:
			return false;
		case EL_UNWRAP:
			return true;
		case EL_KEEP:
			start_tag(c, n, r->name);
			return true;
		case EL_VOID:
			start_tag(c, n, r->name);
			return false;
		}
		return false;
	case XML_TEXT_NODE:
		if (n->content != NULL)
			put_escaped(c, (const char *)n->content);
		return false;
	default:
		/* comments, CDATA, processing instructions, DTDs, entity nodes */
		return false;
	}
}

static void
leave(struct ctx *c, xmlNodePtr n, int depth)
{
	const struct el_rule *r;

	if (n->type == XML_ELEMENT_NODE && element_action(n, depth, &r) == EL_KEEP)
		c->rv |= sp_buf_printf(&c->out, "</%s>", r->name);
}

/* Depth-first over the whole tree without recursion (a hostile document may be
 * nested as deep as libxml2 lets it): down through children, across through
 * next, up through parent. */
static int
walk(struct ctx *c, xmlDocPtr doc)
{
	xmlNodePtr cur = doc->children;
	int depth = 0;

	while (cur != NULL) {
		if (++c->nodes > SP_HTML_MAX_NODES || c->rv != 0)
			return -1;
		if (enter(c, cur, depth)) {
			if (cur->children != NULL) {
				cur = cur->children;
				depth++;
				continue;
			}
			leave(c, cur, depth);
		}
		while (cur->next == NULL) {
			if (depth == 0)
				return c->rv ? -1 : 0;
			cur = cur->parent;
			depth--;
			leave(c, cur, depth);
		}
		cur = cur->next;
	}
	return c->rv ? -1 : 0;
}

/* The input as valid UTF-8 without NUL bytes (libxml2 reads C strings). */
static char *
clean_input(const char *html, size_t len)
{
	struct sp_buf b;
	char *valid;
	size_t i, run = 0;

	sp_buf_init(&b, 0);
	for (i = 0; i < len; i++) {
		if (html[i] != '\0')
			continue;
		sp_buf_append(&b, html + run, i - run);
		sp_buf_puts(&b, "\xef\xbf\xbd");
		run = i + 1;
	}
	sp_buf_append(&b, html + run, len - run);
	valid = g_utf8_make_valid(b.data ? b.data : "", (gssize)b.len);
	sp_buf_wipe(&b);
	return valid;
}

int
sp_html_sanitize(const char *html, size_t len, sp_html_cid_fn cid, void *cid_arg,
                 char **out, size_t *outlen, char *err, size_t errsz)
{
	struct ctx c = { .cid = cid, .cid_arg = cid_arg };
	xmlDocPtr doc = NULL;
	char *in = NULL;
	size_t inlen;
	int rv = -1;

	*out = NULL;
	*outlen = 0;
	sp_buf_init(&c.out, SP_HTML_MAX_OUTPUT);
	if (len > SP_HTML_MAX_INPUT) {
		sp_seterr(err, errsz, "the HTML part is larger than %u bytes", SP_HTML_MAX_INPUT);
		goto out;
	}
	pthread_once(&xml_once, xml_init);
	in = clean_input(html, len);
	inlen = strlen(in);
	/* Replacing invalid bytes can triple the size: the limit holds after it too. */
	if (inlen > SP_HTML_MAX_INPUT) {
		sp_seterr(err, errsz, "the HTML part is larger than %u bytes", SP_HTML_MAX_INPUT);
		goto out;
	}
	/* The encoding is given: the input is UTF-8 already (GMime converted it),
	 * whatever a <meta charset> inside says. */
	doc = htmlReadMemory(in, (int)inlen, NULL, "UTF-8",
	                     HTML_PARSE_NONET | HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING |
	                         HTML_PARSE_RECOVER | HTML_PARSE_COMPACT);
	if (doc == NULL) {
		if (inlen == 0) {
			*out = sp_xstrdup("");
			rv = 0;
		} else {
			sp_seterr(err, errsz, "the HTML part could not be parsed");
		}
		goto out;
	}
	if (walk(&c, doc) < 0) {
		if (c.nodes > SP_HTML_MAX_NODES)
			sp_seterr(err, errsz, "the HTML part has more than %d nodes", SP_HTML_MAX_NODES);
		else
			sp_seterr(err, errsz, "the HTML part is larger than %u bytes once made safe",
			          SP_HTML_MAX_OUTPUT);
		goto out;
	}
	if (c.out.data == NULL)
		*out = sp_xstrdup("");
	else
		*out = sp_buf_steal(&c.out, outlen);
	rv = 0;
out:
	if (doc != NULL)
		xmlFreeDoc(doc);
	if (in != NULL) {
		sodium_memzero(in, strlen(in));
		g_free(in);
	}
	sp_buf_wipe(&c.out);
	return rv;
}
