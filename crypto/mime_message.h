/* mime_message.h - the client's message as GMime sees it, plus the byte spans
 * of its top-level header fields, so copies can drop or replace fields while
 * every other byte (body, attachments, signatures) stays exactly as sent.
 */
#ifndef SP_MIME_MESSAGE_H
#define SP_MIME_MESSAGE_H

#include <stdbool.h>
#include <stddef.h>

#include <gmime/gmime.h>

#include "util.h"

/* A message with more top-level header fields than this is junk (RFC 5322 has
 * no limit; real mail has a few dozen, mailing lists a hundred or two). */
#define SP_MIME_MAX_HEADERS 1000
/* MIME nesting and part count: real mail nests a handful of levels (a
 * forwarded signed message with alternatives is about 6) and has at most
 * hundreds of parts; deeper or bigger is an attack on whoever parses it next
 * (the recipient's client, the viewer). */
#define SP_MIME_MAX_DEPTH 64
#define SP_MIME_MAX_PARTS 10000

struct sp_mime_header {
	const char *name;        /* as written (owned by GMime) */
	size_t start;            /* byte offset of the field in the message */
	size_t end;              /* one past its last byte (after its CRLF) */
	bool content;            /* a Content-* field (belongs to the body entity) */
};

struct sp_mime {
	GMimeMessage *msg;
	const char *data;        /* the message, borrowed */
	size_t len;
	size_t headers_end;      /* offset of the empty line ending the header block */
	size_t body_start;       /* first byte of the body (after the empty line) */
	struct sp_mime_header *hdrs;
	size_t n_hdrs;
	/* Header fields (CRLF-terminated) the outer header block of every
	 * encrypted copy gets in addition (the Autocrypt header); NULL for none.
	 * sp_mime_copy_headers (the unencrypted form: the original message)
	 * leaves them out.  Owned by the caller. */
	const char *extra_headers;
	/* private */
	GMimeParser *parser;
	GMimeStream *stream;
	GByteArray *array;
};

/* Call once per process before any other GMime use. */
void sp_mime_global_init(void);

/* Parse data (CRLF or LF).  data must be heap memory from malloc: it is lent to
 * GMime without a copy and given back by sp_mime_free; do not touch it between. */
int sp_mime_parse(char *data, size_t len, struct sp_mime *m, char *err, size_t errsz);
void sp_mime_free(struct sp_mime *m);

/* Is addr named in the To or Cc header (groups included)? */
bool sp_mime_names_rcpt(const struct sp_mime *m, const char *addr);
/* Raw (unfolded, trimmed) value of the first top-level header with that name, or NULL. */
char *sp_mime_header_value(const struct sp_mime *m, const char *name);

/* Append the message's header block to out, leaving out every field for which
 * drop(name) is true; the empty line and body are NOT appended. */
typedef bool (*sp_mime_header_filter)(const char *name, void *arg);
int sp_mime_copy_headers(const struct sp_mime *m, sp_mime_header_filter drop, void *arg,
                         struct sp_buf *out);

/* Headers that never leave sealpost: Bcc and every X-Sealpost-* control header. */
bool sp_mime_is_private_header(const char *name);
/* MIME-Version and Content-*: they belong to the body entity. */
bool sp_mime_is_structural_header(const char *name);

/* The header block of an encrypted copy (no empty line): every field the
 * client wrote except the private and structural ones, byte-exact, with the
 * Subject replaced by `subject` (when not NULL; "..." hides it).  The caller
 * appends its own MIME-Version and Content-Type. */
int sp_mime_write_outer_headers(const struct sp_mime *m, const char *subject, struct sp_buf *out);

/* The From mailbox: display name ("" when none) and address ("" when none). */
void sp_mime_sender(const struct sp_mime *m, char *name, size_t namesz, char *addr, size_t addrsz);

/* The entity that gets encrypted (RFC 9788 header protection, hp="cipher",
 * plus the legacy protected-headers="v1" that Thunderbird and K-9 read):
 * the client's content headers with those two parameters added to
 * Content-Type, copies of Subject/From/To/Cc/Date/Message-ID/Reply-To/
 * In-Reply-To/References, one HP-Outer field per outer field, an empty line,
 * and the client's body byte-for-byte (attachments and signatures intact). */
int sp_mime_write_protected_entity(const struct sp_mime *m, const char *outer_subject, struct sp_buf *out,
                                   char *err, size_t errsz);

/* The same without the body: everything up to and including the empty line
 * (the body follows as m->data + m->body_start, never copied). */
int sp_mime_write_protected_header(const struct sp_mime *m, const char *outer_subject, struct sp_buf *out,
                                   char *err, size_t errsz);

/* Where a copy is built: in memory, or (buf NULL) appended to a spool file. */
struct sp_sink {
	struct sp_buf *buf;
	int fd;
};

int sp_sink_write(struct sp_sink *s, const void *p, size_t n);
/* Serialise a GMime object into the sink, CRLF line endings. */
int sp_sink_object(struct sp_sink *s, GMimeObject *obj);

/* Is the client's message already encrypted (multipart/encrypted, or inline
 * PGP armor in the body)?  Then it is relayed as it is. */
bool sp_mime_is_encrypted(const struct sp_mime *m);

#endif
