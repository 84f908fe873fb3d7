/* web_html.c - what the viewer's pages need beyond HTML escaping (see web_html.h). */
#include "web_html.h"

#include <stdbool.h>
#include <string.h>

int
web_percent_encode(struct sp_buf *b, const char *s, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		bool plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		             c == '-' || c == '.' || c == '_' || c == '~';
		char enc[3] = { '%', hex[c >> 4], hex[c & 15] };

		if (plain ? sp_buf_append(b, &c, 1) < 0 : sp_buf_append(b, enc, 3) < 0)
			return -1;
	}
	return 0;
}

void
web_ascii_filename(const char *name, const char *fallback, char *out, size_t outsz)
{
	size_t o = 0;
	const char *p;
	bool useful = false;

	if (outsz == 0)
		return;
	for (p = name ? name : ""; *p && o + 1 < outsz; p++) {
		unsigned char c = (unsigned char)*p;
		if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '/' || c == ';' ||
		    c == '%') {
			/* A UTF-8 sequence becomes one '_'. */
			if (c >= 0x80 && (c & 0xc0) == 0x80)
				continue;
			out[o++] = '_';
		} else {
			out[o++] = (char)c;
			if (c != '.' && c != ' ')
				useful = true;
		}
	}
	out[o] = '\0';
	if (!useful)
		sp_strlcpy(out, fallback, outsz);
}
