/* web_render.h - a decrypted message, as the viewer shows it (GMime).
 *
 * web_render_parse() turns the original MIME message into display strings
 * (UTF-8: charsets converted, RFC 2047 encoded words decoded, QP/base64
 * undone), the first text/plain body, the first text/html body and a list of
 * attachments with their decoded bytes.  Everything here is plaintext:
 * web_message_free() wipes it.
 */
#ifndef SP_WEB_RENDER_H
#define SP_WEB_RENDER_H

#include <stddef.h>

#include "util.h"

/* Deeper MIME nesting than this is not mail, it is an attack on the parser's stack. */
#define WEB_RENDER_MAX_DEPTH 32
/* Parts shown or offered for download; a message with more is cut (and says so). */
#define WEB_RENDER_MAX_PARTS 256

struct web_attachment {
	char *filename;      /* UTF-8, never NULL or empty */
	char *content_type;  /* "type/subtype" as declared, for display only */
	unsigned char *data; /* decoded bytes */
	size_t len;
};

struct web_message {
	char *from, *to, *cc, *date, *subject; /* decoded, UTF-8, NULL when absent */
	char *text;                            /* first text/plain body, UTF-8, or NULL */
	char *html;                            /* first text/html body, UTF-8, or NULL */
	struct web_attachment *att;
	size_t n_att;
	bool truncated;                        /* more than WEB_RENDER_MAX_PARTS parts */
};

/* Parse data[0..len).  Returns 0, or -1 with err when it is not a message at all. */
int web_render_parse(const void *data, size_t len, struct web_message *out, char *err, size_t errsz);
void web_message_free(struct web_message *m);
void web_attachment_clear(struct web_attachment *a);

#endif
