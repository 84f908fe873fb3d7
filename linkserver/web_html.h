/* web_html.h - percent-encoding and safe file names for the viewer's pages.
 * HTML escaping is common/html.h (sp_html_escape), shared with the sanitiser.
 */
#ifndef SP_WEB_HTML_H
#define SP_WEB_HTML_H

#include <stddef.h>

#include "html.h"
#include "util.h"


/* RFC 8187 / RFC 3986 percent-encoding of every byte outside unreserved
 * (ALPHA / DIGIT / "-" / "." / "_" / "~"): for filename*=UTF-8''..., appended
 * to b.  Returns 0, or -1 (no err: the only failure is b's limit, and b may
 * then hold part of the encoding). */
int web_percent_encode(struct sp_buf *b, const char *s, size_t len);

/* A file name safe to put in a quoted Content-Disposition filename="": printable
 * ASCII only, no quotes, backslashes, slashes or control characters (each
 * becomes '_'), at most outsz - 1 bytes, never empty (fallback used). */
void web_ascii_filename(const char *name, const char *fallback, char *out, size_t outsz);

#endif
