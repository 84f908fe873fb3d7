/* view_doc.h - the view document: a rendered message as link v2 encrypts it.
 *
 * A v2 link's recipient decrypts in the browser, so nothing on the viewer can
 * parse the message any more: the proxy renders it at send time
 * (sp_view_render(), crypto/view_render.h) and writes the view as one
 * document, which is what the link's message blob seals.  The layout, byte by
 * byte, is docs/formats.md "View document (v2)":
 *
 *   "SPVIEWD1" | u32 big-endian header length | JSON header (UTF-8) | attachments
 *
 * The JSON header carries the display strings, the reflowed text, the
 * sanitised HTML (cid: images already inlined) and each attachment's name,
 * type and size; the attachments' bytes follow it, concatenated in order.
 * JSON is written and parsed by json-glib: no escaping by hand.
 *
 * Everything here is message plaintext: buffers are wiped, and the strings
 * json-glib held are zeroed before its tree is freed.
 */
#ifndef SP_VIEW_DOC_H
#define SP_VIEW_DOC_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"
#include "view_render.h"

#define SP_VIEW_DOC_MAGIC "SPVIEWD1"
#define SP_VIEW_DOC_MAGIC_LEN 8
/* Magic and the header's length field. */
#define SP_VIEW_DOC_PREFIX (SP_VIEW_DOC_MAGIC_LEN + 4)
/* The version the header's "v" member carries. */
#define SP_VIEW_DOC_VERSION 1
/* The JSON header holds the text body (as large as the message) and the
 * sanitised HTML (at most SP_HTML_MAX_OUTPUT, 48 MiB), JSON-escaped; a browser
 * parses it with one JSON.parse.  128 MiB bounds that whatever the
 * configuration says; a message whose bodies need more cannot be rendered
 * (at send time: refused, never sent in another form). */
#define SP_VIEW_DOC_MAX_HEADER ((size_t)128 * 1024 * 1024)
/* Attachments listed: the render's own part limit (it never produces more). */
#define SP_VIEW_DOC_MAX_ATTACHMENTS SP_VIEW_MAX_PARTS
/* The armored sender key (the secure reply's "sender_key"): a public key
 * with a few subkeys and signatures is a few KiB; 1 MiB is generous. */
#define SP_VIEW_DOC_MAX_SENDER_KEY ((size_t)1024 * 1024)

/* The largest document a message of max_message_size bytes renders to: the
 * attachments are decoded parts of the message (decoding never grows them;
 * a forwarded message/rfc822 part is written back as it was parsed, with 1/64
 * of slack for GMime's refolding), plus the header at its cap.  The caller
 * bounds the output buffer of sp_view_doc_write() and the input of
 * sp_view_doc_read() with it. */
size_t sp_view_doc_max_size(uint64_t max_message_size);

/* Append the document of v to out (its sp_buf limit bounds the whole: pass
 * sp_view_doc_max_size()).  Returns 0, or -1 with err when v does not fit
 * the format (a header over SP_VIEW_DOC_MAX_HEADER, more than
 * SP_VIEW_DOC_MAX_ATTACHMENTS attachments, an attachment without a name,
 * a string that is not UTF-8, the buffer's limit).  On failure out is wiped
 * back to its length on entry. */
int sp_view_doc_write(const struct sp_view *v, struct sp_buf *out, char *err, size_t errsz);

/* Parse doc[0..len) into out, strictly: the magic, a header length within
 * SP_VIEW_DOC_MAX_HEADER and the document, UTF-8 JSON with exactly the
 * members of version 1 and their types, at most SP_VIEW_DOC_MAX_ATTACHMENTS
 * attachments whose sizes add up to exactly the bytes after the header, and
 * len <= max_size (0: no bound but the header's).  Returns 0, or -1 with err
 * (out is then empty).  Free out with sp_view_free().  For tests and tools:
 * the recipient's browser is the document's real reader. */
int sp_view_doc_read(const void *doc, size_t len, size_t max_size, struct sp_view *out, char *err,
                     size_t errsz);

#endif
