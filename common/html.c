/* html.c - HTML escaping (see html.h). */
#include "html.h"

#include <string.h>

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if it is not one
 * (overlongs, surrogates and code points above U+10FFFF are invalid). */
static size_t
utf8_seq(const unsigned char *s, size_t len)
{
	unsigned c = s[0];
	size_t n, i;
	unsigned cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (len < n)
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

int
sp_html_escape(struct sp_buf *b, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, run = 0, n;

	/* Copy runs of harmless bytes in one append; escape the rest one by one. */
	while (i < len) {
		const char *rep = NULL;
		unsigned char c = p[i];

		n = 1;
		switch (c) {
		case '&': rep = "&amp;"; break;
		case '<': rep = "&lt;"; break;
		case '>': rep = "&gt;"; break;
		case '"': rep = "&quot;"; break;
		case '\'': rep = "&#39;"; break;
		case '\t': case '\n': case '\r': break;
		default:
			if (c < 0x20 || c == 0x7f)
				rep = "\xef\xbf\xbd";
			else if (c >= 0x80 && (n = utf8_seq(p + i, len - i)) == 0) {
				rep = "\xef\xbf\xbd";
				n = 1;
			}
			break;
		}
		if (rep == NULL) {
			run += n;
			i += n;
			continue;
		}
		if (run && sp_buf_append(b, p + i - run, run) < 0)
			return -1;
		run = 0;
		if (sp_buf_puts(b, rep) < 0)
			return -1;
		i += n;
	}
	if (run && sp_buf_append(b, p + i - run, run) < 0)
		return -1;
	return 0;
}

int
sp_html_puts(struct sp_buf *b, const char *s)
{
	return s ? sp_html_escape(b, s, strlen(s)) : 0;
}
