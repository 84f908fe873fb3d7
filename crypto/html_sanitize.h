/* html_sanitize.h - an HTML body made safe to show: an allow-list, not a filter.
 *
 * sp_html_sanitize() parses a message's text/html part with libxml2's HTML
 * parser (htmlReadMemory, no network, no error output) and writes a new HTML
 * fragment from the tree, with escaping done here:
 *
 *   - elements on the allow-list (formatting and structure: p, div, span, b,
 *     i, a, ul, table..., img, font...) are kept with only their allowed
 *     attributes;
 *   - elements that load, run, submit or hide things (script, style, head,
 *     title, iframe, object, embed, link, meta, base, form and its controls,
 *     svg, math, template, noscript, audio, video...) are dropped with all
 *     their content;
 *   - every other element is unwrapped: its tags go, its text stays;
 *   - comments, processing instructions and CDATA are dropped;
 *   - style attributes are dropped (CSS can load through url(), image-set(),
 *     @import), as are all event handlers, srcset, background and the like;
 *   - <a href> is kept only with an http, https or mailto URL (scheme read
 *     after entity decoding and the browser's own clean-up of tabs, newlines
 *     and leading control characters), and gets target="_blank"
 *     rel="noopener noreferrer";
 *   - <img src> is kept only as data:image/(png|gif|jpeg|webp);base64, or as
 *     cid:, which the caller's resolver turns into such a data: URL (or not:
 *     then the image has no src and shows its alt text).
 *
 * The output is a fragment (the body's content, no <html>/<head>/<body>),
 * always valid UTF-8, meant for a sandboxed iframe that also has a CSP
 * forbidding every remote load: this is the third fence, not the only one.
 * It is used by the view (crypto/view_render.c): the viewer's v1 pages, and
 * the view document the proxy writes for v2 links (crypto/view_doc.h).
 */
#ifndef SP_HTML_SANITIZE_H
#define SP_HTML_SANITIZE_H

#include <stddef.h>

/* HTML larger than this is not sanitised (the caller shows the text part
 * instead): libxml2 builds a whole tree, about ten times the input in memory,
 * and newsletters are well under 1 MiB of markup. */
#define SP_HTML_MAX_INPUT (8u * 1024 * 1024)
/* Elements nested deeper than this are unwrapped (their text is kept): browsers
 * stop nesting at 512 anyway, and no mail needs more than a few dozen. */
#define SP_HTML_MAX_DEPTH 128
/* More tree nodes than this (elements, text, attributes) and the HTML is not
 * shown: bounds the serialiser's work independently of the byte count. */
#define SP_HTML_MAX_NODES 500000
/* The output never exceeds this (inlined cid: images included); larger is
 * refused rather than cut, so a page never shows half a document. */
#define SP_HTML_MAX_OUTPUT (48u * 1024 * 1024)

/* Resolve "cid:<id>" (id without the scheme, percent-decoding not applied)
 * into a data:image/...;base64,... URL in malloc'd memory, or NULL. */
typedef char *(*sp_html_cid_fn)(const char *cid, void *arg);

/* Sanitise html[0..len) (UTF-8; invalid sequences are replaced).  On success
 * returns 0 and *out (malloc'd, NUL-terminated, *outlen bytes; the caller
 * wipes and frees it: it is message plaintext).  Returns -1 with err when the
 * input or output is over a limit or libxml2 cannot build a tree: the caller
 * must then not show the HTML at all. */
int sp_html_sanitize(const char *html, size_t len, sp_html_cid_fn cid, void *cid_arg,
                     char **out, size_t *outlen, char *err, size_t errsz);

/* Is this a URL an <a href> may keep?  (http, https, mailto, after the
 * clean-up described above.)  Returns 1 (keep) or 0.  Exposed for the tests. */
int sp_html_href_ok(const char *url);

#endif
