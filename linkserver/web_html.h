/* web_html.h - the one HTML escaping helper of the viewer.
 *
 * Every byte of text that did not come from a string literal in web_pages.c -
 * header values, bodies, file names, URLs, ids - reaches a page through
 * web_html_escape().  It is safe in element content and in double- or
 * single-quoted attribute values (including srcdoc), and it turns what is not
 * valid UTF-8, and control characters other than TAB/LF/CR, into U+FFFD, so a
 * page is always valid UTF-8.
 */
#ifndef SP_WEB_HTML_H
#define SP_WEB_HTML_H

#include <stddef.h>

#include "util.h"

/* Append the escaped form of s[0..len) to b.  -1 only when b hits its limit. */
int web_html_escape(struct sp_buf *b, const char *s, size_t len);
/* The same for a NUL-terminated string (NULL appends nothing). */
int web_html_puts(struct sp_buf *b, const char *s);

/* RFC 8187 / RFC 3986 percent-encoding of every byte outside unreserved
 * (ALPHA / DIGIT / "-" / "." / "_" / "~"): for filename*=UTF-8''... */
int web_percent_encode(struct sp_buf *b, const char *s, size_t len);

/* A file name safe to put in a quoted Content-Disposition filename="": printable
 * ASCII only, no quotes, backslashes, slashes or control characters (each
 * becomes '_'), at most outsz - 1 bytes, never empty (fallback used). */
void web_ascii_filename(const char *name, const char *fallback, char *out, size_t outsz);

#endif
