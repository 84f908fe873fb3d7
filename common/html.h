/* html.h - the one HTML escaping helper.
 *
 * Every byte of text that did not come from a string literal - header values,
 * bodies, file names, URLs, ids - reaches a page (linkserver/web_pages.c) or
 * a sanitised message (crypto/html_sanitize.c) through sp_html_escape().  It is
 * safe in element content and in double- or single-quoted attribute values
 * (including srcdoc), and it turns what is not valid UTF-8, and control
 * characters other than TAB/LF/CR, into U+FFFD, so the output is always valid
 * UTF-8.
 */
#ifndef SP_HTML_H
#define SP_HTML_H

#include <stddef.h>

#include "util.h"

/* Append the escaped form of s[0..len) to b.  Returns 0, or -1 (no err) only
 * when b hits its limit. */
int sp_html_escape(struct sp_buf *b, const char *s, size_t len);
/* The same for a NUL-terminated string (NULL appends nothing). */
int sp_html_puts(struct sp_buf *b, const char *s);

#endif
