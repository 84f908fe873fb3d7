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

#include <stdbool.h>
#include <stddef.h>

#include "util.h"

/* Deeper MIME nesting than this is not mail, it is an attack on the parser's stack. */
#define WEB_RENDER_MAX_DEPTH 32
/* Parts shown or offered for download; a message with more is cut (and says so). */
#define WEB_RENDER_MAX_PARTS 256
/* cid: images of a multipart/related that can be inlined into the HTML part as
 * data: URLs (the frame may load nothing else): at most this many parts, each
 * at most this big once decoded, and at most this many bytes inlined in all
 * (counting every reference: one image referenced 100 times counts 100 times).
 * Beyond these the image shows its alt text; it is still an attachment. */
#define WEB_RENDER_MAX_INLINE_IMAGES 64
#define WEB_RENDER_MAX_INLINE_IMAGE_BYTES (2u * 1024 * 1024)
#define WEB_RENDER_MAX_INLINE_TOTAL (16u * 1024 * 1024)

struct web_attachment {
	char *filename;      /* UTF-8, never NULL or empty */
	char *content_type;  /* "type/subtype" as declared, for display only */
	unsigned char *data; /* decoded bytes */
	size_t len;
};

struct web_message {
	char *from, *to, *cc, *date, *subject; /* decoded, UTF-8, NULL when absent */
	char *text;                            /* first text/plain body, UTF-8, or NULL */
	char *html;                            /* first text/html body, sanitised, or NULL */
	bool html_refused;                     /* an HTML body over the sanitiser's limits: not shown */
	struct web_attachment *att;
	size_t n_att;
	bool truncated;                        /* more than WEB_RENDER_MAX_PARTS parts */
};

/* Parse data[0..len).  Returns 0, or -1 with err when it is not a message at
 * all.  The HTML body is sanitised here, with its cid: images inlined: m->html
 * is safe to put into the message frame as it is.  A format=flowed text/plain
 * body (RFC 3676) is reflowed. */
int web_render_parse(const void *data, size_t len, struct web_message *out, char *err, size_t errsz);
void web_message_free(struct web_message *m);
void web_attachment_clear(struct web_attachment *a);

/* RFC 3676 format=flowed text (UTF-8, CRLF or LF line ends) as display text:
 * space-stuffing removed, soft line breaks joined (with DelSp=yes the space
 * before a soft break is deleted too), a flowed line followed by one of another
 * quote depth or by the signature separator "-- " is a hard break, quoted
 * paragraphs get their ">" prefix back (">> " for depth 2).  Lines end in LF.
 * Malloc'd; the caller wipes and frees it. */
char *web_render_flowed(const char *text, bool delsp);

#endif
