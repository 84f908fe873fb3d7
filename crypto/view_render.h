/* view_render.h - a message as its recipient sees it (GMime): the view.
 *
 * sp_view_render() turns the original MIME message into display strings
 * (UTF-8: charsets converted, RFC 2047 encoded words decoded, QP/base64
 * undone), the first text/plain body, the first text/html body and a list of
 * attachments with their decoded bytes.  Everything here is plaintext:
 * sp_view_free() wipes it.
 *
 * It is a pure transformation (bytes in, a struct out), used by the viewer for
 * v1 links (linkserver/web_view.c renders at view time) and by the proxy for
 * v2 links, whose view is rendered at send time and written as a view
 * document (crypto/view_doc.h, docs/formats.md "View document (v2)").
 */
#ifndef SP_VIEW_RENDER_H
#define SP_VIEW_RENDER_H

#include <stdbool.h>
#include <stddef.h>

#include "util.h"

/* Deeper MIME nesting than this is not mail, it is an attack on the parser's stack. */
#define SP_VIEW_MAX_DEPTH 32
/* Parts shown or offered for download; a message with more is cut (and says so). */
#define SP_VIEW_MAX_PARTS 256
/* cid: images of a multipart/related that can be inlined into the HTML part as
 * data: URLs (the frame may load nothing else): at most this many parts, each
 * at most this big once decoded, and at most this many bytes inlined in all
 * (counting every reference: one image referenced 100 times counts 100 times).
 * Beyond these the image shows its alt text; it is still an attachment. */
#define SP_VIEW_MAX_INLINE_IMAGES 64
#define SP_VIEW_MAX_INLINE_IMAGE_BYTES (2u * 1024 * 1024)
#define SP_VIEW_MAX_INLINE_TOTAL (16u * 1024 * 1024)

struct sp_view_attachment {
	char *filename;      /* UTF-8, never NULL or empty */
	char *content_type;  /* "type/subtype" as declared, for display only */
	unsigned char *data; /* decoded bytes */
	size_t len;
};

struct sp_view {
	char *from, *to, *cc, *date, *subject; /* decoded, UTF-8, NULL when absent */
	char *message_id;                      /* Message-ID without its <>, UTF-8, or NULL */
	char *text;                            /* first text/plain body, UTF-8, or NULL */
	char *html;                            /* first text/html body, sanitised, or NULL */
	bool html_refused;                     /* an HTML body over the sanitiser's limits: not shown */
	struct sp_view_attachment *att;
	size_t n_att;
	bool truncated;                        /* more than SP_VIEW_MAX_PARTS parts */
	char *sender_key;                      /* the sender's armored OpenPGP public key, for
	                                        * the secure reply (issue #15); never set by
	                                        * sp_view_render(), NULL when none */
};

/* Parse data[0..len).  Returns 0 with *out filled (free it with
 * sp_view_free()), or -1 with err set when it is not a message at all (*out
 * is then empty).  The HTML body is sanitised here, with its cid: images
 * inlined: m->html is safe to put into the message frame as it is; an HTML
 * body the sanitiser refuses is no error but html_refused.  A format=flowed
 * text/plain body (RFC 3676) is reflowed. */
int sp_view_render(const void *data, size_t len, struct sp_view *out, char *err, size_t errsz);
void sp_view_free(struct sp_view *m);
void sp_view_attachment_clear(struct sp_view_attachment *a);

/* RFC 3676 format=flowed text (UTF-8, CRLF or LF line ends) as display text:
 * space-stuffing removed, soft line breaks joined (with DelSp=yes the space
 * before a soft break is deleted too), a flowed line followed by one of another
 * quote depth or by the signature separator "-- " is a hard break, quoted
 * paragraphs get their ">" prefix back (">> " for depth 2).  Lines end in LF.
 * Malloc'd, never NULL; the caller wipes and frees it. */
char *sp_view_flowed(const char *text, bool delsp);

#endif
